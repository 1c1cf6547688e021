//! Frontends as OCI artifacts: the CNCF Wasm OCI artifact layout, and pushing, resolving and
//! pulling frontends in that layout.
//!
//! A published frontend is an OCI image manifest whose config has the media type
//! `application/vnd.wasm.config.v0+json` (created, architecture `wasm`, os `wasip2`,
//! `layerDigests`, and the component's `imports`/`exports`) and whose only layer is the
//! component, `application/wasm`, titled with `org.opencontainers.image.title`. That is the
//! layout `wkg oci push` and other Wasm tools write, so their artifacts load here too.
//!
//! This crate owns that layout ([`artifact`]), reading a component's world from its bytes
//! ([`component`]), and the registry traffic for it ([`FrontendRegistry`]). It must not compile
//! or run components (host/frontend does) nor decide which frontend a build uses (the engine
//! does); registry access settings and credentials are host/source's [`RegistryOptions`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(content: hoist_store::ContentStore) -> Result<(), hoist_frontend_oci::Error> {
//! use hoist_frontend_oci::FrontendRegistry;
//! let registry = FrontendRegistry::new(Default::default());
//! let bytes = std::fs::read("frontend.wasm").unwrap();
//! registry.push("127.0.0.1:5000/team/frontend:1", &bytes, "frontend.wasm").await?;
//! let resolved = registry.resolve("127.0.0.1:5000/team/frontend:1").await?;
//! let blob = registry.fetch(&resolved, &content).await?;
//! assert_eq!(blob, resolved.layer.digest);
//! # Ok(()) }
//! ```
//!
//! # Guarantees and key decision
//!
//! The config blob is fetched and checked (a Wasm config, a `hoist:frontend@1.x` world, imports
//! the host serves) *before* the component is downloaded, so a container image or a frontend
//! for another contract version is refused after two small requests. The component enters the
//! content store only when its bytes hash to the digest the manifest names.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod artifact;
pub mod component;
mod registry;

pub use artifact::{WasmConfig, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, TITLE_ANNOTATION};
pub use component::{describe, ComponentInfo};
pub use hoist_source::RegistryOptions;
pub use hoist_store::Digest;
pub use registry::{FrontendRegistry, LayerInfo, Pushed, Resolved};

/// Largest config blob accepted: a Wasm config is a few KiB of names.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Largest component accepted from a registry: interpreters compiled to Wasm reach tens of MiB.
pub const MAX_COMPONENT_BYTES: u64 = 512 << 20;

/// Everything that can go wrong publishing or fetching a frontend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to the registry failed (unreachable, not found, unauthorized, digest mismatch).
    #[error(transparent)]
    Registry(#[from] hoist_source::Error),
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {reason}")]
    InvalidComponent {
        /// Why.
        reason: String,
    },
    /// The reference names something that is not a Wasm artifact (e.g. a container image).
    #[error("{reference} is not a WebAssembly frontend: {reason}")]
    NotAFrontend {
        /// The reference.
        reference: String,
        /// What it is instead.
        reason: String,
    },
    /// The artifact is a Wasm artifact but for a world or contract version hoist does not serve.
    #[error("{reference}: {source}")]
    Unsupported {
        /// The reference.
        reference: String,
        /// The host's refusal.
        source: hoist_frontend_host::Error,
    },
    /// The manifest or config is malformed.
    #[error("{reference}: invalid Wasm artifact: {reason}")]
    InvalidArtifact {
        /// The reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob is larger than hoist accepts.
    #[error("{reference}: the {what} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// The reference.
        reference: String,
        /// Which blob.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The content store failed.
    #[error("content store, for {reference}: {source}")]
    Store {
        /// The reference.
        reference: String,
        /// The store's error.
        source: hoist_store::Error,
    },
}

impl Error {
    /// True when the repository, tag or digest does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Registry(e) if e.is_not_found())
    }

    /// True when the registry could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Registry(e) if e.is_unreachable())
    }
}
