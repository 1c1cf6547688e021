//! hoist's end-to-end tests: one binary, a module per area (see `docs/testing.md`).
//!
//! They run as root against real runc, overlayfs, Debian's `docker-registry`, skopeo and umoci;
//! `.ci/run` installs all of them.

#[macro_use]
mod macros;

mod util;

// The harness checking itself: registry, base image, unpacking.
mod harness;
// The command line: flags, usage errors, help, completions.
mod cli;
// What a build puts in an image, and every exporter.
mod image;
// The build cache: what runs again and what does not.
mod cache;
// Failed builds: exit codes, messages, the build context's boundary.
mod errors;
// Multi-stage, targets, build args, --call, cache and secret mounts.
mod multistage;
