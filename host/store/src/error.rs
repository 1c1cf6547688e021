//! The one error type of hoist-store; every variant names the path, digest or layer concerned.

use std::path::PathBuf;

use crate::content::Digest;

/// Everything that can go wrong in the content store, layer diff/apply or the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "rename", ...).
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A string is not a valid `sha256:<64 hex>` digest.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The text that failed to parse.
        input: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Content did not hash to the digest it was expected to have.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of the bytes actually seen.
        actual: Digest,
    },
    /// A blob is not in the content store.
    #[error("blob {digest} not found")]
    BlobNotFound {
        /// The missing digest.
        digest: Digest,
    },
    /// A layer tar entry would escape the layer root or write through a symlink.
    #[error("unsafe layer entry {path:?}: {reason}")]
    UnsafeEntry {
        /// The entry path as written in the tar.
        path: PathBuf,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A layer tar could not be read or written.
    #[error("layer tar at entry {path:?}: {source}")]
    Tar {
        /// The entry (or directory) being processed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// overlayfs cannot be used under the snapshotter root.
    #[error("overlayfs is unusable under {root}: {reason}")]
    OverlayUnusable {
        /// The snapshotter root.
        root: PathBuf,
        /// What the test mount reported.
        reason: String,
    },
    /// A mount or unmount syscall failed.
    #[error("{op} {target}: {source}")]
    Mount {
        /// "mount" or "umount".
        op: &'static str,
        /// The mountpoint.
        target: PathBuf,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A layer id is not known to the snapshotter.
    #[error("layer {id} not found")]
    LayerNotFound {
        /// The unknown id.
        id: String,
    },
    /// The snapshot metadata database failed.
    #[error("snapshot metadata ({what}): {source}")]
    Db {
        /// Which record was being accessed.
        what: String,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
}

impl Error {
    /// True when a blob or layer that was asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::BlobNotFound { .. } | Error::LayerNotFound { .. } => true,
            Error::Io { source, .. } | Error::Tar { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }

    /// True when content did not match its digest.
    pub fn is_digest_mismatch(&self) -> bool {
        matches!(self, Error::DigestMismatch { .. })
    }

    /// True when a layer entry was refused as unsafe.
    pub fn is_unsafe_entry(&self) -> bool {
        matches!(self, Error::UnsafeEntry { .. })
    }

    /// Builds an [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Result with hoist-store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
