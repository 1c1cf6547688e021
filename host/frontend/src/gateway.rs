//! The engine side of the `gateway` imports: what the host asks of the engine on a frontend's
//! behalf. Paths and sizes are already checked (see [`crate::limits`]) when these are called.

use async_trait::async_trait;
use hoist_llb::{Definition, Platform, SourceLocation};

/// An opaque handle to a build result, handed out by the engine.
pub type RefId = String;

/// An error the engine reports to the frontend (it sees `message` and `location`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// What went wrong, for the user.
    pub message: String,
    /// The build-file lines concerned, if known.
    pub location: Option<SourceLocation>,
    /// Whether the path or reference asked for does not exist.
    pub not_found: bool,
}

impl GatewayError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> GatewayError {
        GatewayError {
            message: message.into(),
            location: None,
            not_found: false,
        }
    }

    /// A "no such file or directory" error for `path`.
    pub fn not_found(path: &str) -> GatewayError {
        GatewayError {
            message: format!("{path}: no such file or directory"),
            location: None,
            not_found: true,
        }
    }

    /// Whether the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }
}

/// How `resolve_image_config` treats a local copy of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveMode {
    /// Use a local copy if there is one.
    Default,
    /// Always ask the registry.
    Pull,
    /// Never touch the network.
    Local,
}

/// The resolved configuration of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImageConfig {
    /// Fully qualified reference, e.g. `docker.io/library/busybox:latest`.
    pub canonical_ref: String,
    /// Digest of the manifest chosen for the platform.
    pub digest: String,
    /// The OCI image config JSON.
    pub config: String,
}

/// The answer of a frontend subrequest: its result and image config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrontendSolved {
    /// The result; `None` for an empty filesystem.
    pub reference: Option<RefId>,
    /// The image config JSON it returned.
    pub image_config: Option<String>,
}

/// One directory entry or `stat` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Path relative to the result's root (the entry name for `read_dir`).
    pub path: String,
    /// Unix mode including file-type bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Symlink target, for symlinks.
    pub link_target: Option<String>,
}

/// A warning from the frontend (e.g. a build check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule, e.g. `StageNameCasing`.
    pub rule: Option<String>,
    /// The message.
    pub message: String,
    /// Further lines of explanation.
    pub detail: Vec<String>,
    /// Where to read more.
    pub url: Option<String>,
    /// The build-file lines concerned.
    pub location: Option<SourceLocation>,
}

/// Severity of a frontend log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something the user should look at.
    Warn,
    /// Something failed.
    Error,
}

/// Something the frontend reports for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendEvent {
    /// A warning.
    Warn(Warning),
    /// A log line (including the frontend's stdout, at `Info`, and stderr, at `Warn`).
    Log(LogLevel, String),
}

/// Solving and resolving on a frontend's behalf.
#[async_trait]
pub trait Solver: Send + Sync {
    /// Solves `def` (already validated); lazily unless `evaluate`. `None` is the empty filesystem.
    async fn solve(&self, def: Definition, evaluate: bool) -> Result<Option<RefId>, GatewayError>;

    /// Runs another frontend (`builtin:NAME` or an OCI reference) with options and inputs.
    async fn solve_frontend(
        &self,
        source: String,
        options: Vec<(String, String)>,
        inputs: Vec<(String, Definition)>,
    ) -> Result<FrontendSolved, GatewayError>;

    /// Resolves an image reference for a platform without pulling layers.
    async fn resolve_image_config(
        &self,
        reference: String,
        platform: Option<Platform>,
        mode: ResolveMode,
    ) -> Result<ResolvedImageConfig, GatewayError>;
}

/// Reads on a result; `path` is normalised, relative to the result's root, never escapes it.
#[async_trait]
pub trait RefReader: Send + Sync {
    /// At most `length` bytes of the file at `path` from `offset` (fewer at end of file).
    async fn read_file(
        &self,
        reference: &RefId,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, GatewayError>;

    /// Entries of the directory at `path` (optionally matching a glob), at most `limit` + 1.
    async fn read_dir(
        &self,
        reference: &RefId,
        path: &str,
        pattern: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileStat>, GatewayError>;

    /// Describes `path` without following a final symlink.
    async fn stat(&self, reference: &RefId, path: &str) -> Result<FileStat, GatewayError>;
}

/// Everything a frontend build needs from the engine.
pub trait Gateway: Solver + RefReader {
    /// The named build contexts given by the client (`context`, `dockerfile`, …).
    fn inputs(&self) -> Vec<(String, Definition)>;

    /// Shows a frontend warning or log line to the user.
    fn report(&self, event: FrontendEvent);
}
