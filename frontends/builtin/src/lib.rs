//! The frontends hoist carries built in, as WebAssembly component bytes.
//!
//! `build.rs` compiles each frontend crate for `wasm32-wasip2` during the normal build, so
//! `hoist build .` needs no registry and no network to run a Dockerfile. This crate owns only the
//! embedding; loading and running components is host/frontend's job.

#![forbid(unsafe_code)]

/// The Dockerfile frontend component (frontends/dockerfile), answering `builtin:dockerfile`.
pub const DOCKERFILE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hoist_dockerfile.wasm"));

/// The buildpacks-like frontend component (frontends/buildpacks-like), answering
/// `builtin:buildpacks`: runnable images from source trees with no Dockerfile.
pub const BUILDPACKS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hoist_buildpacks.wasm"));

mod digests {
    include!(concat!(env!("OUT_DIR"), "/digests.rs"));
}

/// A built-in frontend: its component and the component's sha256, computed when hoist was
/// built, so a host finds its compiled form without reading (or hashing) the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The component.
    pub bytes: &'static [u8],
    /// The sha256 of `bytes`, lowercase hex.
    pub sha256: &'static str,
}

/// Looks up a built-in frontend by name (`dockerfile`, `buildpacks`, or `builtin:NAME`).
pub fn lookup(name: &str) -> Option<Builtin> {
    match name.strip_prefix("builtin:").unwrap_or(name) {
        "dockerfile" | "dockerfile.v0" => Some(Builtin {
            bytes: DOCKERFILE,
            sha256: digests::HOIST_DOCKERFILE_SHA256,
        }),
        "buildpacks" => Some(Builtin {
            bytes: BUILDPACKS,
            sha256: digests::HOIST_BUILDPACKS_SHA256,
        }),
        _ => None,
    }
}
