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
// Disk usage and prune: du, prune --all/--keep-storage/--filter, prune beside a build.
mod gc;
// Failed builds: exit codes, messages, the build context's boundary.
mod errors;
// Multi-stage, targets, build args, --call, cache and secret mounts.
mod multistage;
// The same Dockerfiles built by buildah and by hoist, root filesystems and configs compared.
mod differential;
// COPY/ADD: --link, --parents, --exclude, ADD of URLs and git.
mod add_copy;
// .dockerignore and NAME.dockerignore: which context files a build sees.
mod dockerignore;
// hoistd: daemon builds, incremental context sync, concurrent clients, restarts, TLS.
mod daemon;
// The Python SDK: its unit tests, and a Python frontend (componentize-py) building images.
mod python_sdk;
// Frontends from registries: push/pull/inspect, `# syntax=`, policy, chaining.
mod syntax;

// RUN --mount=type=ssh with --ssh.
mod ssh;
// The buildpacks frontend: source trees with no Dockerfile, built and run.
mod buildpacks;
// Explainable builds: why steps ran, --log-file, the failure report last, the tty display.
mod explain;
