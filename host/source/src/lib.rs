//! hoist-source owns getting sources into hoist. It resolves an image reference against an
//! OCI/Docker v2 registry ([`image`]) or an OCI image layout directory ([`layout`]) to one
//! platform's manifest and config, and pulls layer blobs into the content store of hoist-store.
//! It also downloads files over HTTP(S) into that store ([`http`], revalidated by ETag and
//! Last-Modified, verified against a checksum when given) and checks out git repositories with
//! the `git` tool ([`git`]).
//!
//! It must not unpack layers, build snapshots or know about LLB and the solver: it hands back
//! descriptors and digests, and the bytes land only in the [`ContentStore`], verified.
//!
//! # Example
//!
//! ```no_run
//! use hoist_source::{image::{ImageSource, RegistryOptions}, Platform};
//! use hoist_store::ContentStore;
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let content = ContentStore::open(std::path::Path::new("/var/lib/hoist/content"))?;
//! let source = ImageSource::new(content, RegistryOptions::default());
//! let img = source.resolve("busybox", &Platform::host()).await?;
//! source.pull_layers(&img, &|p| eprintln!("{} {}/{}", p.digest, p.downloaded, p.total)).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees and key decision
//!
//! Nothing enters the content store unverified: every manifest, config and layer is hashed as it
//! is written and committed only if it matches the digest that named it, so a tampered registry
//! or layout yields [`Error::DigestMismatch`] and stores nothing. The registry protocol (token
//! dance, chunked transfers) is oci-client's; hoist only picks the platform from an index itself,
//! because oci-client's resolver cannot be told which platform a *build* targets.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
pub mod git;
pub mod http;
pub mod image;
pub mod layout;
mod platform;

use std::path::PathBuf;

pub use hoist_store::{ContentStore, Digest};
pub use image::{ImageSource, PullProgress, RegistryOptions, ResolvedImage};
pub use layout::resolve_layout;
pub use platform::{ParsePlatformError, Platform};

/// Everything that can go wrong fetching an image; variants name the reference, host or digest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not a valid image reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The repository, tag, digest or blob does not exist.
    #[error("image {reference} not found: the repository, tag or digest does not exist{detail}")]
    NotFound {
        /// The reference (or blob) that was asked for.
        reference: String,
        /// Extra context from the registry, empty or starting with ": ".
        detail: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("not authorized to access {reference} on {host}: {message}")]
    Unauthorized {
        /// The reference concerned.
        reference: String,
        /// The registry host.
        host: String,
        /// The registry's message.
        message: String,
    },
    /// The registry could not be reached at all.
    #[error("registry {host} is unreachable: {reason}")]
    Unreachable {
        /// The registry host (and port).
        host: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The registry answered with an error not covered by another variant.
    #[error("registry {host} failed for {reference}: {message}")]
    Registry {
        /// The reference concerned.
        reference: String,
        /// The registry host.
        host: String,
        /// The error as reported.
        message: String,
    },
    /// Content did not hash to the digest that named it; nothing was stored.
    #[error("digest mismatch for {reference}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The image (or layout) the content came from.
        reference: String,
        /// The digest the content was named by.
        expected: String,
        /// The digest of the bytes actually received.
        actual: String,
    },
    /// A blob was larger or smaller than its descriptor said.
    #[error(
        "size mismatch for blob {digest} of {reference}: expected {expected} bytes, got {actual}"
    )]
    SizeMismatch {
        /// The image the blob belongs to.
        reference: String,
        /// The blob's digest.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// The size seen (possibly stopped early).
        actual: u64,
    },
    /// An index has no manifest for the requested platform.
    #[error("{reference} has no image for platform {platform} (available: {})", available.join(", "))]
    NoMatchingPlatform {
        /// The image reference.
        reference: String,
        /// The platform asked for.
        platform: Platform,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// A manifest or blob has a media type or digest algorithm hoist does not handle.
    #[error("{reference}: unsupported {what}")]
    Unsupported {
        /// The reference concerned.
        reference: String,
        /// What is unsupported (e.g. "manifest media type application/...").
        what: String,
    },
    /// A manifest, index or config could not be parsed.
    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest {
        /// The reference concerned.
        reference: String,
        /// The parse error.
        reason: String,
    },
    /// An OCI layout directory is malformed, or its reference is ambiguous.
    #[error("OCI layout {path}: {reason}")]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The content store failed.
    #[error("content store, for {reference}: {source}")]
    Store {
        /// The reference whose content was being stored or read.
        reference: String,
        /// The store's error.
        #[source]
        source: hoist_store::Error,
    },
    /// Reading a file failed.
    #[error("read {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Downloading a file over HTTP(S) failed.
    #[error(transparent)]
    Http(#[from] http::HttpError),
    /// Fetching a git repository failed.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// The docker `config.json` holding credentials is malformed.
    #[error("docker config {path}: {reason}")]
    DockerConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// True when the image, tag, digest or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Store { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// True when content did not match its digest (or size).
    pub fn is_digest_mismatch(&self) -> bool {
        matches!(
            self,
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. }
        )
    }

    /// True when the registry could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// True when the registry refused access.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// Maps a store error met while handling `reference`, keeping digest mismatches typed.
    pub(crate) fn store(reference: &str, source: hoist_store::Error) -> Error {
        match source {
            hoist_store::Error::DigestMismatch { expected, actual } => Error::DigestMismatch {
                reference: reference.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            },
            source => Error::Store {
                reference: reference.to_string(),
                source,
            },
        }
    }

    /// Maps an oci-client error met talking to `host` about `reference` to a typed error.
    pub fn from_registry(
        reference: &str,
        host: &str,
        err: oci_client::errors::OciDistributionError,
    ) -> Error {
        image::map_registry_error(reference, host, err)
    }
}

/// Result with hoist-source's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
