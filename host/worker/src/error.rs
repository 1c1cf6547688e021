//! The one error type of hoist-worker; variants name the command, user or path concerned.

use std::path::PathBuf;

/// Everything that can go wrong running an exec step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OCI runtime binary is not installed.
    #[error(
        "OCI runtime `{runtime}` not found in PATH; install it with `apt-get install {runtime}`"
    )]
    RuntimeMissing {
        /// The runtime looked for (`runc`).
        runtime: String,
    },
    /// The process ran and exited non-zero (or was killed by a signal: 128 + signal).
    #[error("process {args:?} did not complete successfully: exit code {code}{}", tail(.log))]
    ExitStatus {
        /// The exit code.
        code: i32,
        /// The command that was run.
        args: Vec<String>,
        /// The last lines the process printed (stdout and stderr interleaved).
        log: Vec<String>,
    },
    /// The step was cancelled and its container killed.
    #[error("process {args:?} was cancelled")]
    Cancelled {
        /// The command that was run.
        args: Vec<String>,
    },
    /// The runtime itself failed (bad spec, mount failure, ...), before or around the process.
    #[error("{runtime} {op} failed: {message}")]
    Runtime {
        /// The runtime binary.
        runtime: PathBuf,
        /// The runtime subcommand (`run`, `kill`, `delete`).
        op: &'static str,
        /// What the runtime reported.
        message: String,
    },
    /// The requested user or group cannot be resolved in the rootfs.
    #[error("cannot resolve user {user:?}: {reason}")]
    UnknownUser {
        /// The `user[:group]` string from the request.
        user: String,
        /// What is missing.
        reason: String,
    },
    /// The request itself is invalid.
    #[error("invalid exec request: {field}: {reason}")]
    InvalidRequest {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The runtime spec could not be built.
    #[error("building the OCI runtime spec: {reason}")]
    Spec {
        /// The oci-spec error.
        reason: String,
    },
    /// A filesystem or process operation failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn tail(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\n{}", log.join("\n"))
    }
}

impl Error {
    /// True when the step was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. })
    }

    /// The process exit code, when the process ran and failed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Error::ExitStatus { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the runtime binary is missing.
    pub fn is_runtime_missing(&self) -> bool {
        matches!(self, Error::RuntimeMissing { .. })
    }

    /// True when a file or user that was asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::UnknownUser { .. } | Error::RuntimeMissing { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Result with hoist-worker's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
