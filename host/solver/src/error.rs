//! The solver's error type.

use std::fmt;
use std::sync::Arc;

use hoist_llb::{Digest, SourceLocation};

use crate::CacheKey;

/// An error returned by an [`crate::OpExecutor`]: cheap to clone, so one failed execution can
/// be reported to every job waiting on it.
#[derive(Clone)]
pub struct ExecError {
    inner: Arc<dyn std::error::Error + Send + Sync + 'static>,
    cancelled: bool,
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl ExecError {
    /// Wraps any error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> ExecError {
        ExecError {
            inner: Arc::new(e),
            cancelled: false,
        }
    }

    /// An error that is just a message.
    pub fn msg(m: impl fmt::Display) -> ExecError {
        ExecError::new(Message(m.to_string()))
    }

    /// The execution was cancelled (e.g. the job was abandoned), not failed.
    pub fn cancelled() -> ExecError {
        ExecError {
            inner: Arc::new(Message("cancelled".into())),
            cancelled: true,
        }
    }

    /// Whether this reports a cancellation rather than a failure.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The wrapped error, for downcasting.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl fmt::Debug for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl From<std::io::Error> for ExecError {
    fn from(e: std::io::Error) -> ExecError {
        ExecError::new(e)
    }
}

impl From<String> for ExecError {
    fn from(m: String) -> ExecError {
        ExecError::msg(m)
    }
}

impl From<&str> for ExecError {
    fn from(m: &str) -> ExecError {
        ExecError::msg(m)
    }
}

/// ` at Dockerfile:3` or nothing.
pub(crate) struct At<'a>(pub &'a Option<Box<SourceLocation>>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, " at {l}"),
            None => Ok(()),
        }
    }
}

/// Errors of a solve; vertex errors keep the op's index, digest, description and location.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The definition failed validation.
    #[error("invalid definition: {0}")]
    Definition(#[from] hoist_llb::Error),
    /// A vertex's content key or execution failed.
    #[error("vertex {index} {name:?}{}: {source}", At(location))]
    Vertex {
        /// Op index in the job's definition.
        index: usize,
        /// Op digest.
        digest: Digest,
        /// The op's description (or kind and short digest).
        name: String,
        /// Where the op comes from in the build file (boxed to keep `Result`s small).
        location: Option<Box<SourceLocation>>,
        /// What the executor reported.
        #[source]
        source: ExecError,
    },
    /// An input's results (from execution or the cache index) lack the output a vertex reads.
    #[error(
        "vertex {index} {name:?}{}: input op {input} has {got} results, output {output} needed",
        At(location)
    )]
    MissingOutput {
        /// Op index of the reading vertex.
        index: usize,
        /// Its description.
        name: String,
        /// Where it comes from in the build file.
        location: Option<Box<SourceLocation>>,
        /// Index of the input op.
        input: u32,
        /// Output index needed.
        output: u32,
        /// Number of results the input has.
        got: usize,
    },
    /// Reading or writing the sled cache index failed.
    #[error("cache index {op} (key {key:?}): {source}")]
    CacheIndex {
        /// What was done: `open`, `get`, `insert`, `flush`, `remove`.
        op: &'static str,
        /// The cache key concerned, if any.
        key: Option<CacheKey>,
        /// The sled error.
        #[source]
        source: Arc<sled::Error>,
    },
    /// A cache index record does not decode.
    #[error("corrupt cache index record for key {key}: {message}")]
    CorruptRecord {
        /// The cache key concerned.
        key: CacheKey,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// Whether the failure is a cancellation reported by the executor.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Vertex { source, .. } if source.is_cancelled())
    }

    /// The digest of the vertex concerned, for vertex errors.
    pub fn vertex_digest(&self) -> Option<Digest> {
        match self {
            Error::Vertex { digest, .. } => Some(*digest),
            _ => None,
        }
    }

    /// The op index concerned, for vertex errors.
    pub fn op_index(&self) -> Option<usize> {
        match self {
            Error::Vertex { index, .. } | Error::MissingOutput { index, .. } => Some(*index),
            Error::Definition(e) => e.op_index(),
            _ => None,
        }
    }

    /// The build-file location of the failing vertex, if known.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            Error::Vertex { location, .. } | Error::MissingOutput { location, .. } => {
                location.as_deref()
            }
            Error::Definition(e) => e.location(),
            _ => None,
        }
    }

    pub(crate) fn index(op: &'static str, key: Option<CacheKey>, e: sled::Error) -> Error {
        Error::CacheIndex {
            op,
            key,
            source: Arc::new(e),
        }
    }
}
