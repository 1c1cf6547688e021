//! The WebAssembly frontend host: loads frontend components, caches their compiled form, and
//! runs `build` in a sandbox, serving the `gateway` imports from the engine.
//!
//! This crate owns everything between a frontend's bytes and the engine: checking that the bytes
//! are a component for a contract version hoist serves (`hoist:frontend@1.x`, see
//! `wit/frontend.wit`), compiling and caching it, instantiating it per build, enforcing limits,
//! checking every path and size a frontend sends, and converting WIT records to `hoist_llb`
//! types (validating definitions before the engine sees them). It must not solve, fetch or read
//! anything itself: all of that goes through the [`Gateway`] trait the engine implements.
//!
//! # Costs and lifetimes
//!
//! - One wasmtime `Engine` per [`FrontendHost`] (per process), with one epoch-ticker thread.
//! - A `Component` is costly to compile (Cranelift, without its optimisation passes: see
//!   [`FrontendHost::new`]): compiled once per component digest, kept on disk under
//!   `cache_dir` (keyed by sha256 and the engine's compatibility hash), so a later load, even in
//!   a new process, only maps the file; loaded frontends are also kept in memory by digest.
//! - An `InstancePre` (imports resolved) is made once per [`Frontend`] and reused.
//! - A `Store` is made per [`Frontend::build`] and dropped at its end: nothing a build leaves in
//!   memory reaches the next one.
//!
//! # Why no filesystem
//!
//! A frontend gets WASI with no preopened directories, no sockets, no environment and no
//! arguments; its stdout and stderr become gateway log lines. Everything it learns (the build
//! file, context listings) comes through gateway reads on build results, which the engine
//! serves from content-addressed snapshots. That keeps builds reproducible (the engine knows
//! every input a frontend looked at) and makes a malicious frontend harmless: it can read only
//! what the user sent, and only inside a result (`..` escapes are refused here, see
//! [`limits::normalize`]).
//!
//! # Guarantees
//!
//! - Nothing a frontend sends panics the host; every refusal is a typed [`Error`] for the build
//!   or an error value returned to the frontend.
//! - Memory past [`HostConfig::memory_limit`] stops the build with [`Error::MemoryLimit`];
//!   guest time (not counting gateway calls) past [`HostConfig::deadline`] with
//!   [`Error::Deadline`]. The same host then serves the next build normally.
//! - Guest-chosen sizes are capped by the constants in [`limits`].
//!
//! # Example
//!
//! ```no_run
//! # async fn run(gateway: std::sync::Arc<dyn hoist_frontend_host::Gateway>) -> Result<(), hoist_frontend_host::Error> {
//! use hoist_frontend_host::{FrontendHost, HostConfig};
//! let host = FrontendHost::new(HostConfig::new("/var/lib/hoist/frontends"))?;
//! let frontend = host.load(&std::fs::read("dockerfile.wasm").unwrap())?;
//! let out = frontend.build(vec![("target".into(), "app".into())], gateway).await?;
//! println!("{} platform(s)", out.platforms.len());
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

mod cache;
mod error;
mod gateway;
pub mod limits;
mod store;
pub mod test_support;
mod v1;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, OptLevel, Store, Trap, UpdateDeadline, WasmBacktrace};

pub use error::Error;
pub use gateway::{
    FileStat, FrontendEvent, FrontendSolved, Gateway, GatewayError, LogLevel, RefId, RefReader,
    ResolveMode, ResolvedImageConfig, Solver, Warning,
};
pub use hoist_llb::Platform;
pub use v1::MAX_LIVE_REFS;

use cache::CompileCache;
use store::{DeadlineExceeded, HostState, MemoryLimitExceeded};

/// Default memory cap of a frontend instance: 512 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

/// Default deadline of one build's guest time: 60 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// How often the epoch ticker runs; deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The contract versions this host serves, as shown in errors.
pub const SERVED_VERSIONS: &str = "1.x";

/// Configuration of a [`FrontendHost`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Directory for compiled components (created if missing).
    pub cache_dir: PathBuf,
    /// Cap on a frontend's linear memory, in bytes.
    pub memory_limit: u64,
    /// Cap on a build's guest time (time in gateway calls is not counted).
    pub deadline: Duration,
}

impl HostConfig {
    /// A configuration with the default limits and compiled components under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            cache_dir: cache_dir.into(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// The result of one platform of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformOutput {
    /// The platform; `None` for the host's.
    pub platform: Option<Platform>,
    /// The filesystem; `None` for an empty one.
    pub reference: Option<RefId>,
    /// OCI image config JSON.
    pub image_config: Option<String>,
}

/// What a frontend's `build` returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOutput {
    /// One result per platform.
    pub platforms: Vec<PlatformOutput>,
    /// Metadata entries, e.g. `result.json` of a subrequest.
    pub metadata: Vec<(String, Vec<u8>)>,
}

/// Loads and runs frontends; one per process.
#[derive(Clone)]
pub struct FrontendHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: CompileCache,
    config: HostConfig,
    loaded: Mutex<HashMap<String, Frontend>>,
}

impl std::fmt::Debug for FrontendHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontendHost")
            .field("config", &self.inner.config)
            .finish()
    }
}

fn setup(reason: impl std::fmt::Display) -> Error {
    Error::Setup {
        reason: reason.to_string(),
    }
}

impl FrontendHost {
    /// Creates the engine, the linker with the served imports, and the epoch ticker.
    pub fn new(config: HostConfig) -> Result<FrontendHost, Error> {
        let mut wcfg = Config::new();
        wcfg.epoch_interruption(true);
        // Frontends are short-lived planners whose time goes to gateway calls, so their first
        // use is better served by a faster compile than by faster code. Measured here (release,
        // 2 cores): Cranelift without its optimisation passes compiled the Dockerfile frontend
        // in 0.50-0.63 s instead of 0.68-0.71 s and an 18 MB Python one in 8.5 s instead of
        // 11.5 s, with warm builds as fast (9.4 vs 9.2-9.4 ms; 7.2 vs 10.5 ms). Without the
        // native-to-wasm address map a trap's backtrace still names each function, but not
        // its wasm offset; the SDK example's core module then compiles (one thread) in
        // 233-294 ms instead of 318-351 ms, and its compiled form is smaller.
        wcfg.cranelift_opt_level(OptLevel::None);
        wcfg.generate_address_map(false);
        let engine = Engine::new(&wcfg).map_err(setup)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(setup)?;
        v1::add_to_linker(&mut linker).map_err(setup)?;
        let cache = CompileCache::new(config.cache_dir.clone(), &engine)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("hoist-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .map_err(setup)?;
        Ok(FrontendHost {
            inner: Arc::new(HostInner {
                engine,
                linker,
                cache,
                config,
                loaded: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Loads a frontend component: checks it, compiles it (or maps the cached compiled form),
    /// and resolves its imports once.
    pub fn load(&self, bytes: &[u8]) -> Result<Frontend, Error> {
        self.load_hashed(hex::encode(Sha256::digest(bytes)), bytes)
    }

    /// [`FrontendHost::load`] for bytes whose sha256 (`sha256:HEX` or `HEX`) is already known
    /// and trusted: a built-in's, computed when hoist was built, or a content-store blob's,
    /// verified when it was stored. A component loaded before, or compiled and cached on
    /// disk, is found by the digest alone; the bytes are only read to compile them.
    pub fn load_known(&self, digest: &str, bytes: &[u8]) -> Result<Frontend, Error> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.load_hashed(hex.to_string(), bytes)
    }

    /// The frontend with component digest `digest` (`sha256:…`), if this host loaded it before:
    /// a caller holding only a verified digest (a content-store blob) need not read the bytes.
    pub fn loaded(&self, digest: &str) -> Option<Frontend> {
        let hex = digest.strip_prefix("sha256:")?;
        lock(&self.inner.loaded).get(hex).cloned()
    }

    /// Loads `bytes`, whose sha256 is `digest` (lowercase hex).
    fn load_hashed(&self, digest: String, bytes: &[u8]) -> Result<Frontend, Error> {
        if let Some(f) = lock(&self.inner.loaded).get(&digest) {
            return Ok(f.clone());
        }
        check_header(bytes)?;
        let inner = &self.inner;
        let component = match inner.cache.load(&inner.engine, &digest) {
            Some(c) => c,
            None => {
                let c =
                    Component::from_binary(&inner.engine, bytes).map_err(|e| Error::Compile {
                        digest: format!("sha256:{digest}"),
                        reason: format!("{e:#}"),
                    })?;
                // Check before caching, so a refused component leaves nothing on disk.
                check_world(&inner.engine, &c)?;
                inner.cache.store(&digest, &c)?;
                c
            }
        };
        let world = check_world(&inner.engine, &component)?;
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Link {
                reason: format!("{e:#}"),
            })?;
        let pre = v1::WorldPre::new(pre).map_err(|e| Error::Link {
            reason: format!("{e:#}"),
        })?;
        let frontend = Frontend {
            inner: Arc::new(FrontendInner {
                host: self.inner.clone(),
                digest: format!("sha256:{digest}"),
                world,
                pre,
            }),
        };
        lock(&inner.loaded).insert(digest, frontend.clone());
        Ok(frontend)
    }
}

/// Locks one of the host's maps; a panic while holding it cannot leave a map inconsistent
/// (single inserts).
fn lock<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses bytes that are not a WebAssembly component before the compiler sees them.
fn check_header(bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Error::NotWasm);
    }
    // Bytes 4..8: version 1 with layer 0 is a core module; layer 1 a component.
    if bytes[6..8] == [0, 0] {
        return Err(Error::NotComponent {
            reason: "it is a core module".into(),
        });
    }
    Ok(())
}

/// The names a frontend imports and exports, and the contract version it targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldInfo {
    /// The `hoist:frontend` version of its `builder` export, e.g. `1.0.0`.
    pub version: String,
    /// Every import name, e.g. `hoist:frontend/gateway@1.0.0`, `wasi:cli/stdout@0.2.6`.
    pub imports: Vec<String>,
    /// Every export name.
    pub exports: Vec<String>,
}

/// Splits `hoist:frontend/NAME@VERSION` into its interface name and version.
fn hoist_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("hoist:frontend/")?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

fn check_world(engine: &Engine, component: &Component) -> Result<WorldInfo, Error> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    check_world_names(imports, exports)
}

/// Checks a component's import and export names (as a registry artifact's config lists them,
/// or as read from the binary) against the contract versions this host serves, without
/// compiling anything; returns the world it targets.
pub fn check_world_names(imports: Vec<String>, exports: Vec<String>) -> Result<WorldInfo, Error> {
    let unsupported = |name: &str, version: &str| Error::UnsupportedWorld {
        found: format!("{name} (hoist:frontend@{version})"),
        served: SERVED_VERSIONS,
    };
    for name in &imports {
        if let Some((_, version)) = hoist_interface(name) {
            if major(version) != Some(v1::MAJOR) {
                return Err(unsupported(name, version));
            }
        } else if !name.starts_with("wasi:") {
            return Err(Error::Link {
                reason: format!("it imports {name}, which hoist does not provide"),
            });
        }
    }
    let mut version = None;
    for name in &exports {
        if let Some(("builder", v)) = hoist_interface(name) {
            if major(v) != Some(v1::MAJOR) {
                return Err(unsupported(name, v));
            }
            version = Some(v.to_string());
        }
    }
    let Some(version) = version else {
        return Err(Error::Link {
            reason: format!(
                "it does not export hoist:frontend/builder@{SERVED_VERSIONS} (exports: {})",
                if exports.is_empty() {
                    "none".to_string()
                } else {
                    exports.join(", ")
                }
            ),
        });
    };
    Ok(WorldInfo {
        version,
        imports,
        exports,
    })
}

/// A loaded frontend, ready to build; cheap to clone.
#[derive(Clone)]
pub struct Frontend {
    inner: Arc<FrontendInner>,
}

struct FrontendInner {
    host: Arc<HostInner>,
    digest: String,
    world: WorldInfo,
    pre: v1::WorldPre<HostState>,
}

impl std::fmt::Debug for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend")
            .field("digest", &self.inner.digest)
            .field("world_version", &self.inner.world.version)
            .finish()
    }
}

impl Frontend {
    /// The component's digest, `sha256:HEX`.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The `hoist:frontend` version it targets, e.g. `1.0.0`.
    pub fn world_version(&self) -> &str {
        &self.inner.world.version
    }

    /// Its import names.
    pub fn imports(&self) -> &[String] {
        &self.inner.world.imports
    }

    /// Its export names.
    pub fn exports(&self) -> &[String] {
        &self.inner.world.exports
    }

    fn new_store(&self, gateway: Arc<dyn Gateway>) -> Store<HostState> {
        let cfg = &self.inner.host.config;
        let state = HostState::new(gateway, cfg.memory_limit, cfg.deadline);
        let mut store = Store::new(&self.inner.host.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(ticks(cfg.deadline));
        store.epoch_deadline_callback(|ctx| match ctx.data().clock.remaining() {
            Some(left) => Ok(UpdateDeadline::Continue(ticks(left))),
            None => Err(DeadlineExceeded.into()),
        });
        store
    }

    /// Instantiates the frontend only (no build), for benchmarks and health checks.
    pub async fn instantiate(&self, gateway: Arc<dyn Gateway>) -> Result<(), Error> {
        let mut store = self.new_store(gateway);
        match self.inner.pre.instantiate_async(&mut store).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.classify(e, &store)),
        }
    }

    /// Runs `build(options)` in a fresh store, serving its imports from `gateway`.
    pub async fn build(
        &self,
        options: Vec<(String, String)>,
        gateway: Arc<dyn Gateway>,
    ) -> Result<BuildOutput, Error> {
        let mut store = self.new_store(gateway);
        let instance = match self.inner.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => return Err(self.classify(e, &store)),
        };
        let called = instance
            .hoist_frontend_builder()
            .call_build(&mut store, &options)
            .await;
        match called {
            Err(e) => Err(self.classify(e, &store)),
            Ok(Err(e)) => Err(v1::frontend_error(e)),
            Ok(Ok(result)) => v1::build_output(store.data_mut(), result),
        }
    }

    /// Turns a failed call into the error that explains it.
    fn classify(&self, e: wasmtime::Error, store: &Store<HostState>) -> Error {
        let cfg = &self.inner.host.config;
        if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
            return Error::MemoryLimit {
                limit: m.limit,
                requested: m.requested,
            };
        }
        if let Some(requested) = store.data().memory.exceeded {
            return Error::MemoryLimit {
                limit: cfg.memory_limit,
                requested,
            };
        }
        if e.is::<DeadlineExceeded>() || e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return Error::Deadline {
                deadline: cfg.deadline,
            };
        }
        Error::Trap {
            trap: match e.downcast_ref::<Trap>() {
                Some(t) => t.to_string(),
                None => format!("{e:#}"),
            },
            stderr_tail: store.data().log.stderr_tail(),
            backtrace: e.downcast_ref::<WasmBacktrace>().map(|b| b.to_string()),
        }
    }
}

/// Epoch ticks covering `d` (at least one).
fn ticks(d: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(d.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_refuses_non_wasm_and_core_modules() {
        assert!(matches!(
            check_header(b"#!/bin/sh\necho hi\n"),
            Err(Error::NotWasm)
        ));
        assert!(matches!(check_header(b"\0as"), Err(Error::NotWasm)));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(
            check_header(core),
            Err(Error::NotComponent { .. })
        ));
        let component = b"\0asm\x0d\0\x01\0";
        assert!(check_header(component).is_ok());
    }

    #[test]
    fn interface_names_and_versions() {
        assert_eq!(
            hoist_interface("hoist:frontend/gateway@1.2.0"),
            Some(("gateway", "1.2.0"))
        );
        assert_eq!(hoist_interface("wasi:cli/stdout@0.2.0"), None);
        assert_eq!(major("2.0.0"), Some(2));
        assert_eq!(major("x"), None);
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks(Duration::ZERO), 1);
        assert_eq!(ticks(EPOCH_TICK), 1);
        assert_eq!(ticks(EPOCH_TICK + Duration::from_nanos(1)), 2);
        assert_eq!(ticks(Duration::MAX), u64::MAX);
    }
}
