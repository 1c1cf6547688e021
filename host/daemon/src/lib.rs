//! hoistd: the hoist engine as a long-running daemon behind the gRPC control API of `hoist-api`.
//!
//! This crate owns the daemon's side of the API: the [`Daemon`] (one engine, the copies of
//! client contexts, the open sessions, counters), the tonic service mapping each RPC onto it
//! ([`service`]), the session stream syncing local contexts incrementally ([`session`],
//! [`sync`]), builds with streamed progress and exports ([`solve`]), and the listeners
//! (`unix://`, `tcp://` with TLS and optional client certificates, [`listen`]). It must not
//! solve, cache or export anything itself (the engine does), nor render progress (the CLI does).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use hoist_daemon::{listen, Daemon, DaemonConfig};
//! let daemon = Daemon::start(DaemonConfig::new("/var/lib/hoistd".into()))?;
//! let address = hoist_api::Address::parse("unix:///run/hoist/hoistd.sock")?;
//! listen::serve(daemon, vec![address], listen::ListenOptions::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! # Key decisions
//!
//! * Local contexts are pushed by the client (a listing, then only the files whose size or
//!   modification time differ from the daemon's copy), not pulled by the daemon: one round trip
//!   per context, and the client applies `.dockerignore` so ignored files never leave it.
//! * A copy is keyed by a stable key the client derives (machine id, directory, role), so the
//!   copy's path, and with it every cache key downstream of the context, is the same from one
//!   build to the next and across daemon restarts.
//! * The daemon's frontend policy (`hoistd --allow-frontend`) binds every build; a client's own
//!   policy can only narrow it for that client's build, never widen it.
//! * Secrets exist only in the session's memory and the engine's job; nothing here logs a
//!   request (the wire `Secret` has a redacted `Debug`).
#![deny(unsafe_code)]

pub mod listen;
pub mod service;
pub mod session;
pub mod solve;
pub mod sync;
pub mod usage;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use hoist_engine::{Engine, EngineConfig};

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine could not open its state or the machine cannot build (overlayfs, runc).
    #[error("hoistd cannot start: {0}")]
    Engine(#[from] hoist_engine::Error),
    /// The OCI runtime is missing or does not run.
    #[error("hoistd cannot start: the OCI runtime {runtime:?} does not work: {reason}")]
    Runtime {
        /// The runtime binary.
        runtime: String,
        /// What failed.
        reason: String,
    },
    /// The copies of client contexts could not be set up.
    #[error("hoistd cannot start: {0}")]
    Copies(#[from] sync::SyncError),
}

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The engine's settings (state directory, parallelism).
    pub engine: EngineConfig,
}

impl DaemonConfig {
    /// Defaults over state directory `state_dir`.
    pub fn new(state_dir: PathBuf) -> DaemonConfig {
        DaemonConfig {
            engine: EngineConfig::new(state_dir),
        }
    }
}

/// What a worker is, as ListWorkers reports it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The runtime's version line.
    pub runtime: String,
    /// Most steps at once.
    pub parallelism: usize,
}

/// The running daemon: one engine shared by every client.
pub struct Daemon {
    /// The engine.
    pub engine: Engine,
    /// Copies of client contexts.
    pub copies: sync::CopyStore,
    /// Open sessions.
    pub sessions: session::Sessions,
    /// What sessions sent.
    pub transfer: sync::TransferCounters,
    /// Builds started since start-up.
    pub builds_started: AtomicU64,
    /// Builds running now.
    pub builds_running: AtomicU64,
    /// The worker.
    pub worker: WorkerInfo,
}

impl Daemon {
    /// Opens the engine and checks the machine can build: the overlayfs snapshotter (checked by
    /// the engine as it opens) and the OCI runtime (runc must run). Refuses with a clear message.
    pub fn start(config: DaemonConfig) -> Result<Arc<Daemon>, StartError> {
        let runtime = check_runtime("runc")?;
        let parallelism = config.engine.parallelism;
        let engine = Engine::open(config.engine)?;
        let copies = sync::CopyStore::open(&engine.state_dir().join("sessions/contexts"))?;
        Ok(Arc::new(Daemon {
            engine,
            copies,
            sessions: session::Sessions::default(),
            transfer: sync::TransferCounters::default(),
            builds_started: AtomicU64::new(0),
            builds_running: AtomicU64::new(0),
            worker: WorkerInfo {
                runtime,
                parallelism,
            },
        }))
    }
}

/// Runs `RUNTIME --version` and returns its first line.
fn check_runtime(runtime: &str) -> Result<String, StartError> {
    let failed = |reason: String| StartError::Runtime {
        runtime: runtime.to_string(),
        reason,
    };
    let out = Command::new(runtime)
        .arg("--version")
        .output()
        .map_err(|e| failed(format!("{e} (install runc, e.g. apt-get install runc)")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "`{runtime} --version` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or(runtime).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_is_refused_with_its_name() {
        let err = check_runtime("/nonexistent/runc-for-test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot start")
                && err.contains("runc-for-test")
                && err.contains("does not work"),
            "{err}"
        );
    }
}
