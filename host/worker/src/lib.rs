//! hoist-worker owns running exec steps: it turns an [`ExecRequest`] (a prepared root
//! filesystem, argv, env, user, network mode, extra mounts) into a real container started by the
//! OCI runtime CLI (`runc run`), streams the process's output as it arrives, and reports the exit.
//!
//! It must not touch snapshots, layers or the solver: the caller prepares and commits the rootfs
//! (hoist-store's snapshotter) and decides what a failure means for the build.
//!
//! # Example
//!
//! ```no_run
//! use hoist_worker::{CancelToken, ExecRequest, RuncExecutor};
//! let exec = RuncExecutor::new(std::path::Path::new("/var/lib/hoist/worker"))?;
//! let req = ExecRequest::new("/var/lib/hoist/snapshots/t/abc/m", ["sh", "-c", "echo hi"]);
//! exec.run(&req, &mut |_stream, bytes| print!("{}", String::from_utf8_lossy(bytes)), &CancelToken::new())?;
//! # Ok::<(), hoist_worker::Error>(())
//! ```
//!
//! # Guarantees and key decision
//!
//! The rootfs only receives what the process writes: /etc/hosts, /etc/resolv.conf and
//! /etc/hostname are bind mounts of files in a per-run bundle directory, and any mountpoint the
//! runtime had to create because it was missing from the image is removed again after the run (if
//! still empty), so build layers stay clean. Every run uses a fresh container id and is
//! `runc delete --force`d on every path, including errors and cancellation. The spec is built
//! with the oci-spec crate (Docker's default capabilities, masked paths, pid/ipc/uts/mount
//! namespaces and a network namespace unless host networking is asked for).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod request;
pub mod rootfs;
mod runc;
pub mod spec;

pub use error::{Error, Result};
pub use request::{CancelToken, ExecMount, ExecRequest, MountKind, Network, Stream};
pub use runc::RuncExecutor;
