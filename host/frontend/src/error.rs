//! The one error type of this crate.

use std::path::PathBuf;
use std::time::Duration;

use hoist_llb::SourceLocation;

/// Everything that can go wrong loading or running a frontend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not WebAssembly at all.
    #[error("frontend is not a WebAssembly file (no \\0asm magic number)")]
    NotWasm,
    /// The bytes are a core module (or unparsable), not a component.
    #[error("frontend is not a WebAssembly component ({reason}); build it for wasm32-wasip2")]
    NotComponent {
        /// Why it was rejected.
        reason: String,
    },
    /// The component targets a contract version this host does not serve.
    #[error(
        "frontend targets {found}, but this host serves hoist:frontend@{served}; \
         rebuild it against a hoist:frontend 1.x SDK or upgrade hoist"
    )]
    UnsupportedWorld {
        /// The interface (with version) the component imports or exports.
        found: String,
        /// The version range this host serves.
        served: &'static str,
    },
    /// The component asks for imports the host does not provide, or lacks `builder`.
    #[error("frontend cannot be linked: {reason}")]
    Link {
        /// What is missing.
        reason: String,
    },
    /// Compiling the component failed.
    #[error("compiling frontend {digest}: {reason}")]
    Compile {
        /// The component's sha256 digest.
        digest: String,
        /// The compiler's message.
        reason: String,
    },
    /// Reading or writing the compiled-component cache failed.
    #[error("frontend cache {}: {source}", path.display())]
    Cache {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The host could not be set up (engine configuration, ticker thread).
    #[error("frontend host setup: {reason}")]
    Setup {
        /// What failed.
        reason: String,
    },
    /// The frontend tried to use more memory than the configured limit.
    #[error(
        "frontend exceeded its memory limit: it asked for {requested} bytes, \
         the limit is {limit} bytes (HostConfig::memory_limit)"
    )]
    MemoryLimit {
        /// The configured limit in bytes.
        limit: u64,
        /// The total the frontend asked for.
        requested: u64,
    },
    /// The frontend ran (not counting time spent in the gateway) past its deadline.
    #[error(
        "frontend ran longer than its deadline of {deadline:?} (HostConfig::deadline) and was \
         stopped"
    )]
    Deadline {
        /// The configured deadline.
        deadline: Duration,
    },
    /// The frontend trapped (panicked, hit `unreachable`, …).
    #[error(
        "frontend crashed: {trap}{}",
        if stderr_tail.is_empty() { String::new() } else { format!("; its last output: {}", stderr_tail.join(" | ")) }
    )]
    Trap {
        /// The trap, e.g. "wasm `unreachable` instruction executed".
        trap: String,
        /// The last lines the frontend wrote to stderr (a Rust panic message is there).
        stderr_tail: Vec<String>,
        /// The wasm backtrace, for debugging the frontend.
        backtrace: Option<String>,
    },
    /// The frontend returned a build error.
    #[error("{}{message}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Frontend {
        /// The frontend's message.
        message: String,
        /// The build-file lines concerned.
        location: Option<SourceLocation>,
    },
    /// The frontend returned something the host rejects (unknown reference, bad definition).
    #[error("frontend returned an invalid result: {reason}")]
    InvalidResult {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the frontend was stopped for exceeding its memory limit.
    pub fn is_memory_limit(&self) -> bool {
        matches!(self, Error::MemoryLimit { .. })
    }

    /// Whether the frontend was stopped at its deadline.
    pub fn is_deadline(&self) -> bool {
        matches!(self, Error::Deadline { .. })
    }

    /// Whether the frontend itself reported a build error.
    pub fn is_frontend(&self) -> bool {
        matches!(self, Error::Frontend { .. })
    }

    /// Whether the component was refused at load time (not wasm, not a component, wrong world).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self,
            Error::NotWasm
                | Error::NotComponent { .. }
                | Error::UnsupportedWorld { .. }
                | Error::Link { .. }
        )
    }

    /// The build-file location, for errors the frontend located.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            Error::Frontend { location, .. } => location.as_ref(),
            _ => None,
        }
    }
}
