//! The solver: turns a validated LLB [`Definition`] into vertices, gives each a content-based
//! cache key, looks keys up in a persistent cache index, and runs what is missing in parallel,
//! executing each vertex once even when several jobs need it at the same time.
//!
//! It owns the graph walk, cache keys, the scheduler, cross-job deduplication ("flight
//! control") and the sled cache index. It must not know how an op runs: it does not depend on
//! the store, workers or sources. The engine implements [`OpExecutor`] and hands the solver
//! opaque [`ResultId`]s (e.g. serialized snapshot ids), which the index stores.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(def: hoist_llb::Definition, exec: std::sync::Arc<dyn hoist_solver::OpExecutor>)
//! # -> Result<(), hoist_solver::Error> {
//! use hoist_solver::*;
//! let db = sled::open("/var/lib/hoist/solver").expect("open db");
//! let solver = Solver::new(&db, exec, SolverLimits { parallelism: 4 })?;
//! let (progress, mut events) = ProgressSender::channel();
//! tokio::spawn(async move { while let Some(ev) = events.recv().await { println!("{ev:?}") } });
//! let res = solver.solve(&def, SolveOptions::default(), progress).await?;
//! println!("{:?}", res.output);
//! # Ok(()) }
//! ```
//!
//! # Key decision: how cache keys are formed
//!
//! `key(v) = sha256("hoist.solver.key/v1\0" ‖ digest(v) ‖ u64 n ‖ (key(input) ‖ u32 output)×n
//! ‖ content)` where inputs are `Op::inputs` in order, `digest(v)` is the op digest of
//! `hoist-llb`, and `content` is byte 0, or byte 1 ‖ u64 len ‖ the bytes of the content key
//! [`OpExecutor::content_key`] returned (e.g. a local context checksum or the resolved image
//! manifest digest). So a key changes when the op, anything upstream, or upstream content
//! changes. Description and location are not part of it.
//!
//! When the op reads only some paths of an input (a `COPY a.txt` from the build context),
//! [`OpExecutor::selected_content`] may return their content checksum for that input position;
//! `key(input)` is then replaced by [`selected_key`] of it (BuildKit's content-based keys for
//! selectors), so a change elsewhere in that input leaves the op's key as it was.
//!
//! # Guarantees
//!
//! * Lazy: when a vertex is a cache hit, nothing upstream of it runs or is even looked up.
//! * A cache record is written only after `execute` returned successfully, and is flushed before
//!   the vertex is reported complete: a crash mid-build never leaves a half-finished step looking
//!   finished. Records survive restarts (a new `Solver` on the same sled db gets hits).
//! * One execution per cache key at a time across all jobs of a `Solver`; other jobs wait for it
//!   and receive its progress events. At most `parallelism` executions run at once.
//! * A failure ends the job: its other executions are cancelled, unless another job still waits
//!   on them. No-cache (global, per-op `ignore_cache`, or an index filter) re-executes those
//!   vertices *and their dependents* and overwrites their records.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod explain;
mod index;
mod progress;
mod selected;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures::future::{FutureExt, Shared, WeakShared};
use futures::stream::{FuturesUnordered, StreamExt};
use hoist_llb::{Definition, Digest, Op, OpKind, SourceLocation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

pub use error::{Error, ExecError};
pub use explain::{ExplainSession, ExplainStore, Explanation, FileFact, Reason, StepExplanation, StepStatus};
/// The boxed future type `OpExecutor` methods return (re-exported from `futures`).
pub use futures::future::BoxFuture;
use progress::Subscribers;
pub use progress::{LogSink, LogStream, ProgressEvent, ProgressSender};
pub use selected::{selected_key, SelectedContent, SELECTED_KEY_VERSION};

/// A vertex's cache key, `sha256:<hex>` (see the crate doc for how it is formed).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(pub Digest);

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

/// Version tag hashed first into every cache key; bump it when the formula changes.
pub const CACHE_KEY_VERSION: &[u8] = b"hoist.solver.key/v1\0";

/// The cache key of a vertex with op digest `digest`, input keys with the output index each
/// reads (in `Op::inputs` order), and an optional content key.
pub fn cache_key(digest: &Digest, inputs: &[(CacheKey, u32)], content: Option<&str>) -> CacheKey {
    let mut h = Sha256::new();
    h.update(CACHE_KEY_VERSION);
    h.update(digest.as_bytes());
    h.update(
        u64::try_from(inputs.len())
            .unwrap_or(u64::MAX)
            .to_le_bytes(),
    );
    for (k, out) in inputs {
        h.update(k.0.as_bytes());
        h.update(out.to_le_bytes());
    }
    match content {
        None => h.update([0u8]),
        Some(c) => {
            h.update([1u8]);
            h.update(u64::try_from(c.len()).unwrap_or(u64::MAX).to_le_bytes());
            h.update(c.as_bytes());
        }
    }
    CacheKey(Digest::from_bytes(h.finalize().into()))
}

/// An opaque result handle chosen by the engine (e.g. a serialized snapshot chain id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResultId(pub String);

impl ResultId {
    /// Wraps an engine-chosen id.
    pub fn new(id: impl Into<String>) -> ResultId {
        ResultId(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ResultId {
    fn from(s: String) -> ResultId {
        ResultId(s)
    }
}

impl From<&str> for ResultId {
    fn from(s: &str) -> ResultId {
        ResultId(s.to_string())
    }
}

/// Identity and display data of a vertex, given to the executor and used in events and errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VertexInfo {
    /// Op index in the job's definition.
    pub index: usize,
    /// Op digest.
    pub digest: Digest,
    /// The op's description, or its kind and short digest when it has none.
    pub name: String,
    /// Where the op comes from in the build file.
    pub location: Option<SourceLocation>,
}

/// Everything [`OpExecutor::execute`] gets for one execution.
#[derive(Debug)]
pub struct ExecJob {
    /// Which vertex.
    pub vertex: VertexInfo,
    /// Its cache key (e.g. to name the snapshot).
    pub cache_key: CacheKey,
    /// The op to run.
    pub op: Op,
    /// The results of the op's inputs, one per `Op::inputs()` entry, in that order.
    pub inputs: Vec<ResultId>,
    /// Where to write process output.
    pub log: LogSink,
}

/// How the engine runs ops; the solver calls it, never the other way round.
pub trait OpExecutor: Send + Sync {
    /// Extra content mixed into the vertex's cache key, called for every vertex of a solve
    /// before any cache lookup (sources: local context checksum, resolved manifest digest).
    fn content_key<'a>(
        &'a self,
        vertex: &'a VertexInfo,
        op: &'a Op,
    ) -> BoxFuture<'a, Result<Option<String>, ExecError>> {
        let _ = (vertex, op);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// The content of exactly the paths `op` reads from each input, one entry per `Op::inputs()`
    /// position (`inputs[k]` is the op at position `k`); `None` (or a shorter list) keys that
    /// input on its cache key as usual. Called for every vertex of a solve before any cache
    /// lookup; see [`SelectedContent`].
    fn selected_content<'a>(
        &'a self,
        vertex: &'a VertexInfo,
        op: &'a Op,
        inputs: &'a [&'a Op],
    ) -> BoxFuture<'a, Result<Vec<Option<SelectedContent>>, ExecError>> {
        let _ = (vertex, op, inputs);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Extra facets of the op for explaining cache misses (see [`explain`]), e.g.
    /// `secret:ID` → a keyed fingerprint of the secret. Never a secret value.
    fn explain_facets(&self, vertex: &VertexInfo, op: &Op) -> Vec<(String, String)> {
        let _ = (vertex, op);
        Vec::new()
    }

    /// The files a vertex's content key covers (a local context), to name the ones that
    /// changed between builds; `None` when the op has no such list.
    fn content_files<'a>(
        &'a self,
        vertex: &'a VertexInfo,
        op: &'a Op,
    ) -> BoxFuture<'a, Result<Option<Vec<FileFact>>, ExecError>> {
        let _ = (vertex, op);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Runs the op; returns one result per output index (`results[k]` is output `k`; exec ops:
    /// up to the highest mount `output`, non-exec ops: one).
    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>>;
}

/// Resource limits of a [`Solver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolverLimits {
    /// Most executions running at once, across all jobs (at least 1).
    pub parallelism: usize,
}

impl Default for SolverLimits {
    fn default() -> SolverLimits {
        SolverLimits {
            parallelism: std::thread::available_parallelism().map_or(4, |n| n.get()),
        }
    }
}

/// Options of one solve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveOptions {
    /// Re-execute every vertex (`--no-cache`).
    pub no_cache: bool,
    /// Re-execute these op indexes and their dependents (`--no-cache-filter`, resolved to ops).
    pub no_cache_filter: Vec<usize>,
}

/// Counts of what a solve did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SolveStats {
    /// Vertices taken from the cache index.
    pub cached: usize,
    /// Vertices this job executed.
    pub executed: usize,
    /// Vertices another job was already executing, whose result this job shared.
    pub joined: usize,
}

/// The outcome of a solve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolveResult {
    /// The result of the definition's output; `None` for an empty filesystem.
    pub output: Option<ResultId>,
    /// Op digests, index for index.
    pub digests: Vec<Digest>,
    /// Cache keys of the ops the output depends on; `None` for ops it does not need.
    pub cache_keys: Vec<Option<CacheKey>>,
    /// Per op, per `Op::inputs()` position: the selected content that stood for that input in
    /// the op's key (empty for ops not needed or reading whole inputs).
    pub selected: Vec<Vec<Option<SelectedContent>>>,
    /// What was cached, executed, shared.
    pub stats: SolveStats,
}

/// One record of the cache index, as [`Solver::records`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// The vertex's cache key.
    pub key: CacheKey,
    /// One result per output index.
    pub results: Vec<ResultId>,
    /// When the record was written.
    pub created: SystemTime,
}

/// The solver; cheap to clone, one per engine (cross-job dedup works within one `Solver`).
#[derive(Clone)]
pub struct Solver {
    inner: Arc<Inner>,
}

type FlightFut = BoxFuture<'static, Result<Arc<[ResultId]>, Error>>;

/// An execution in progress, found by cache key.
struct Flight {
    id: u64,
    /// `None` or a dead weak reference: nobody waits any more, treat as absent.
    fut: Option<WeakShared<FlightFut>>,
    subs: Subscribers,
}

struct Inner {
    index: index::Index,
    executor: Arc<dyn OpExecutor>,
    sem: Arc<Semaphore>,
    parallelism: usize,
    flights: Mutex<HashMap<CacheKey, Flight>>,
    next_id: AtomicU64,
    explain: ExplainStore,
}

impl Inner {
    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Flight>> {
        // A poisoned map is still consistent: entries are inserted/removed whole.
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove_flight(&self, key: &CacheKey, id: u64) {
        let mut flights = self.flights();
        if flights.get(key).is_some_and(|f| f.id == id) {
            flights.remove(key);
        }
    }
}

/// A vertex index and how its results were obtained.
type VertexDone = (usize, Result<(Arc<[ResultId]>, Outcome), Error>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Cached,
    Executed,
    Joined,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unvisited,
    Cached,
    Exec,
}

/// Per-solve data shared by the vertex futures of one job.
struct Job<'a> {
    def: &'a Definition,
    digests: &'a [Digest],
    keys: &'a [CacheKey],
    dirty: &'a [bool],
    progress: ProgressSender,
}

fn vertex_name(op: &Op, digest: &Digest) -> String {
    match &op.description {
        Some(d) => d.clone(),
        None => {
            let hex = digest.hex();
            format!("{} {}", op.kind_name(), hex.get(..12).unwrap_or(&hex))
        }
    }
}

impl Job<'_> {
    fn info(&self, i: usize) -> VertexInfo {
        info_of(self.def, self.digests, i)
    }

    fn cached_event(&self, i: usize) {
        self.progress.send(ProgressEvent::VertexCached {
            vertex: self.digests[i],
            name: vertex_name(&self.def.ops[i], &self.digests[i]),
            at: SystemTime::now(),
        });
    }

    /// Errors from a shared execution name the op as this job knows it.
    fn remap(&self, i: usize, e: Error) -> Error {
        match e {
            Error::Vertex { digest, source, .. } if digest == self.digests[i] => {
                let info = self.info(i);
                Error::Vertex {
                    index: i,
                    digest,
                    name: info.name,
                    location: info.location.map(Box::new),
                    source,
                }
            }
            other => other,
        }
    }

    /// The input results of vertex `i`, in `Op::inputs` order.
    fn gather(
        &self,
        i: usize,
        results: &[Option<Arc<[ResultId]>>],
    ) -> Result<Vec<ResultId>, Error> {
        let op = &self.def.ops[i];
        let mut out = Vec::new();
        let mut err = None;
        op.for_each_input(|r| {
            if err.is_some() {
                return;
            }
            let got = results.get(r.op as usize).and_then(|o| o.as_ref());
            match got.and_then(|res| res.get(r.output as usize)) {
                Some(id) => out.push(id.clone()),
                None => {
                    err = Some(Error::MissingOutput {
                        index: i,
                        name: vertex_name(op, &self.digests[i]),
                        location: op.location.clone().map(Box::new),
                        input: r.op,
                        output: r.output,
                        got: got.map_or(0, |g| g.len()),
                    })
                }
            }
        });
        err.map_or(Ok(out), Err)
    }
}

fn info_of(def: &Definition, digests: &[Digest], i: usize) -> VertexInfo {
    let op = &def.ops[i];
    VertexInfo {
        index: i,
        digest: digests[i],
        name: vertex_name(op, &digests[i]),
        location: op.location.clone(),
    }
}

fn vertex_error(info: &VertexInfo, source: ExecError) -> Error {
    Error::Vertex {
        index: info.index,
        digest: info.digest,
        name: info.name.clone(),
        location: info.location.clone().map(Box::new),
        source,
    }
}

/// Number of results an op must produce (highest output index + 1).
fn outputs_needed(op: &Op) -> usize {
    match &op.kind {
        OpKind::Exec(x) => x
            .mounts
            .iter()
            .filter_map(|m| m.output)
            .max()
            .map_or(0, |m| m as usize + 1),
        _ => 1,
    }
}

/// Owns a running execution task: dropping it before completion aborts the task.
struct FlightGuard {
    inner: Arc<Inner>,
    key: CacheKey,
    id: u64,
    info: VertexInfo,
    handle: tokio::task::JoinHandle<Result<Arc<[ResultId]>, Error>>,
    done: bool,
}

impl FlightGuard {
    async fn join(mut self) -> Result<Arc<[ResultId]>, Error> {
        let r = (&mut self.handle).await;
        self.done = true;
        match r {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(vertex_error(&self.info, ExecError::cancelled())),
            Err(_) => {
                self.inner.remove_flight(&self.key, self.id);
                Err(vertex_error(
                    &self.info,
                    ExecError::msg("executor panicked"),
                ))
            }
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if !self.done {
            self.handle.abort();
            self.inner.remove_flight(&self.key, self.id);
        }
    }
}

async fn run_flight(
    inner: Arc<Inner>,
    id: u64,
    key: CacheKey,
    info: VertexInfo,
    op: Op,
    inputs: Vec<ResultId>,
    subs: Subscribers,
) -> Result<Arc<[ResultId]>, Error> {
    let permit = inner.sem.clone().acquire_owned().await;
    let start = Instant::now();
    subs.send(ProgressEvent::VertexStarted {
        vertex: info.digest,
        name: info.name.clone(),
        at: SystemTime::now(),
    });
    let needed = outputs_needed(&op);
    let job = ExecJob {
        vertex: info.clone(),
        cache_key: key,
        op,
        inputs,
        log: LogSink::new(info.digest, subs.clone()),
    };
    let r = match permit {
        Ok(_permit) => inner.executor.execute(job).await,
        Err(_) => Err(ExecError::cancelled()),
    };
    let r = match r {
        Ok(res) if res.len() < needed => Err(vertex_error(
            &info,
            ExecError::msg(format!(
                "executor returned {} results, op has {needed} outputs",
                res.len()
            )),
        )),
        Ok(res) => inner.index.put(&key, &res).await.map(|()| Arc::from(res)),
        Err(e) => Err(vertex_error(&info, e)),
    };
    inner.remove_flight(&key, id);
    let at = SystemTime::now();
    match &r {
        Ok(_) => subs.send(ProgressEvent::VertexCompleted {
            vertex: info.digest,
            name: info.name.clone(),
            at,
            duration: start.elapsed(),
        }),
        Err(e) => subs.send(ProgressEvent::VertexFailed {
            vertex: info.digest,
            name: info.name.clone(),
            at,
            error: e.to_string(),
        }),
    }
    r
}

impl Solver {
    /// A solver keeping its cache index in `db`, running ops through `executor`.
    pub fn new(
        db: &sled::Db,
        executor: Arc<dyn OpExecutor>,
        limits: SolverLimits,
    ) -> Result<Solver, Error> {
        let parallelism = limits.parallelism.max(1);
        Ok(Solver {
            inner: Arc::new(Inner {
                index: index::Index::open(db)?,
                executor,
                sem: Arc::new(Semaphore::new(parallelism)),
                parallelism,
                flights: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                explain: ExplainStore::open(db).map_err(|e| Error::index("open", None, e))?,
            }),
        })
    }

    /// The cached results for `key`, if the index has a record.
    pub fn cache_lookup(&self, key: &CacheKey) -> Result<Option<Vec<ResultId>>, Error> {
        Ok(self.inner.index.get(key)?.map(|r| r.to_vec()))
    }

    /// Forgets the record for `key` (e.g. when the engine pruned its results); true if one existed.
    pub fn forget(&self, key: &CacheKey) -> Result<bool, Error> {
        self.inner.index.remove(key)
    }

    /// Every cache record, for disk usage and pruning (not in any order).
    pub fn records(&self) -> Result<Vec<CacheRecord>, Error> {
        Ok(self
            .inner
            .index
            .records()?
            .into_iter()
            .map(|(key, results, created)| CacheRecord {
                key,
                results,
                created: std::time::UNIX_EPOCH + std::time::Duration::from_secs(created),
            })
            .collect())
    }

    /// The records that explain cache misses; `prune` on it is the hook for `hoist prune`.
    pub fn explain_store(&self) -> &ExplainStore {
        &self.inner.explain
    }

    /// Solves `def`: validates it, computes cache keys, and executes what the cache lacks.
    pub async fn solve(
        &self,
        def: &Definition,
        opts: SolveOptions,
        progress: ProgressSender,
    ) -> Result<SolveResult, Error> {
        self.solve_explained(def, opts, progress, None).await
    }

    /// [`Solver::solve`], also explaining each needed vertex against the previous build of the
    /// session's scope: one [`ProgressEvent::VertexExplained`] per vertex, sent before it runs.
    pub async fn solve_explained(
        &self,
        def: &Definition,
        opts: SolveOptions,
        progress: ProgressSender,
        explain: Option<&ExplainSession>,
    ) -> Result<SolveResult, Error> {
        def.validate()?;
        let digests = def.digests()?;
        let n = def.ops.len();
        let mut stats = SolveStats::default();
        let Some(out) = def.output else {
            return Ok(SolveResult {
                output: None,
                digests,
                cache_keys: vec![None; n],
                selected: vec![Vec::new(); n],
                stats,
            });
        };
        let out_op = out.op as usize;

        // Which ops the output needs (validated refs point backwards: one reverse pass).
        let mut needed = vec![false; n];
        needed[out_op] = true;
        for i in (0..=out_op).rev() {
            if needed[i] {
                def.ops[i].for_each_input(|r| needed[r.op as usize] = true);
            }
        }

        // Dirty = no-cache by option, filter or op flag, or downstream of such an op.
        let mut filter = vec![false; n];
        for &i in &opts.no_cache_filter {
            if let Some(f) = filter.get_mut(i) {
                *f = true;
            }
        }
        let mut dirty = vec![false; n];
        for i in 0..=out_op {
            if needed[i] {
                let op = &def.ops[i];
                let mut d = opts.no_cache || op.ignore_cache || filter[i];
                op.for_each_input(|r| d |= dirty[r.op as usize]);
                dirty[i] = d;
            }
        }

        // Content keys, concurrently.
        let mut content: Vec<Option<String>> = vec![None; n];
        {
            let exec = &self.inner.executor;
            let digests = &digests;
            let mut stream = futures::stream::iter((0..=out_op).filter(|&i| needed[i]))
                .map(|i| async move {
                    let info = info_of(def, digests, i);
                    let r = exec.content_key(&info, &def.ops[i]).await;
                    (info, r)
                })
                .buffer_unordered(self.inner.parallelism.max(16));
            while let Some((info, r)) = stream.next().await {
                content[info.index] = r.map_err(|e| vertex_error(&info, e))?;
            }
        }

        // Selected content of inputs, concurrently.
        let mut selected: Vec<Vec<Option<SelectedContent>>> = vec![Vec::new(); n];
        {
            let exec = &self.inner.executor;
            let digests = &digests;
            let mut stream = futures::stream::iter((0..=out_op).filter(|&i| needed[i]))
                .map(|i| async move {
                    let info = info_of(def, digests, i);
                    let op = &def.ops[i];
                    let mut inputs = Vec::new();
                    op.for_each_input(|r| inputs.push(&def.ops[r.op as usize]));
                    let r = exec.selected_content(&info, op, &inputs).await;
                    (info, r)
                })
                .buffer_unordered(self.inner.parallelism.max(16));
            while let Some((info, r)) = stream.next().await {
                selected[info.index] = r.map_err(|e| vertex_error(&info, e))?;
            }
        }

        // Cache keys, in dependency order.
        let zero = CacheKey(Digest::from_bytes([0; 32]));
        let mut keys = vec![zero; n];
        let mut buf: Vec<(CacheKey, u32)> = Vec::new();
        for i in 0..=out_op {
            if needed[i] {
                buf.clear();
                def.ops[i].for_each_input(|r| {
                    let key = match selected[i].get(buf.len()) {
                        Some(Some(content)) => selected_key(content),
                        _ => keys[r.op as usize],
                    };
                    buf.push((key, r.output));
                });
                keys[i] = cache_key(&digests[i], &buf, content[i].as_deref());
            }
        }
        let job = Job {
            def,
            digests: &digests,
            keys: &keys,
            dirty: &dirty,
            progress,
        };

        // Plan: walk down from the output; a cache hit prunes everything above it.
        let mut state = vec![State::Unvisited; n];
        let mut results: Vec<Option<Arc<[ResultId]>>> = vec![None; n];
        let mut stack = vec![out_op];
        while let Some(i) = stack.pop() {
            if state[i] != State::Unvisited {
                continue;
            }
            if !dirty[i] {
                if let Some(r) = self.inner.index.get(&keys[i])? {
                    state[i] = State::Cached;
                    results[i] = Some(r);
                    stats.cached += 1;
                    job.cached_event(i);
                    continue;
                }
            }
            state[i] = State::Exec;
            def.ops[i].for_each_input(|r| {
                if state[r.op as usize] == State::Unvisited {
                    stack.push(r.op as usize);
                }
            });
        }

        // Progress only: the steps under a cache hit did not run either; report them as cached
        // too, as buildx does. Their results are not needed, so nothing is looked up.
        let mut below: Vec<usize> = (0..n).filter(|&i| state[i] == State::Cached).collect();
        let mut reported = vec![false; n];
        while let Some(i) = below.pop() {
            def.ops[i].for_each_input(|r| {
                let j = r.op as usize;
                if state[j] == State::Unvisited && !reported[j] {
                    reported[j] = true;
                    job.cached_event(j);
                    below.push(j);
                }
            });
        }

        if let Some(session) = explain {
            let forced: Vec<bool> = (0..n)
                .map(|i| opts.no_cache || def.ops[i].ignore_cache || filter[i])
                .collect();
            let rebuilt: Vec<bool> = state.iter().map(|s| *s == State::Exec).collect();
            let view = explain::SolveView {
                def,
                digests: &digests,
                keys: &keys,
                content: &content,
                needed: &needed,
                forced: &forced,
                dirty: &dirty,
                rebuilt: &rebuilt,
            };
            for (i, explanation) in session.observe(&*self.inner.executor, &view).await {
                job.progress.send(ProgressEvent::VertexExplained {
                    vertex: digests[i],
                    name: vertex_name(&def.ops[i], &digests[i]),
                    explanation,
                });
            }
        }
        drop(content);

        // Run: each vertex starts when all its executed inputs are done.
        let mut pending = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut deps = Vec::new();
        let mut ready = Vec::new();
        for i in (0..=out_op).filter(|&i| state[i] == State::Exec) {
            deps.clear();
            def.ops[i].for_each_input(|r| {
                if state[r.op as usize] == State::Exec {
                    deps.push(r.op as usize);
                }
            });
            deps.sort_unstable();
            deps.dedup();
            pending[i] = deps.len();
            for &d in &deps {
                dependents[d].push(i);
            }
            if deps.is_empty() {
                ready.push(i);
            }
        }
        let mut running = FuturesUnordered::new();
        for i in ready {
            let inputs = job.gather(i, &results)?;
            running.push(self.run_vertex(&job, i, inputs));
        }
        while let Some((i, r)) = running.next().await {
            let (res, outcome) = r?;
            match outcome {
                Outcome::Cached => stats.cached += 1,
                Outcome::Executed => stats.executed += 1,
                Outcome::Joined => stats.joined += 1,
            }
            results[i] = Some(res);
            for d in std::mem::take(&mut dependents[i]) {
                pending[d] -= 1;
                if pending[d] == 0 {
                    let inputs = job.gather(d, &results)?;
                    running.push(self.run_vertex(&job, d, inputs));
                }
            }
        }
        drop(running);

        let out_res = results[out_op]
            .as_ref()
            .and_then(|r| r.get(out.output as usize));
        let Some(output) = out_res.cloned() else {
            let op = &def.ops[out_op];
            return Err(Error::MissingOutput {
                index: out_op,
                name: vertex_name(op, &digests[out_op]),
                location: op.location.clone().map(Box::new),
                input: out.op,
                output: out.output,
                got: results[out_op].as_ref().map_or(0, |r| r.len()),
            });
        };
        let cache_keys = keys
            .iter()
            .zip(&needed)
            .map(|(k, &nd)| nd.then_some(*k))
            .collect();
        Ok(SolveResult {
            output: Some(output),
            digests,
            cache_keys,
            selected,
            stats,
        })
    }

    /// Gets vertex `i`'s results: joins a running execution, takes a cache hit, or starts one.
    async fn run_vertex(&self, job: &Job<'_>, i: usize, inputs: Vec<ResultId>) -> VertexDone {
        let key = job.keys[i];
        let decided = {
            let mut flights = self.inner.flights();
            let live = flights.get(&key).and_then(|f| {
                f.fut
                    .as_ref()
                    .and_then(|w| w.upgrade())
                    .map(|s| (s, f.subs.clone()))
            });
            if let Some((fut, subs)) = live {
                subs.add(job.progress.clone());
                job.progress.send(ProgressEvent::VertexStarted {
                    vertex: job.digests[i],
                    name: vertex_name(&job.def.ops[i], &job.digests[i]),
                    at: SystemTime::now(),
                });
                Ok((fut, Outcome::Joined))
            } else {
                match (!job.dirty[i])
                    .then(|| self.inner.index.get(&key))
                    .transpose()
                {
                    Err(e) => Err(e),
                    Ok(Some(Some(hit))) => {
                        drop(flights);
                        job.cached_event(i);
                        return (i, Ok((hit, Outcome::Cached)));
                    }
                    Ok(_) => {
                        let (fut, flight) = self.start_flight(job, i, inputs);
                        flights.insert(key, flight);
                        Ok((fut, Outcome::Executed))
                    }
                }
            }
        };
        let r = match decided {
            Ok((fut, outcome)) => fut.await.map(|r| (r, outcome)).map_err(|e| job.remap(i, e)),
            Err(e) => Err(e),
        };
        (i, r)
    }

    fn start_flight(
        &self,
        job: &Job<'_>,
        i: usize,
        inputs: Vec<ResultId>,
    ) -> (Shared<FlightFut>, Flight) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let key = job.keys[i];
        let info = job.info(i);
        let subs = Subscribers::new(job.progress.clone());
        let handle = tokio::spawn(run_flight(
            self.inner.clone(),
            id,
            key,
            info.clone(),
            job.def.ops[i].clone(),
            inputs,
            subs.clone(),
        ));
        let guard = FlightGuard {
            inner: self.inner.clone(),
            key,
            id,
            info,
            handle,
            done: false,
        };
        let fut: FlightFut = guard.join().boxed();
        let shared = fut.shared();
        // `downgrade` is None only for a completed Shared; this one was never polled.
        let flight = Flight {
            id,
            fut: shared.downgrade(),
            subs,
        };
        (shared, flight)
    }
}

#[cfg(test)]
mod tests;
