//! hoist-store owns the bytes of builds on disk: the content-addressed blob store
//! ([`content`]), conversion between layer tarballs and overlay "upper" directories ([`layer`]),
//! and the overlayfs snapshotter whose metadata lives in sled ([`snapshot`]).
//!
//! It must not know about LLB, the solver, registries or container runtimes: callers hand it
//! bytes, tarballs and layer ids, and get back digests, directories and mountpoints.
//!
//! # Example
//!
//! ```no_run
//! use hoist_store::content::ContentStore;
//! let store = ContentStore::open(std::path::Path::new("/var/lib/hoist/content"))?;
//! let digest = store.write_blob(b"{}")?;
//! assert_eq!(store.read(&digest)?, b"{}");
//! # Ok::<(), hoist_store::Error>(())
//! ```
//!
//! # Guarantees and key decision
//!
//! Every publication is atomic: blobs are renamed into place after fsync and digest check;
//! layers are built in a temp directory, renamed, and only then recorded in sled. A directory
//! that is not recorded is by definition unfinished and is removed on the next open, so a crash
//! never makes half a build step look finished. Layers on disk are kept in overlayfs' own "upper"
//! format (whiteouts are 0/0 character devices, opaque directories carry
//! `trusted.overlay.opaque=y`), so a committed upper dir *is* the layer and mounting needs no
//! conversion; OCI whiteouts exist only inside tarballs.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod content;
mod error;
pub mod layer;
pub mod snapshot;
pub mod sys;
#[cfg(test)]
mod testutil;

pub use content::{BlobWriter, ContentStore, Digest};
pub use error::{Error, Result};
pub use layer::{
    apply_layer, export_layer, export_layer_to_store, AppliedLayer, Compression, LayerDigests,
};
pub use snapshot::{LayerId, LayerInfo, Mutable, Snapshotter, View};
