//! The engine value, its state directory, and the progress channel builds report on.
//!
//! State directory layout (all under `EngineConfig::state_dir`):
//!
//! | path | what |
//! | --- | --- |
//! | `db/` | sled: solver cache index, snapshot metadata, layer and checksum caches |
//! | `content/` | blobs by sha256 (layers, configs, manifests, frontends) |
//! | `snapshots/` | committed overlay layers and mutable upper dirs |
//! | `frontends/` | compiled frontend components, keyed by digest and engine hash |
//! | `cache-mounts/` | `RUN --mount=type=cache` directories |
//! | `runc/`, `tmp/` | runtime state and per-exec scratch, emptied at start |

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoist_frontend_host::{FrontendHost, HostConfig};
use hoist_solver::{ProgressEvent, ProgressSender, Solver, SolverLimits};
use hoist_source::{ImageSource, RegistryOptions};
use hoist_store::content::ContentStore;
use hoist_store::snapshot::Snapshotter;
use hoist_worker::RuncExecutor;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::exec::CacheMounts;
use crate::ops::Ops;
use crate::Error;

/// How long a second hoist process waits for the state directory before giving up.
const STATE_LOCK_WAIT: Duration = Duration::from_secs(120);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the cache, layers and metadata live.
    pub state_dir: PathBuf,
    /// Most steps running at once.
    pub parallelism: usize,
    /// Registry access (insecure hosts, credentials).
    pub registry: RegistryOptions,
    /// Frontend memory cap in bytes.
    pub frontend_memory: u64,
    /// Frontend wall-clock deadline.
    pub frontend_deadline: Duration,
    /// Frontends from registries: policy and offline resolution.
    pub frontends: crate::frontend_ref::FrontendSettings,
    /// Explain cache misses: compare each build with the last one of the same target and
    /// report why steps ran (on by default; off only to measure what it costs).
    pub explain: bool,
}

impl EngineConfig {
    /// Defaults: parallelism = 4 steps per CPU and at least 16 (steps mostly wait on
    /// processes, disks and networks: a CPU-count cap ran 4 independent `RUN sleep 1` stages in
    /// about 3 s on 2 cores instead of 1 s), 512 MiB and 60 s for frontends.
    pub fn new(state_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            state_dir,
            parallelism: std::thread::available_parallelism().map_or(4, |n| n.get()).saturating_mul(4).max(16),
            registry: RegistryOptions::default(),
            frontend_memory: 512 << 20,
            frontend_deadline: Duration::from_secs(60),
            frontends: crate::frontend_ref::FrontendSettings::default(),
            explain: true,
        }
    }
}

/// Secrets of a build by id; kept in memory only.
pub type Secrets = HashMap<String, Vec<u8>>;

/// SSH agent sockets a build forwards (`--ssh ID=SOCKET`), by id: each is bound into the RUN
/// steps that mount `type=ssh` with that id.
pub type SshSockets = HashMap<String, PathBuf>;

/// Everything the op executor shares across jobs.
pub(crate) struct Shared {
    pub(crate) state_dir: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Snapshotter,
    pub(crate) runtime: RuncExecutor,
    pub(crate) images: ImageSource,
    /// Registry access settings (for pushes).
    pub(crate) registry: RegistryOptions,
    pub(crate) caches: CacheMounts,
    /// Secrets of the jobs now running, by id (a job adds its own and removes them at its end).
    pub(crate) secrets: Mutex<Secrets>,
    /// SSH agent sockets of the jobs now running, by id (added and removed like secrets).
    pub(crate) ssh: Mutex<SshSockets>,
    /// Whether builds explain their cache misses ([`EngineConfig::explain`]).
    pub(crate) explain: bool,
    /// Build/prune lock, layers in use, last-used times (see `gc.rs`).
    pub(crate) gc: crate::gc::GcState,
}

impl Shared {
    /// A fresh scratch directory under `tmp/`.
    pub(crate) fn scratch_dir(&self) -> Result<tempfile::TempDir, Error> {
        let tmp = self.state_dir.join("tmp");
        tempfile::Builder::new().prefix("x").tempdir_in(&tmp).map_err(|e| Error::io(&tmp, e))
    }
}

/// The engine: open once per process (or daemon), run many builds, concurrently if needed.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) solver: Arc<Solver>,
    pub(crate) frontends: Arc<FrontendHost>,
    /// Which frontends may run, and whether registries are asked about them.
    pub(crate) frontend_settings: Arc<crate::frontend_ref::FrontendSettings>,
}

impl Engine {
    /// Opens (creating if needed) the state directory and checks the machine can build: the
    /// overlayfs snapshotter and the OCI runtime are verified here, not mid-build.
    pub fn open(config: EngineConfig) -> Result<Engine, Error> {
        let dir = &config.state_dir;
        for sub in ["content", "snapshots", "frontends", "cache-mounts", "runc", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(&dir.join(sub), e))?;
        }
        clear_dir(&dir.join("tmp"))?;
        let db = open_db(&dir.join("db"))?;
        let content = ContentStore::open(&dir.join("content"))?;
        let snapshots = Snapshotter::open(&dir.join("snapshots"), &db)?;
        let runtime = RuncExecutor::new(&dir.join("runc"))?;
        let images = ImageSource::new(content.clone(), config.registry.clone());
        let shared = Arc::new(Shared {
            state_dir: dir.clone(),
            db: db.clone(),
            content,
            snapshots,
            runtime,
            images,
            registry: config.registry.clone(),
            caches: CacheMounts::new(dir.join("cache-mounts")),
            secrets: Mutex::new(Secrets::new()),
            ssh: Mutex::new(SshSockets::new()),
            explain: config.explain,
            gc: crate::gc::GcState::open(&db)?,
        });
        let ops = Arc::new(Ops::new(shared.clone()));
        let solver = Arc::new(Solver::new(&db, ops, SolverLimits { parallelism: config.parallelism })?);
        let frontends = Arc::new(FrontendHost::new(HostConfig {
            cache_dir: dir.join("frontends"),
            memory_limit: config.frontend_memory,
            deadline: config.frontend_deadline,
        })?);
        let frontend_settings = Arc::new(config.frontends.clone());
        Ok(Engine { shared, solver, frontends, frontend_settings })
    }

    /// The state directory this engine uses.
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }
}

/// Opens sled, waiting while another hoist process holds the state directory.
fn open_db(path: &Path) -> Result<sled::Db, Error> {
    let started = Instant::now();
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock || is_lock_error(&e) => {
                if started.elapsed() > STATE_LOCK_WAIT {
                    return Err(Error::State {
                        path: path.to_path_buf(),
                        message: "in use by another hoist process (waited 120 s)".into(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(Error::State { path: path.to_path_buf(), message: format!("cannot open database: {e}") })
            }
        }
    }
}

/// sled reports a held lock as a plain I/O error mentioning the lock.
fn is_lock_error(e: &std::io::Error) -> bool {
    e.to_string().contains("lock")
}

/// Removes everything inside `dir` (leftovers of a killed process).
fn clear_dir(dir: &Path) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        result.map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// A progress event of a build: solver events plus what the frontend and exporters report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A vertex event or log chunk from the solver.
    Solver {
        /// The event.
        event: ProgressEvent,
    },
    /// Which frontend runs this build.
    Frontend {
        /// What was asked for (`builtin:dockerfile`, or an OCI reference).
        reference: String,
        /// The component's digest.
        digest: String,
    },
    /// A warning from the frontend (e.g. a build check).
    Warning {
        /// The rule, if any.
        rule: Option<String>,
        /// The message.
        message: String,
        /// The build-file location, if any.
        location: Option<hoist_llb::SourceLocation>,
    },
    /// A log line the frontend wrote.
    FrontendLog {
        /// The line.
        message: String,
    },
    /// An export step finished.
    Exported {
        /// What was written where.
        description: String,
    },
}

/// Where a build sends its events; cheap to clone.
#[derive(Clone)]
pub struct Progress(Option<mpsc::UnboundedSender<Event>>);

impl Progress {
    /// A progress channel and its receiving end.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress(Some(tx)), rx)
    }

    /// Progress that goes nowhere.
    pub fn discard() -> Progress {
        Progress(None)
    }

    /// Sends one event (dropped if nobody listens).
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }

    /// A solver progress sender whose events are forwarded into this channel.
    pub(crate) fn solver_sender(&self) -> ProgressSender {
        let (sender, mut rx) = ProgressSender::channel();
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                this.send(Event::Solver { event });
            }
        });
        sender
    }
}
