//! Why a step was not taken from the cache: each build's steps are compared with the most recent
//! build of the same *scope* (the engine's name for "this target of this context"), and every
//! step gets an [`Explanation`].
//!
//! # Records
//!
//! A build opens an [`ExplainSession`] on the [`ExplainStore`] for its scope. The session holds
//! the scope's previous [`BuildRecord`]; each solve of the build adds its vertices as
//! [`StepFacts`] (name, location, op digest, cache key, parent steps, *facets* and content key)
//! and gets one explanation per vertex; [`ExplainSession::commit`] then makes the new record the
//! scope's record (rewritten only when it differs).
//!
//! # The same step across builds
//!
//! A step of this build is matched with a step of the previous record, in this order: the same
//! op digest (the op did not change; maybe its inputs did), the same description, the same
//! description without its `[stage n/m]` prefix, the same source location, and finally the same
//! op kind reading the same (matched) parent steps. Each earlier step is matched at most once; a
//! step without a match is a new step.
//!
//! # Facets
//!
//! A facet is one named input of an op: `command`, `env:NAME`, `cwd`, `mount /dest`,
//! `copy 1`, `source`, … ([`op_facets`]); the executor adds its own ([`OpExecutor::explain_facets`],
//! e.g. `secret:ID` with a keyed fingerprint). Comparing the facets of two matched steps names
//! what changed. Facet values are stored as 16-hex-digit SHA-256 fingerprints, except `source`
//! (the source identifier, e.g. an image reference). Content keys (image manifest digests,
//! context tree digests) are stored as they are: they are digests.
//!
//! # Files
//!
//! For a vertex with a content key, the executor can list the files it covers
//! ([`OpExecutor::content_files`]: path, type, mode, owner, short content digest); the manifest is
//! stored once per content key, so a later build can name the files that changed. A manifest is
//! asked for only when the store lacks one for that content key, so an unchanged context costs a
//! lookup.
//!
//! # Bounds, pruning, secrets
//!
//! At most [`MAX_TARGET_RECORDS`] scopes keep a record (the least recently written is dropped),
//! a manifest is kept only while a record refers to it, and a manifest over
//! [`MAX_MANIFEST_ENTRIES`] entries is not stored. [`ExplainStore::prune`] drops records (all, or
//! those older than a time) with their manifests, for `hoist prune`. No secret value is ever given
//! to this module: secret facets are fingerprints the engine computes with a key of its own, and
//! a changed secret is reported by its id only, as a note (secrets are not part of cache keys).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hoist_llb::{Definition, Digest, FileAction, Op, OpKind, OpRef, SourceLocation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{CacheKey, OpExecutor};

/// Changed files listed per step; the rest are counted.
pub const MAX_LISTED_FILES: usize = 20;

/// Entries a file manifest may have to be stored (a larger context is explained by its digest).
pub const MAX_MANIFEST_ENTRIES: usize = 200_000;

/// Scopes that keep a record; writing one more drops the least recently written.
pub const MAX_TARGET_RECORDS: usize = 64;

/// Sled tree of build records by scope; the version changes with the record format.
const RECORDS_TREE: &str = "hoist-solver/explain-records/v1";

/// Sled tree of file manifests by content key.
const MANIFESTS_TREE: &str = "hoist-solver/explain-manifests/v1";
/// The sled trees the explain store keeps. They name digests (base image manifests, file
/// contents) only as facts about earlier builds: garbage collection must not read them as
/// references that keep blobs alive.
pub const EXPLAIN_TREES: &[&str] = &[RECORDS_TREE, MANIFESTS_TREE];

/// Errors of the explain store (never fatal to a build: the solver logs them and goes on).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// sled failed.
    #[error("explain store: {op}: {source}")]
    Store {
        /// What was done.
        op: &'static str,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A stored record does not decode (it is dropped and rewritten).
    #[error("explain store: corrupt {what}: {message}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        message: String,
    },
}

fn store_err(op: &'static str) -> impl FnOnce(sled::Error) -> ExplainError {
    move |source| ExplainError::Store { op, source }
}

/// The JSON value stored under `key` in `tree`, if any; `what` names it when it does not parse.
fn read_json<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    key: &str,
    what: impl FnOnce() -> String,
) -> Result<Option<T>, ExplainError> {
    let Some(raw) = tree.get(key.as_bytes()).map_err(store_err("get"))? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw).map(Some).map_err(|e| ExplainError::Corrupt {
        what: what(),
        message: e.to_string(),
    })
}

/// The type of a file in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, fifo or socket.
    Other,
}

/// One entry of the files a content key covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    /// Path relative to the source's root.
    pub path: String,
    /// Type.
    pub kind: FileKind,
    /// Permission bits (mode & 0o7777).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// A short digest of the content (files) or link target (symlinks); empty otherwise.
    pub digest: String,
}

/// What changed about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Its content (or link target).
    Content,
    /// Its permission bits.
    Mode,
    /// Its owner or group.
    Owner,
    /// Its type (file, directory, link).
    Type,
    /// It is new.
    Added,
    /// It is gone.
    Removed,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path relative to the source's root.
    pub path: String,
    /// What changed.
    pub changes: Vec<Change>,
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match self.changes.as_slice() {
            [Change::Added] => write!(f, "{path} added"),
            [Change::Removed] => write!(f, "{path} removed"),
            [Change::Content] => write!(f, "{path} changed"),
            changes => {
                let words: Vec<&str> = changes
                    .iter()
                    .map(|c| match c {
                        Change::Content => "content",
                        Change::Mode => "mode",
                        Change::Owner => "owner",
                        Change::Type => "type",
                        Change::Added => "added",
                        Change::Removed => "removed",
                    })
                    .collect();
                write!(f, "{path} changed ({})", words.join(", "))
            }
        }
    }
}

/// Why a step ran (or, in notes, something worth knowing about a cached one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The cache was turned off for this step (`--no-cache`, a filter, or the op's flag).
    NoCache,
    /// No earlier build of this target is recorded.
    FirstBuild,
    /// The earlier build had no step like this one.
    NewStep,
    /// Files of a source changed.
    Files {
        /// The source (e.g. the context name).
        source: String,
        /// The first changed paths, at most [`MAX_LISTED_FILES`].
        changed: Vec<FileChange>,
        /// How many paths changed in all.
        total: usize,
    },
    /// A source's content changed and no file list is available.
    Content {
        /// The source.
        source: String,
        /// The content key before.
        old: Option<String>,
        /// The content key now.
        new: Option<String>,
    },
    /// The base image's reference now resolves to another manifest.
    BaseImage {
        /// The image reference.
        reference: String,
        /// The manifest digest before.
        old: Option<String>,
        /// The manifest digest now.
        new: Option<String>,
    },
    /// The source identifier changed (e.g. another image tag).
    Source {
        /// Before.
        old: String,
        /// Now.
        new: String,
    },
    /// A build arg's value changed (the value is never reported).
    BuildArg {
        /// The build arg.
        name: String,
    },
    /// An environment variable's value changed.
    Env {
        /// The variable.
        name: String,
    },
    /// A secret's value changed (reported by id only).
    Secret {
        /// The secret id.
        id: String,
    },
    /// The command changed.
    Command,
    /// Another setting of the op changed (`cwd`, `user`, `mount /x`, `copy 1`, …).
    Setting {
        /// The facet name.
        name: String,
    },
    /// An input step changed.
    Parent {
        /// The input step.
        step: String,
        /// Its own root cause, in short.
        cause: String,
    },
    /// The frontend is another version than last time.
    Frontend {
        /// The earlier frontend digest.
        old: String,
        /// The frontend digest now.
        new: String,
    },
    /// Nothing changed, but the cache has no result for it (pruned, or the last run failed).
    CacheMissing,
}

/// Twelve hex digits of a `sha256:` digest, for display.
fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.get(..12).unwrap_or(hex)
}

impl Reason {
    /// One line, as shown next to a step.
    pub fn short(&self) -> String {
        match self {
            Reason::NoCache => "cache disabled (--no-cache)".into(),
            Reason::FirstBuild => "no earlier build of this target".into(),
            Reason::NewStep => "new step".into(),
            Reason::Files {
                source,
                changed,
                total,
            } => match changed.first() {
                Some(first) if *total > 1 => format!("{first} (+{} more)", total - 1),
                Some(first) => first.to_string(),
                None => format!("{source} changed"),
            },
            Reason::Content { source, .. } => format!("{source} content changed"),
            Reason::BaseImage {
                reference,
                old,
                new,
            } => format!(
                "base image {reference} changed ({} -> {})",
                old.as_deref().map_or("none", short_digest),
                new.as_deref().map_or("none", short_digest)
            ),
            Reason::Source { old, new } => format!("source changed ({old} -> {new})"),
            Reason::BuildArg { name } => format!("build arg {name} changed"),
            Reason::Env { name } => format!("env {name} changed"),
            Reason::Secret { id } => format!("secret {id} changed"),
            Reason::Command => "command changed".into(),
            Reason::Setting { name } => format!("{name} changed"),
            Reason::Parent { cause, step } if cause.is_empty() => format!("input {step} changed"),
            Reason::Parent { cause, .. } => cause.clone(),
            Reason::Frontend { .. } => "frontend changed".into(),
            Reason::CacheMissing => "unchanged, but not in the cache".into(),
        }
    }

    /// The full text, one or more lines.
    pub fn detail(&self) -> Vec<String> {
        match self {
            Reason::Files { source, changed, total } => {
                let mut out = vec![format!("{total} path(s) changed in {source}:")];
                out.extend(changed.iter().map(|c| format!("  {c}")));
                if *total > changed.len() {
                    out.push(format!("  ... and {} more", total - changed.len()));
                }
                out
            }
            Reason::Content { source, old, new } => vec![format!(
                "{source} content changed ({} -> {})",
                old.as_deref().unwrap_or("none"),
                new.as_deref().unwrap_or("none")
            )],
            Reason::BaseImage { reference, old, new } => vec![format!(
                "base image {reference} now resolves to {} (was {})",
                new.as_deref().unwrap_or("none"),
                old.as_deref().unwrap_or("none")
            )],
            Reason::Parent { step, cause } if cause.is_empty() => vec![format!("input step {step:?} changed")],
            Reason::Parent { step, cause } => vec![format!("input step {step:?} changed: {cause}")],
            Reason::Frontend { old, new } => vec![format!("frontend changed ({} -> {})", short_digest(old), short_digest(new))],
            Reason::Secret { id } => vec![format!("secret {id} changed (secrets are not part of cache keys; value not shown)")],
            Reason::CacheMissing => vec!["nothing changed since the last build, but the cache has no result (pruned, or the last run failed)".into()],
            other => vec![other.short()],
        }
    }
}

/// Whether a step's result came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Taken from the cache (or not needed below a cached step).
    Cached,
    /// Executed.
    Rebuilt,
}

/// Why one step was (not) cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Cached or rebuilt.
    pub status: StepStatus,
    /// Why it was rebuilt (empty when cached).
    pub reasons: Vec<Reason>,
    /// Changes that did not invalidate the cache (a secret's value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Reason>,
}

impl Explanation {
    /// One line, e.g. `rebuilt: src/main.rs changed (+1 more)` or `cached`.
    pub fn summary(&self) -> String {
        let mut out = match self.status {
            StepStatus::Cached => "cached".to_string(),
            StepStatus::Rebuilt => {
                let mut seen = Vec::new();
                for r in &self.reasons {
                    let s = r.short();
                    if !seen.contains(&s) {
                        seen.push(s);
                    }
                }
                let more = seen.len().saturating_sub(2);
                seen.truncate(2);
                let mut line = format!("rebuilt: {}", seen.join("; "));
                if more > 0 {
                    line.push_str(&format!(" (+{more} more reasons)"));
                }
                line
            }
        };
        for n in &self.notes {
            out.push_str(&format!("; note: {}", n.short()));
        }
        out
    }
}

/// One step of a build, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFacts {
    /// Description.
    pub name: String,
    /// Build-file location.
    pub location: Option<SourceLocation>,
    /// Op kind (`exec`, `file`, `source`, …).
    pub kind: String,
    /// Op digest.
    pub digest: Digest,
    /// Cache key.
    pub key: CacheKey,
    /// Parent steps (indexes into the record's steps).
    pub inputs: Vec<u32>,
    /// Facets: name → fingerprint (see the module doc).
    pub facets: BTreeMap<String, String>,
    /// The content key, if the op has one.
    pub content: Option<String>,
}

/// The steps of one build of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The frontend digest.
    pub frontend: String,
    /// When it was written (seconds since the epoch).
    pub written: u64,
    /// Steps, parents before children.
    pub steps: Vec<StepFacts>,
}

/// A step's explanation with what identifies it, for `--explain` and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepExplanation {
    /// Description.
    pub name: String,
    /// Op digest.
    pub vertex: Digest,
    /// Build-file location.
    pub location: Option<SourceLocation>,
    /// The explanation.
    #[serde(flatten)]
    pub explanation: Explanation,
}

/// What [`ExplainStore::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExplainPruned {
    /// Build records dropped.
    pub records: usize,
    /// File manifests dropped.
    pub manifests: usize,
    /// Bytes of stored values freed.
    pub bytes: u64,
}

/// The persistent records: one per scope, plus file manifests by content key.
#[derive(Clone)]
pub struct ExplainStore {
    records: sled::Tree,
    manifests: sled::Tree,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ExplainStore {
    /// Opens the store's trees in `db`.
    pub fn open(db: &sled::Db) -> Result<ExplainStore, sled::Error> {
        Ok(ExplainStore {
            records: db.open_tree(RECORDS_TREE)?,
            manifests: db.open_tree(MANIFESTS_TREE)?,
        })
    }

    /// Starts explaining a build of `scope` run by frontend `frontend`; `build_args` are the
    /// names of the build's build args (an env change of one of them is reported as such).
    pub fn session(
        &self,
        scope: &str,
        frontend: &str,
        build_args: BTreeSet<String>,
    ) -> Result<ExplainSession, ExplainError> {
        let prev = match self
            .records
            .get(scope.as_bytes())
            .map_err(store_err("get"))?
        {
            None => None,
            Some(raw) => match serde_json::from_slice::<BuildRecord>(&raw) {
                Ok(record) => Some(Prev::new(record)),
                // A record from another format is as good as none; the next commit replaces it.
                Err(e) => {
                    tracing::warn!("dropping unreadable explain record for {scope:?}: {e}");
                    None
                }
            },
        };
        Ok(ExplainSession {
            store: self.clone(),
            scope: scope.to_string(),
            frontend: frontend.to_string(),
            build_args,
            prev,
            state: Mutex::new(SessionState::default()),
        })
    }

    /// The recorded build of `scope`, if any.
    pub fn record(&self, scope: &str) -> Result<Option<BuildRecord>, ExplainError> {
        read_json(&self.records, scope, || format!("record {scope:?}"))
    }

    /// The stored file manifest for a content key.
    pub fn manifest(&self, content: &str) -> Result<Option<Vec<FileFact>>, ExplainError> {
        read_json(&self.manifests, content, || format!("manifest {content}"))
    }

    /// Bytes the records and manifests take (stored values), for `hoist du`.
    pub fn disk_usage(&self) -> Result<u64, ExplainError> {
        let mut total = 0u64;
        for tree in [&self.records, &self.manifests] {
            for item in tree.iter() {
                let (k, v) = item.map_err(store_err("iterate"))?;
                total += (k.len() + v.len()) as u64;
            }
        }
        Ok(total)
    }

    /// The prune hook: drops the records written before `older_than` (every record when
    /// `None`) and the manifests no remaining record refers to.
    pub fn prune(&self, older_than: Option<SystemTime>) -> Result<ExplainPruned, ExplainError> {
        let cutoff = older_than.map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        let mut pruned = ExplainPruned::default();
        for item in self.records.iter() {
            let (k, v) = item.map_err(store_err("iterate"))?;
            let written = serde_json::from_slice::<BuildRecord>(&v).map_or(0, |r| r.written);
            if cutoff.is_none_or(|c| written < c) {
                self.records.remove(&k).map_err(store_err("remove"))?;
                pruned.records += 1;
                pruned.bytes += (k.len() + v.len()) as u64;
            }
        }
        let (manifests, bytes) = self.collect_manifests()?;
        pruned.manifests = manifests;
        pruned.bytes += bytes;
        self.flush()?;
        Ok(pruned)
    }

    /// Drops manifests no record refers to; returns how many and their bytes.
    fn collect_manifests(&self) -> Result<(usize, u64), ExplainError> {
        let mut live = HashSet::new();
        for item in self.records.iter() {
            let (_, v) = item.map_err(store_err("iterate"))?;
            if let Ok(record) = serde_json::from_slice::<BuildRecord>(&v) {
                live.extend(record.steps.into_iter().filter_map(|s| s.content));
            }
        }
        let (mut count, mut bytes) = (0, 0u64);
        for item in self.manifests.iter() {
            let (k, v) = item.map_err(store_err("iterate"))?;
            if !live.contains(String::from_utf8_lossy(&k).as_ref()) {
                self.manifests.remove(&k).map_err(store_err("remove"))?;
                count += 1;
                bytes += (k.len() + v.len()) as u64;
            }
        }
        Ok((count, bytes))
    }

    /// Drops the least recently written records beyond [`MAX_TARGET_RECORDS`].
    fn trim_records(&self) -> Result<(), ExplainError> {
        if self.records.len() <= MAX_TARGET_RECORDS {
            return Ok(());
        }
        let mut all = Vec::new();
        for item in self.records.iter() {
            let (k, v) = item.map_err(store_err("iterate"))?;
            let written = serde_json::from_slice::<BuildRecord>(&v).map_or(0, |r| r.written);
            all.push((written, k));
        }
        all.sort();
        let excess = all.len() - MAX_TARGET_RECORDS;
        for (_, k) in all.into_iter().take(excess) {
            self.records.remove(k).map_err(store_err("remove"))?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), ExplainError> {
        self.records.flush().map_err(store_err("flush"))?;
        self.manifests.flush().map_err(store_err("flush"))?;
        Ok(())
    }
}

/// The previous record with lookups for matching.
struct Prev {
    record: BuildRecord,
    by_digest: HashMap<Digest, Vec<usize>>,
    by_name: HashMap<(String, String), Vec<usize>>,
    by_bare_name: HashMap<(String, String), Vec<usize>>,
    by_location: HashMap<(String, SourceLocation), Vec<usize>>,
}

impl Prev {
    fn new(record: BuildRecord) -> Prev {
        let mut prev = Prev {
            by_digest: HashMap::new(),
            by_name: HashMap::new(),
            by_bare_name: HashMap::new(),
            by_location: HashMap::new(),
            record,
        };
        for (i, s) in prev.record.steps.iter().enumerate() {
            prev.by_digest.entry(s.digest).or_default().push(i);
            prev.by_name
                .entry((s.kind.clone(), s.name.clone()))
                .or_default()
                .push(i);
            prev.by_bare_name
                .entry((s.kind.clone(), bare_name(&s.name).to_string()))
                .or_default()
                .push(i);
            if let Some(l) = &s.location {
                prev.by_location
                    .entry((s.kind.clone(), l.clone()))
                    .or_default()
                    .push(i);
            }
        }
        prev
    }
}

/// A description without its `[stage n/m]` prefix.
fn bare_name(name: &str) -> &str {
    match name.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => name,
    }
}

/// What a session has seen so far.
#[derive(Default)]
struct SessionState {
    steps: Vec<StepFacts>,
    by_key: HashMap<CacheKey, usize>,
    /// Per step: the matched step of the previous record.
    matched: Vec<Option<usize>>,
    /// Previous steps already matched.
    used: HashSet<usize>,
    /// Per step: its root cause in short (empty when unchanged since the previous build).
    cause: Vec<String>,
    /// Per step: the latest explanation.
    explained: Vec<Option<Explanation>>,
}

/// Explains one build's steps and records them (see the module doc).
pub struct ExplainSession {
    store: ExplainStore,
    scope: String,
    frontend: String,
    build_args: BTreeSet<String>,
    prev: Option<Prev>,
    state: Mutex<SessionState>,
}

/// What the solver knows about a solve when it asks for explanations.
pub(crate) struct SolveView<'a> {
    pub(crate) def: &'a Definition,
    pub(crate) digests: &'a [Digest],
    pub(crate) keys: &'a [CacheKey],
    pub(crate) content: &'a [Option<String>],
    pub(crate) needed: &'a [bool],
    /// The cache was turned off for this op itself (option, filter or op flag).
    pub(crate) forced: &'a [bool],
    /// Dirty: forced, or downstream of a forced op.
    pub(crate) dirty: &'a [bool],
    /// Will be executed (not cached, not under a cached step).
    pub(crate) rebuilt: &'a [bool],
}

impl ExplainSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a solve's vertices and explains each needed one (by op index).
    pub(crate) async fn observe(
        &self,
        exec: &dyn OpExecutor,
        view: &SolveView<'_>,
    ) -> Vec<(usize, Explanation)> {
        let n = view.def.ops.len();
        // 1. Facts and matches.
        let mut step_of = vec![usize::MAX; n];
        let mut manifests_wanted = Vec::new();
        {
            let mut st = self.lock();
            for i in (0..n).filter(|&i| view.needed[i]) {
                if let Some(&s) = st.by_key.get(&view.keys[i]) {
                    step_of[i] = s;
                    continue;
                }
                let op = &view.def.ops[i];
                let info = crate::info_of(view.def, view.digests, i);
                let mut facets = op_facets(op);
                facets.extend(exec.explain_facets(&info, op));
                let mut inputs = Vec::new();
                op.for_each_input(|r| inputs.push(step_of[r.op as usize] as u32));
                let facts = StepFacts {
                    name: info.name.clone(),
                    location: op.location.clone(),
                    kind: op.kind_name().to_string(),
                    digest: view.digests[i],
                    key: view.keys[i],
                    inputs,
                    facets,
                    content: view.content[i].clone(),
                };
                let s = st.steps.len();
                let matched = self.match_step(&st, &facts);
                if let Some(p) = matched {
                    st.used.insert(p);
                }
                st.by_key.insert(facts.key, s);
                st.steps.push(facts);
                st.matched.push(matched);
                st.cause.push(String::new());
                st.explained.push(None);
                step_of[i] = s;
                if view.content[i].is_some() {
                    manifests_wanted.push((i, s));
                }
            }
        }

        // 2. File manifests: stored once per content key; old and new ones diffed on a change.
        let mut file_changes: HashMap<usize, Reason> = HashMap::new();
        for (i, s) in manifests_wanted {
            let (content, prev_content, name) = {
                let st = self.lock();
                let prev_content = st.matched[s]
                    .and_then(|p| self.prev_step(p))
                    .and_then(|p| p.content.clone());
                (
                    st.steps[s].content.clone().unwrap_or_default(),
                    prev_content,
                    st.steps[s].name.clone(),
                )
            };
            let stored = self
                .store
                .manifests
                .contains_key(content.as_bytes())
                .unwrap_or(true);
            let changed = prev_content.as_ref().is_some_and(|p| *p != content);
            if stored && !changed {
                continue;
            }
            let current = if stored {
                self.store.manifest(&content).ok().flatten()
            } else {
                let info = crate::info_of(view.def, view.digests, i);
                match exec.content_files(&info, &view.def.ops[i]).await {
                    Ok(Some(mut files)) => {
                        files.sort_by(|a, b| a.path.cmp(&b.path));
                        if files.len() <= MAX_MANIFEST_ENTRIES {
                            if let Ok(raw) = serde_json::to_vec(&files) {
                                if let Err(e) = self.store.manifests.insert(content.as_bytes(), raw)
                                {
                                    tracing::warn!("storing a file manifest: {e}");
                                }
                            }
                        }
                        Some(files)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("listing files of {name:?}: {e}");
                        None
                    }
                }
            };
            let old = match &prev_content {
                Some(p) if changed => self.store.manifest(p).ok().flatten(),
                _ => None,
            };
            if let (Some(old), Some(new)) = (old, current) {
                let all = diff_manifests(&old, &new);
                if !all.is_empty() {
                    let total = all.len();
                    let source = source_name(&view.def.ops[i], &name);
                    let changed = all.into_iter().take(MAX_LISTED_FILES).collect();
                    file_changes.insert(
                        s,
                        Reason::Files {
                            source,
                            changed,
                            total,
                        },
                    );
                }
            }
        }

        // 3. Explanations, parents first.
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut done = HashSet::new();
        for i in (0..n).filter(|&i| view.needed[i]) {
            let s = step_of[i];
            let rebuilt = view.rebuilt[i];
            let (reasons, notes, cause) =
                self.reasons_of(&st, s, view, i, &step_of, file_changes.remove(&s));
            if done.insert(s) {
                st.cause[s] = cause;
            }
            let explanation = Explanation {
                status: if rebuilt {
                    StepStatus::Rebuilt
                } else {
                    StepStatus::Cached
                },
                reasons: if rebuilt { reasons } else { Vec::new() },
                notes,
            };
            st.explained[s] = Some(explanation.clone());
            out.push((i, explanation));
        }
        out
    }

    fn prev_step(&self, p: usize) -> Option<&StepFacts> {
        self.prev.as_ref().and_then(|prev| prev.record.steps.get(p))
    }

    /// The step of the previous record this one is (see the module doc for the order).
    fn match_step(&self, st: &SessionState, facts: &StepFacts) -> Option<usize> {
        let prev = self.prev.as_ref()?;
        // The previous steps this step's parents matched.
        let parents: Vec<Option<usize>> = facts
            .inputs
            .iter()
            .map(|&s| st.matched.get(s as usize).copied().flatten())
            .collect();
        let same_parents = |p: usize| {
            let ps = &prev.record.steps[p].inputs;
            ps.len() == parents.len()
                && ps
                    .iter()
                    .zip(&parents)
                    .all(|(a, b)| Some(*a as usize) == *b)
        };
        let pick = |cands: Option<&Vec<usize>>| -> Option<usize> {
            let free: Vec<usize> = cands?
                .iter()
                .copied()
                .filter(|p| !st.used.contains(p))
                .collect();
            free.iter()
                .copied()
                .find(|&p| same_parents(p))
                .or_else(|| free.first().copied())
        };
        let kind = facts.kind.clone();
        pick(prev.by_digest.get(&facts.digest))
            .or_else(|| pick(prev.by_name.get(&(kind.clone(), facts.name.clone()))))
            .or_else(|| {
                pick(
                    prev.by_bare_name
                        .get(&(kind.clone(), bare_name(&facts.name).to_string())),
                )
            })
            .or_else(|| {
                facts
                    .location
                    .as_ref()
                    .and_then(|l| pick(prev.by_location.get(&(kind.clone(), l.clone()))))
            })
            .or_else(|| {
                (!parents.is_empty() && parents.iter().all(Option::is_some))
                    .then(|| {
                        (0..prev.record.steps.len()).find(|&p| {
                            !st.used.contains(&p)
                                && prev.record.steps[p].kind == kind
                                && same_parents(p)
                        })
                    })
                    .flatten()
            })
    }

    /// Why step `s` (op `i`) differs from its match: (reasons, notes, short root cause).
    fn reasons_of(
        &self,
        st: &SessionState,
        s: usize,
        view: &SolveView<'_>,
        i: usize,
        step_of: &[usize],
        files: Option<Reason>,
    ) -> (Vec<Reason>, Vec<Reason>, String) {
        let facts = &st.steps[s];
        let mut reasons = Vec::new();
        let mut notes = Vec::new();
        if view.forced[i] {
            reasons.push(Reason::NoCache);
        }
        let frontend_changed = self
            .prev
            .as_ref()
            .is_some_and(|p| p.record.frontend != self.frontend);
        let frontend = || Reason::Frontend {
            old: self
                .prev
                .as_ref()
                .map(|p| p.record.frontend.clone())
                .unwrap_or_default(),
            new: self.frontend.clone(),
        };
        let Some(prev) = self.prev.as_ref() else {
            reasons.push(Reason::FirstBuild);
            let cause = if view.forced[i] {
                Reason::NoCache.short()
            } else {
                Reason::FirstBuild.short()
            };
            return (reasons, notes, cause);
        };
        let Some(p) = st.matched[s] else {
            reasons.push(Reason::NewStep);
            if frontend_changed {
                reasons.push(frontend());
            }
            return (reasons, notes, Reason::NewStep.short());
        };
        let old = &prev.record.steps[p];

        // Unchanged since the previous build: only notes (a changed secret), or a missing result.
        if old.key == facts.key && !view.dirty[i] {
            for (name, value) in facts
                .facets
                .iter()
                .filter(|(n, _)| n.starts_with("secret:"))
            {
                if old.facets.get(name) != Some(value) {
                    if let Facet::Note(r) =
                        classify_facet(name, old.facets.get(name), Some(value), &self.build_args)
                    {
                        notes.push(r);
                    }
                }
            }
            reasons.push(Reason::CacheMissing);
            return (reasons, notes, String::new());
        }

        // Own inputs: facets and content.
        let mut own = Vec::new();
        for name in old
            .facets
            .keys()
            .chain(facts.facets.keys())
            .collect::<BTreeSet<_>>()
        {
            let (a, b) = (old.facets.get(name), facts.facets.get(name));
            if a == b {
                continue;
            }
            match classify_facet(name, a, b, &self.build_args) {
                Facet::Note(r) => notes.push(r),
                Facet::Reason(r) => own.push(r),
            }
        }
        if old.content != facts.content {
            let op = &view.def.ops[i];
            own.push(match (&op.kind, files) {
                (OpKind::Source(src), _) if src.identifier.starts_with("docker-image://") => {
                    Reason::BaseImage {
                        reference: src
                            .identifier
                            .trim_start_matches("docker-image://")
                            .to_string(),
                        old: old.content.clone(),
                        new: facts.content.clone(),
                    }
                }
                (_, Some(files)) => files,
                _ => Reason::Content {
                    source: source_name(op, &facts.name),
                    old: old.content.clone(),
                    new: facts.content.clone(),
                },
            });
        }
        if own.is_empty() && old.digest != facts.digest {
            own.push(Reason::Setting {
                name: "definition".into(),
            });
        }
        if frontend_changed && old.digest != facts.digest {
            own.push(frontend());
        }

        // Parents: changed since the previous build, or rebuilt without cache.
        let mut parents = Vec::new();
        let op = &view.def.ops[i];
        let mut seen = HashSet::new();
        op.for_each_input(|r: OpRef| {
            let j = r.op as usize;
            let t = step_of[j];
            if !seen.insert(t) {
                return;
            }
            let changed = match st.matched.get(t).copied().flatten() {
                Some(q) => prev.record.steps[q].key != st.steps[t].key,
                None => true,
            };
            if changed || view.dirty[j] {
                parents.push(Reason::Parent {
                    step: st.steps[t].name.clone(),
                    cause: st.cause[t].clone(),
                });
            }
        });

        let cause = if let Some(first) = own.first() {
            first.short()
        } else if view.forced[i] {
            Reason::NoCache.short()
        } else {
            parents
                .iter()
                .map(Reason::short)
                .find(|c| !c.is_empty())
                .unwrap_or_default()
        };
        reasons.extend(own);
        reasons.extend(parents);
        if reasons.is_empty() {
            reasons.push(Reason::CacheMissing);
        }
        (reasons, notes, cause)
    }

    /// Every step explained so far in this build, parents first.
    pub fn explanations(&self) -> Vec<StepExplanation> {
        let st = self.lock();
        st.steps
            .iter()
            .zip(&st.explained)
            .filter_map(|(f, e)| {
                e.clone().map(|explanation| StepExplanation {
                    name: f.name.clone(),
                    vertex: f.digest,
                    location: f.location.clone(),
                    explanation,
                })
            })
            .collect()
    }

    /// Makes this build the scope's record (written only when it differs from the previous
    /// one), keeps the store within its bounds, and flushes it.
    pub fn commit(&self) -> Result<(), ExplainError> {
        let steps = self.lock().steps.clone();
        if let Some(prev) = &self.prev {
            if prev.record.steps == steps && prev.record.frontend == self.frontend {
                return Ok(());
            }
        }
        let record = BuildRecord {
            frontend: self.frontend.clone(),
            written: now_secs(),
            steps,
        };
        let raw = serde_json::to_vec(&record).map_err(|e| ExplainError::Corrupt {
            what: format!("record {:?}", self.scope),
            message: e.to_string(),
        })?;
        self.store
            .records
            .insert(self.scope.as_bytes(), raw)
            .map_err(store_err("insert"))?;
        self.store.trim_records()?;
        self.store.collect_manifests()?;
        self.store.flush()
    }
}

/// What a changed facet means.
enum Facet {
    Reason(Reason),
    Note(Reason),
}

fn classify_facet(
    name: &str,
    old: Option<&String>,
    new: Option<&String>,
    build_args: &BTreeSet<String>,
) -> Facet {
    if let Some(id) = name.strip_prefix("secret:") {
        return Facet::Note(Reason::Secret { id: id.to_string() });
    }
    if let Some(var) = name.strip_prefix("env:") {
        return Facet::Reason(if build_args.contains(var) {
            Reason::BuildArg {
                name: var.to_string(),
            }
        } else {
            Reason::Env {
                name: var.to_string(),
            }
        });
    }
    Facet::Reason(match name {
        "command" => Reason::Command,
        "source" => {
            let (old, new) = (
                old.cloned().unwrap_or_default(),
                new.cloned().unwrap_or_default(),
            );
            match (pinned_image(&old), pinned_image(&new)) {
                // A frontend that pins the resolved digest into the reference: same tag, new digest.
                (Some((a, da)), Some((b, db))) if a == b => Reason::BaseImage {
                    reference: b.to_string(),
                    old: da,
                    new: db,
                },
                _ => Reason::Source { old, new },
            }
        }
        other => Reason::Setting {
            name: other.to_string(),
        },
    })
}

/// An image source identifier split into its reference and pinned digest, if it is one.
fn pinned_image(identifier: &str) -> Option<(&str, Option<String>)> {
    let reference = identifier.strip_prefix("docker-image://")?;
    Some(match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_string())),
        None => (reference, None),
    })
}

/// How a source is named in reasons: `context` for `local://context`, else the step name.
fn source_name(op: &Op, step: &str) -> String {
    match &op.kind {
        OpKind::Source(s) => s
            .identifier
            .strip_prefix("local://")
            .map(str::to_string)
            .unwrap_or_else(|| s.identifier.clone()),
        _ => step.to_string(),
    }
}

/// 16 hex digits of the SHA-256 of a value's JSON.
fn fingerprint<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&json);
    hex::encode(&digest[..8])
}

/// The facets of an op (see the module doc); input references are left out, parents are
/// compared as steps.
pub fn op_facets(op: &Op) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    if let Some(p) = &op.platform {
        f.insert("platform".into(), fingerprint(p));
    }
    match &op.kind {
        OpKind::Source(s) => {
            f.insert("source".into(), s.identifier.clone());
            if !(s.include_patterns.is_empty()
                && s.exclude_patterns.is_empty()
                && s.follow_paths.is_empty())
            {
                f.insert(
                    "file patterns".into(),
                    fingerprint(&(&s.include_patterns, &s.exclude_patterns, &s.follow_paths)),
                );
            }
            for (k, v) in &s.attrs {
                f.insert(format!("attribute {k}"), fingerprint(v));
            }
        }
        OpKind::Exec(x) => {
            f.insert("command".into(), fingerprint(&x.args));
            for e in &x.env {
                let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
                f.insert(format!("env:{k}"), fingerprint(v));
            }
            f.insert("cwd".into(), fingerprint(&x.cwd));
            f.insert("user".into(), fingerprint(&x.user));
            f.insert("hostname".into(), fingerprint(&x.hostname));
            f.insert("network".into(), fingerprint(&x.network));
            f.insert("security".into(), fingerprint(&x.security));
            for m in &x.mounts {
                let shape = (
                    &m.selector,
                    m.readonly,
                    m.output,
                    m.input.map(|r| r.output),
                    &m.kind,
                );
                f.insert(format!("mount {}", m.dest), fingerprint(&shape));
            }
        }
        OpKind::File(file) => {
            for (n, action) in file.actions.iter().enumerate() {
                let (word, masked) = match action {
                    FileAction::Copy(c) => {
                        let mut c = c.clone();
                        c.src = OpRef {
                            op: 0,
                            output: c.src.output,
                        };
                        ("copy", fingerprint(&c))
                    }
                    FileAction::Mkdir(a) => ("mkdir", fingerprint(a)),
                    FileAction::Mkfile(a) => ("mkfile", fingerprint(a)),
                    FileAction::Rm(a) => ("rm", fingerprint(a)),
                    FileAction::Symlink(a) => ("symlink", fingerprint(a)),
                };
                f.insert(format!("{word} {}", n + 1), masked);
            }
        }
        OpKind::Merge(m) => {
            f.insert("inputs".into(), fingerprint(&m.inputs.len()));
        }
        OpKind::Diff(d) => {
            f.insert("lower".into(), fingerprint(&d.lower.is_some()));
        }
    }
    f
}

/// The changed paths between two manifests sorted by path.
pub fn diff_manifests(old: &[FileFact], new: &[FileFact]) -> Vec<FileChange> {
    let mut out = Vec::new();
    let (mut a, mut b) = (0, 0);
    while a < old.len() || b < new.len() {
        let ord = match (old.get(a), new.get(b)) {
            (Some(x), Some(y)) => x.path.cmp(&y.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                out.push(FileChange {
                    path: old[a].path.clone(),
                    changes: vec![Change::Removed],
                });
                a += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(FileChange {
                    path: new[b].path.clone(),
                    changes: vec![Change::Added],
                });
                b += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&old[a], &new[b]);
                let mut changes = Vec::new();
                if x.kind != y.kind {
                    changes.push(Change::Type);
                } else if x.digest != y.digest {
                    changes.push(Change::Content);
                }
                if x.mode != y.mode {
                    changes.push(Change::Mode);
                }
                if (x.uid, x.gid) != (y.uid, y.gid) {
                    changes.push(Change::Owner);
                }
                if !changes.is_empty() {
                    out.push(FileChange {
                        path: y.path.clone(),
                        changes,
                    });
                }
                a += 1;
                b += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, digest: &str, mode: u32) -> FileFact {
        FileFact {
            path: path.into(),
            kind: FileKind::File,
            mode,
            uid: 0,
            gid: 0,
            digest: digest.into(),
        }
    }

    #[test]
    fn manifest_diff_names_each_kind_of_change() {
        let old = vec![
            file("a", "1", 0o644),
            file("b", "2", 0o644),
            file("c", "3", 0o644),
        ];
        let mut new = vec![
            file("a", "9", 0o644),
            file("b", "2", 0o755),
            file("d", "4", 0o644),
        ];
        new[1].uid = 1000;
        let changes = diff_manifests(&old, &new);
        let expect = |path: &str, changes: &[Change]| FileChange {
            path: path.into(),
            changes: changes.to_vec(),
        };
        assert_eq!(
            changes,
            vec![
                expect("a", &[Change::Content]),
                expect("b", &[Change::Mode, Change::Owner]),
                expect("c", &[Change::Removed]),
                expect("d", &[Change::Added]),
            ]
        );
        assert!(diff_manifests(&old, &old).is_empty());
    }

    #[test]
    fn summary_shows_the_first_file_and_counts_the_rest() {
        let e = Explanation {
            status: StepStatus::Rebuilt,
            reasons: vec![Reason::Files {
                source: "context".into(),
                changed: vec![FileChange {
                    path: "src/main.rs".into(),
                    changes: vec![Change::Content],
                }],
                total: 2,
            }],
            notes: Vec::new(),
        };
        assert_eq!(e.summary(), "rebuilt: src/main.rs changed (+1 more)");
        let cached = Explanation {
            status: StepStatus::Cached,
            reasons: Vec::new(),
            notes: vec![Reason::Secret { id: "token".into() }],
        };
        assert_eq!(cached.summary(), "cached; note: secret token changed");
    }

    #[test]
    fn pinned_image_tags_compare_as_base_images() {
        let r = classify_facet(
            "source",
            Some(&"docker-image://r.example/base:1@sha256:aa".to_string()),
            Some(&"docker-image://r.example/base:1@sha256:bb".to_string()),
            &BTreeSet::new(),
        );
        let Facet::Reason(Reason::BaseImage {
            reference,
            old,
            new,
        }) = r
        else {
            panic!("not a base image reason")
        };
        assert_eq!(
            (reference.as_str(), old.as_deref(), new.as_deref()),
            ("r.example/base:1", Some("sha256:aa"), Some("sha256:bb"))
        );
        let args: BTreeSet<String> = ["V".to_string()].into();
        assert!(matches!(
            classify_facet("env:V", None, None, &args),
            Facet::Reason(Reason::BuildArg { .. })
        ));
        assert!(matches!(
            classify_facet("env:W", None, None, &args),
            Facet::Reason(Reason::Env { .. })
        ));
        assert!(matches!(
            classify_facet("secret:s", None, None, &args),
            Facet::Note(Reason::Secret { .. })
        ));
    }

    #[test]
    fn bare_names_drop_the_stage_prefix() {
        assert_eq!(bare_name("[build 2/5] RUN make"), "RUN make");
        assert_eq!(bare_name("RUN make"), "RUN make");
    }
}
