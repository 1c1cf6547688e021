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

/// Looks up a built-in frontend by name (`dockerfile`, `buildpacks`, or `builtin:NAME`).
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    match name.strip_prefix("builtin:").unwrap_or(name) {
        "dockerfile" | "dockerfile.v0" => Some(DOCKERFILE),
        "buildpacks" => Some(BUILDPACKS),
        _ => None,
    }
}
