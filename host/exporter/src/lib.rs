//! hoist-exporter owns turning a finished image (layer blobs already in the content store plus
//! an image config) into something outside hoist: an OCI manifest and config in the store
//! ([`write_manifest`]), an OCI image layout as a tar or a directory ([`write_oci_archive`],
//! [`write_oci_dir`]), a `docker load` tarball ([`write_docker_archive`]), or a registry
//! ([`push`]).
//!
//! It must not build layers, walk filesystems or know about the solver: layers arrive as
//! [`LayerBlob`]s already compressed and stored in hoist-store's content store, and registry
//! access goes through hoist-source's [`RegistryOptions`] so both directions share credentials.
//!
//! # Example
//!
//! ```no_run
//! use hoist_exporter::{write_oci_archive, Image};
//! use hoist_store::ContentStore;
//! # fn f(content: &ContentStore, layers: Vec<hoist_exporter::LayerBlob>) -> hoist_exporter::Result<()> {
//! let img = Image {
//!     layers,
//!     config: serde_json::json!({"architecture": "amd64", "os": "linux",
//!                                "config": {"Cmd": ["/bin/sh"]}}),
//! };
//! let out = std::fs::File::create("app.tar").unwrap();
//! let m = write_oci_archive(content, &img, &["app:v1".to_string()], out)?;
//! println!("{}", m.manifest_digest);
//! # Ok(()) }
//! ```
//!
//! # Guarantees and key decision
//!
//! Every exporter goes through [`write_manifest`], so one image yields one manifest digest
//! whatever the output. The config's `rootfs.diff_ids` are always rewritten from the layers and
//! `created` is filled in when absent (from `SOURCE_DATE_EPOCH` when set, for reproducible
//! builds); the config is serialised from a `serde_json::Value` (keys sorted), so the same
//! inputs give the same digests. Archives are written with fixed owners and mtimes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod archive;
mod push;

use std::path::PathBuf;

pub use archive::{write_docker_archive, write_oci_archive, write_oci_dir};
pub use hoist_source::RegistryOptions;
pub use hoist_store::{ContentStore, Digest};
pub use push::push;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// One layer of an image, its compressed blob already in the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the (compressed) blob as stored and shipped.
    pub digest: Digest,
    /// Digest of the uncompressed tar (goes into the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Layer media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip` or `+zstd`.
    pub media_type: String,
}

/// An image to export: layers plus an OCI image config.
#[derive(Debug, Clone)]
pub struct Image {
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
    /// The OCI image config (`architecture`, `os`, `config{...}`, `history`, ...);
    /// `rootfs` is filled from `layers` and `created` when missing.
    pub config: serde_json::Value,
}

/// The manifest and config as stored in the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifested {
    /// Digest of the manifest blob.
    pub manifest_digest: Digest,
    /// Digest of the config blob.
    pub config_digest: Digest,
    /// The manifest JSON.
    pub manifest: Vec<u8>,
    /// The config JSON.
    pub config: Vec<u8>,
}

/// Everything that can go wrong exporting; variants name the digest, name, path or reference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A layer blob is not in the content store.
    #[error("layer blob {digest} is not in the content store")]
    MissingBlob {
        /// The missing digest.
        digest: Digest,
    },
    /// A stored layer blob's size differs from its [`LayerBlob::size`].
    #[error("layer blob {digest} is {actual} bytes, but the layer says {expected}")]
    LayerSize {
        /// The blob.
        digest: Digest,
        /// The size the layer claimed.
        expected: u64,
        /// The size in the store.
        actual: u64,
    },
    /// The image config is unusable.
    #[error("invalid image config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// An image name (tag) is not a valid reference.
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The content store failed for `digest`.
    #[error("content store, blob {digest}: {source}")]
    Store {
        /// The blob concerned.
        digest: Digest,
        /// The store's error.
        #[source]
        source: hoist_store::Error,
    },
    /// Writing the output failed.
    #[error("write {path}: {source}")]
    Io {
        /// The file, directory or archive entry concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the registry failed while pushing `reference`.
    #[error("push {reference}: {source}")]
    Push {
        /// The reference being pushed.
        reference: String,
        /// The registry error.
        #[source]
        source: Box<hoist_source::Error>,
    },
}

impl Error {
    /// True when a blob (or, when pushing, the repository) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::MissingBlob { .. } => true,
            Error::Store { source, .. } => source.is_not_found(),
            Error::Push { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// True when stored content did not match its digest or size.
    pub fn is_digest_mismatch(&self) -> bool {
        match self {
            Error::LayerSize { .. } => true,
            Error::Store { source, .. } => source.is_digest_mismatch(),
            Error::Push { source, .. } => source.is_digest_mismatch(),
            _ => false,
        }
    }

    /// True when the registry could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Push { source, .. } if source.is_unreachable())
    }

    /// True when the registry refused the credentials.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Push { source, .. } if source.is_unauthorized())
    }

    /// A closure mapping a store error for `digest`.
    pub(crate) fn store(digest: &Digest) -> impl FnOnce(hoist_store::Error) -> Error + '_ {
        move |source| match source {
            hoist_store::Error::BlobNotFound { digest } => Error::MissingBlob { digest },
            source => Error::Store {
                digest: digest.clone(),
                source,
            },
        }
    }
}

/// Result with hoist-exporter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The config JSON with `rootfs` from `img.layers` and `created` filled in.
fn finish_config(img: &Image) -> Result<serde_json::Value> {
    let mut config = img.config.clone();
    let obj = config.as_object_mut().ok_or_else(|| Error::InvalidConfig {
        reason: "not a JSON object".into(),
    })?;
    for key in ["architecture", "os"] {
        let present = obj
            .get(key)
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty());
        if !present {
            return Err(Error::InvalidConfig {
                reason: format!("missing \"{key}\""),
            });
        }
    }
    let diff_ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
    obj.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": diff_ids}),
    );
    if !obj.get("created").is_some_and(|c| c.is_string()) {
        obj.insert("created".into(), serde_json::Value::String(created_now()));
    }
    Ok(config)
}

/// `SOURCE_DATE_EPOCH` when set and valid, else the current time, as RFC 3339 UTC.
fn created_now() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0));
    epoch
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An oci-spec descriptor for a hoist digest.
fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    let d: oci_spec::image::Digest = digest.as_str().parse().map_err(|e| Error::InvalidConfig {
        reason: format!("digest {digest}: {e}"),
    })?;
    Ok(Descriptor::new(MediaType::from(media_type), size, d))
}

/// Stores the image's config and OCI manifest in `content` (checking every layer blob is
/// there with its size) and returns both with their digests.
pub fn write_manifest(content: &ContentStore, img: &Image) -> Result<Manifested> {
    for layer in &img.layers {
        if !content.has(&layer.digest) {
            return Err(Error::MissingBlob {
                digest: layer.digest.clone(),
            });
        }
        let actual = content
            .size(&layer.digest)
            .map_err(Error::store(&layer.digest))?;
        if actual != layer.size {
            return Err(Error::LayerSize {
                digest: layer.digest.clone(),
                expected: layer.size,
                actual,
            });
        }
    }
    let config = finish_config(img)?;
    let config = serde_json::to_vec(&config).map_err(|e| Error::InvalidConfig {
        reason: e.to_string(),
    })?;
    let config_digest = content.write_blob(&config).map_err(|source| Error::Store {
        digest: Digest::of(&config),
        source,
    })?;
    let layers = img
        .layers
        .iter()
        .map(|l| descriptor(&l.media_type, &l.digest, l.size))
        .collect::<Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(OCI_CONFIG, &config_digest, config.len() as u64)?)
        .layers(layers)
        .build()
        .map_err(|e| Error::InvalidConfig {
            reason: format!("manifest: {e}"),
        })?;
    let manifest = serde_json::to_vec(&manifest).map_err(|e| Error::InvalidConfig {
        reason: format!("manifest: {e}"),
    })?;
    let manifest_digest = content
        .write_blob(&manifest)
        .map_err(|source| Error::Store {
            digest: Digest::of(&manifest),
            source,
        })?;
    Ok(Manifested {
        manifest_digest,
        config_digest,
        manifest,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gets_rootfs_and_created() {
        let d = Digest::of(b"x");
        let img = Image {
            layers: vec![LayerBlob {
                digest: d.clone(),
                diff_id: d.clone(),
                size: 1,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            }],
            config: serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": 1}),
        };
        let c = finish_config(&img).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][0], d.to_string());
        assert!(c["created"].as_str().unwrap().ends_with('Z'));
        let bad = Image {
            layers: vec![],
            config: serde_json::json!({"os": "linux"}),
        };
        assert!(matches!(
            finish_config(&bad),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn missing_layer_blob_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let content = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"absent");
        let img = Image {
            layers: vec![LayerBlob {
                digest: d.clone(),
                diff_id: d.clone(),
                size: 6,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            }],
            config: serde_json::json!({"architecture": "amd64", "os": "linux"}),
        };
        let err = write_manifest(&content, &img).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}
