//! What an exec step asks for, independent of the runtime that runs it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One process to run in a container over a prepared root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The writable root filesystem (a snapshotter mountpoint).
    pub rootfs: PathBuf,
    /// argv; must not be empty.
    pub args: Vec<String>,
    /// `KEY=value` pairs; a default `PATH` is added when absent.
    pub env: Vec<String>,
    /// Working directory inside the container; empty means `/`.
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved against the rootfs; empty means root.
    pub user: String,
    /// Hostname inside the container; empty means `hoist`.
    pub hostname: String,
    /// Network mode.
    pub network: Network,
    /// Run with every capability and no masked paths.
    pub insecure: bool,
    /// Extra mounts (caches, secrets, build contexts, tmpfs).
    pub mounts: Vec<ExecMount>,
}

impl ExecRequest {
    /// A request running `args` as root on `rootfs` with defaults for everything else.
    pub fn new(
        rootfs: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ExecRequest {
            rootfs: rootfs.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
}

/// Network mode of an exec step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// A new network namespace with only loopback up.
    #[default]
    None,
    /// Share the host's network namespace.
    Host,
}

/// An extra mount inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMount {
    /// Absolute destination path inside the container.
    pub dest: String,
    /// What is mounted there.
    pub kind: MountKind,
}

/// What an [`ExecMount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Mount read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes; 0 means the kernel default.
        size: u64,
    },
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

/// A shared flag asking a running step to stop; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation; the container is killed.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
