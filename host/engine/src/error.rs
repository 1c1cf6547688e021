//! The engine's error type: one enum, variants by area, composed with `#[from]`.

use std::path::{Path, PathBuf};

/// Everything a build can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on the host failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state directory is unusable or in use.
    #[error("state directory {path}: {message}")]
    State {
        /// The state directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The LLB definition is invalid.
    #[error(transparent)]
    Llb(#[from] hoist_llb::Error),
    /// The solver failed (a step failed, or was cancelled).
    #[error(transparent)]
    Solver(#[from] hoist_solver::Error),
    /// The content store or snapshotter failed.
    #[error(transparent)]
    Store(#[from] hoist_store::Error),
    /// Running a container failed.
    #[error(transparent)]
    Worker(#[from] hoist_worker::Error),
    /// An image could not be resolved or pulled.
    #[error(transparent)]
    Source(#[from] hoist_source::Error),
    /// Exporting the result failed.
    #[error(transparent)]
    Export(#[from] hoist_exporter::Error),
    /// The frontend failed or misbehaved.
    #[error(transparent)]
    Frontend(#[from] hoist_frontend_host::Error),
    /// A file op failed.
    #[error(transparent)]
    FileOp(#[from] crate::fileop::FileOpError),
    /// Resolving a path inside a filesystem failed.
    #[error(transparent)]
    Path(#[from] crate::fsutil::FsError),
    /// Syncing or checksumming a local context failed.
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    /// A named local context the definition uses was not given.
    #[error("local context {0:?} was not provided (use --build-context {0}=PATH)")]
    MissingContext(String),
    /// A secret an exec needs was not provided.
    #[error("secret {0:?} was not provided (use --secret id={0},src=PATH)")]
    MissingSecret(String),
    /// The build asked for something hoist does not do yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A frontend reference could not be resolved to a component.
    #[error("frontend {reference:?}: {message}")]
    FrontendRef {
        /// What the build asked for.
        reference: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// An internal invariant failed (a bug, reported instead of panicking).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }

    /// The build-file location the failure concerns, if known.
    pub fn location(&self) -> Option<&hoist_llb::SourceLocation> {
        match self {
            Error::Solver(e) => e.location(),
            Error::Frontend(e) => e.location(),
            _ => None,
        }
    }

    /// The digest of the step that failed, if a step failed.
    pub fn failed_vertex(&self) -> Option<hoist_llb::Digest> {
        match self {
            Error::Solver(e) => e.vertex_digest(),
            _ => None,
        }
    }

    /// The exit code and command of a RUN step whose process failed, if that is the failure.
    pub fn exit_status(&self) -> Option<(i32, &[String])> {
        match self {
            Error::Worker(hoist_worker::Error::ExitStatus { code, args, .. }) => Some((*code, args.as_slice())),
            Error::Solver(hoist_solver::Error::Vertex { source, .. }) => source.get_ref().downcast_ref::<Error>()?.exit_status(),
            _ => None,
        }
    }

    /// Whether the build was cancelled rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Solver(e) if e.is_cancelled())
    }
}
