//! Disk usage and pruning of the state directory: [`Engine::disk_usage`] and [`Engine::prune`].
//!
//! What takes space: the solver's **cache records** (cache key → layer chains; metadata only),
//! the **snapshots** (committed overlay layers under `snapshots/l/`), the content store's
//! **blobs** (pulled and exported layer blobs, manifests, configs, frontend components) and the
//! `RUN --mount=type=cache` **cache mounts**. A record's size is what removing it alone would free
//! (the layers no other record uses); totals count snapshots, blobs and cache mounts.
//!
//! # Safety with concurrent builds
//!
//! Another hoist *process* cannot use the state directory at the same time: sled's lock on `db/`
//! makes it wait in [`Engine::open`]. Within one process (the daemon), every build holds a shared
//! guard of the engine's GC lock for its whole run and [`Engine::prune`] takes it exclusively, so
//! prune waits for running builds and removes nothing they use; new builds wait for the prune.
//! [`UsageItem::in_use`] marks the layers a step is executing on right now.
//!
//! # Crash consistency
//!
//! Prune removes in an order where every prefix leaves a consistent state directory, so a
//! `kill -9` at any point is harmless: first the cache records (flushed), so nothing can be a
//! cache hit on a layer about to go; then, per dead layer, the metadata naming it (exported-blob
//! and imported-layer entries), then the snapshotter's record, then its directory (an
//! unrecorded directory is removed by the next [`Engine::open`]); blobs last, when nothing in
//! the database names them any more. A leftover of an interrupted prune is an orphan that the
//! next prune removes.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_solver::{CacheKey, ResultId};
use hoist_store::snapshot::LayerId;
use serde::Serialize;

use crate::chain::Chain;
use crate::export::{LAYER_BLOBS_TREE, LAYER_TARS_TREE};
use crate::state::{Engine, Shared};
use crate::Error;

/// sled tree: cache key (32 bytes) → last time a build used the record (u64 LE seconds).
const LAST_USED_TREE: &str = "hoist-engine/last-used";
/// sled tree of imported image layers (blob digest → layer id), see ops.rs.
const IMPORTED_TREE: &str = "imported-layers";
/// sled trees that never name content-store blobs (skipped when looking for references).
const NO_BLOB_TREES: &[&str] = &["checksums", LAST_USED_TREE, "hoist-solver/cache-index/v1"];

/// What a [`UsageItem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageKind {
    /// A solver cache record (a step's result: layer chains).
    CacheRecord,
    /// A committed overlay layer.
    Snapshot,
    /// A content-store blob.
    Blob,
    /// A `RUN --mount=type=cache` directory.
    CacheMount,
}

impl UsageKind {
    /// Every kind, in the order totals are printed.
    pub const ALL: [UsageKind; 4] = [
        UsageKind::CacheRecord,
        UsageKind::Snapshot,
        UsageKind::Blob,
        UsageKind::CacheMount,
    ];

    /// The kind named `name` (as [`UsageKind::name`] spells it), if any.
    pub fn from_name(name: &str) -> Option<UsageKind> {
        UsageKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The name shown to users (`cache-record`, `snapshot`, `blob`, `cache-mount`).
    pub fn name(self) -> &'static str {
        match self {
            UsageKind::CacheRecord => "cache-record",
            UsageKind::Snapshot => "snapshot",
            UsageKind::Blob => "blob",
            UsageKind::CacheMount => "cache-mount",
        }
    }
}

/// One thing that takes space in the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageItem {
    /// Which kind of thing.
    pub kind: UsageKind,
    /// Its id: cache key, layer id, blob digest, or cache mount directory name.
    pub id: String,
    /// Bytes on disk (a record: the bytes of the layers only it uses).
    pub size: u64,
    /// When it was made.
    pub created: Option<SystemTime>,
    /// When a build last used it (records and their layers), else when it last changed.
    pub last_used: Option<SystemTime>,
    /// Whether a running step uses it now.
    pub in_use: bool,
    /// What it is, for people (`image layer`, `build step layer`, `exported layer blob`, ...).
    pub description: String,
}

/// Everything the state directory holds, by item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Every item, records first, then snapshots, blobs, cache mounts.
    pub items: Vec<UsageItem>,
}

impl DiskUsage {
    /// Count and bytes of the items of `kind`.
    pub fn of_kind(&self, kind: UsageKind) -> (usize, u64) {
        self.items
            .iter()
            .filter(|i| i.kind == kind)
            .fold((0, 0), |(n, b), i| (n + 1, b + i.size))
    }

    /// Bytes a prune of everything not in use would free (snapshots, blobs, cache mounts).
    pub fn reclaimable(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| i.kind != UsageKind::CacheRecord && !i.in_use)
            .map(|i| i.size)
            .sum()
    }

    /// Bytes on disk: snapshots, blobs and cache mounts (records are metadata).
    pub fn total(&self) -> u64 {
        self.items
            .iter()
            .filter(|i| i.kind != UsageKind::CacheRecord)
            .map(|i| i.size)
            .sum()
    }
}

/// What [`Engine::prune`] removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also remove base-image layers and every blob nothing refers to (`--all`); otherwise those
    /// stay, and only build steps' results, cache mounts and orphans go.
    pub all: bool,
    /// Stop once the state directory uses at most this many bytes, removing least recently used
    /// first (`--keep-storage`).
    pub keep_storage: Option<u64>,
    /// Only remove what was last used longer ago than this (`--filter until=DURATION`).
    pub until: Option<Duration>,
}

impl PruneOptions {
    /// Applies one `--filter KEY=VALUE` (only `until=DURATION` is known), naming what is wrong.
    pub fn apply_filter(&mut self, filter: &str) -> Result<(), String> {
        match filter.split_once('=') {
            Some(("until", value)) => {
                self.until = Some(parse_duration(value)?);
                Ok(())
            }
            Some((key, _)) => Err(format!(
                "unknown prune filter {key:?} (known: until=DURATION)"
            )),
            None => Err(format!(
                "prune filter {filter:?} is not KEY=VALUE (e.g. until=24h)"
            )),
        }
    }
}

/// Parses a Go-style duration: `90s`, `15m`, `24h`, `1h30m`, `500ms`, `2d` (days).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (e.g. 30m, 24h, 1h30m, 7d)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| bad())?;
    }
    Ok(total)
}

/// Parses a size in bytes with an optional binary unit: `1000`, `512k`, `10MB`, `2GiB`, `1.5g`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {text:?} (e.g. 512MB, 10GB)");
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let number: f64 = t[..split].parse().map_err(|_| bad())?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let power = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        _ => return Err(bad()),
    };
    let bytes = number * 1024f64.powi(power);
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// The items removed, as disk usage listed them before.
    pub removed: Vec<UsageItem>,
    /// Bytes freed (snapshots, blobs, cache mounts).
    pub reclaimed: u64,
}

/// The engine's garbage-collection state: the build/prune lock, layers in use, last-used times.
pub(crate) struct GcState {
    lock: tokio::sync::RwLock<()>,
    in_use: Arc<Mutex<HashMap<LayerId, usize>>>,
    last_used_tree: sled::Tree,
}

/// Marks layers in use until dropped.
pub(crate) struct Held {
    in_use: Arc<Mutex<HashMap<LayerId, usize>>>,
    layers: Vec<LayerId>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        for id in &self.layers {
            if let Some(n) = map.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    map.remove(id);
                }
            }
        }
    }
}

fn sled_err(e: sled::Error) -> Error {
    Error::Internal(format!("sled: {e}"))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn from_secs(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

impl GcState {
    /// The GC state kept in `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<GcState, Error> {
        Ok(GcState {
            lock: tokio::sync::RwLock::new(()),
            in_use: Arc::default(),
            last_used_tree: db.open_tree(LAST_USED_TREE).map_err(sled_err)?,
        })
    }

    /// Held by a build for its whole run: a prune waits for it.
    pub(crate) async fn build_guard(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.lock.read().await
    }

    /// Notes that a build used the records of `keys` now (not flushed: a hint for pruning).
    pub(crate) fn touch<'a>(&self, keys: impl IntoIterator<Item = &'a CacheKey>) {
        let now = secs(SystemTime::now()).to_le_bytes();
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.insert(key.0.as_bytes().as_slice(), now.as_slice());
        }
        if let Err(e) = self.last_used_tree.apply_batch(batch) {
            tracing::warn!("recording cache use: {e}");
        }
    }

    /// Marks the layers of `results` in use until the returned value is dropped.
    pub(crate) fn hold<'a>(&self, results: impl IntoIterator<Item = &'a ResultId>) -> Held {
        let layers: Vec<LayerId> = results
            .into_iter()
            .filter_map(|r| Chain::decode(r.as_str()).ok())
            .flat_map(|c| c.0)
            .collect();
        let mut map = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        for id in &layers {
            *map.entry(id.clone()).or_default() += 1;
        }
        Held {
            in_use: self.in_use.clone(),
            layers,
        }
    }

    fn in_use(&self) -> HashSet<LayerId> {
        let map = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        map.keys().cloned().collect()
    }

    fn last_used(&self, key: &CacheKey) -> Option<SystemTime> {
        let raw = self.last_used_tree.get(key.0.as_bytes()).ok()??;
        let bytes: [u8; 8] = raw.as_ref().try_into().ok()?;
        Some(from_secs(u64::from_le_bytes(bytes)))
    }
}

/// A cache record as prune sees it.
struct Record {
    key: CacheKey,
    layers: Vec<LayerId>,
    created: SystemTime,
    last_used: SystemTime,
}

/// A committed layer as prune sees it.
struct Layer {
    size: u64,
    created: SystemTime,
    flattened_from: Option<Vec<LayerId>>,
    imported: bool,
    /// The exported blob made of it, if any.
    blob: Option<hoist_store::Digest>,
}

/// The state directory's contents, gathered once for du or prune.
struct Inventory {
    records: Vec<Record>,
    layers: HashMap<LayerId, Layer>,
    /// Blob digest → (size, mtime).
    blobs: HashMap<hoist_store::Digest, (u64, SystemTime)>,
    /// Blob digests some database entry names.
    referenced_blobs: HashSet<String>,
    /// Imported blob digest → layer id.
    imported: HashMap<String, LayerId>,
    /// Cache mount directory name → (size, mtime).
    cache_mounts: Vec<(String, u64, SystemTime)>,
    in_use: HashSet<LayerId>,
}

impl Engine {
    /// What the state directory holds, item by item, with sizes, times and in-use flags.
    pub async fn disk_usage(&self) -> Result<DiskUsage, Error> {
        let engine = self.clone();
        blocking(move || {
            let inventory = engine.inventory()?;
            Ok(inventory.usage(&engine.shared))
        })
        .await
    }

    /// Removes cache records, layers, blobs and cache mounts as `options` say; waits for running
    /// builds of this engine first (see the module doc for why this is safe).
    pub async fn prune(&self, options: PruneOptions) -> Result<PruneReport, Error> {
        let _exclusive = self.shared.gc.lock.write().await;
        let engine = self.clone();
        blocking(move || engine.prune_now(&options)).await
    }

    fn inventory(&self) -> Result<Inventory, Error> {
        let shared = &self.shared;
        let mut records = Vec::new();
        for r in self.solver.records()? {
            let mut layers = Vec::new();
            for result in &r.results {
                if let Ok(chain) = Chain::decode(result.as_str()) {
                    layers.extend(chain.0);
                }
            }
            let last_used = shared
                .gc
                .last_used(&r.key)
                .unwrap_or(r.created)
                .max(r.created);
            records.push(Record {
                key: r.key,
                layers,
                created: r.created,
                last_used,
            });
        }
        let imported_tree = shared.db.open_tree(IMPORTED_TREE).map_err(sled_err)?;
        let mut imported = HashMap::new();
        for kv in imported_tree.iter() {
            let (k, v) = kv.map_err(sled_err)?;
            let id = String::from_utf8_lossy(&v).parse::<LayerId>();
            if let Ok(id) = id {
                imported.insert(String::from_utf8_lossy(&k).into_owned(), id);
            }
        }
        let imported_ids: HashSet<&LayerId> = imported.values().collect();
        let blob_tree = shared.db.open_tree(LAYER_BLOBS_TREE).map_err(sled_err)?;
        let mut layers = HashMap::new();
        for id in shared.snapshots.list()? {
            let Ok(info) = shared.snapshots.info(&id) else {
                continue;
            };
            let blob = blob_tree
                .get(id.as_str())
                .map_err(sled_err)?
                .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
                .and_then(|v| v.get("digest")?.as_str()?.parse().ok());
            let layer = Layer {
                size: dir_size(&shared.snapshots.layer_dir(&id)),
                created: from_secs(info.created),
                flattened_from: info.flattened.then(|| info.parents.clone()),
                imported: imported_ids.contains(&id),
                blob,
            };
            layers.insert(id, layer);
        }
        let mut blobs = HashMap::new();
        for digest in shared.content.list()? {
            if let Ok(meta) = std::fs::metadata(shared.content.blob_path(&digest)) {
                let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
                blobs.insert(digest, (meta.len(), mtime));
            }
        }
        let referenced_blobs = referenced_digests(&shared.db)?;
        let cache_mounts = list_cache_mounts(&shared.state_dir.join("cache-mounts"))?;
        Ok(Inventory {
            records,
            layers,
            blobs,
            referenced_blobs,
            imported,
            cache_mounts,
            in_use: shared.gc.in_use(),
        })
    }

    fn prune_now(&self, options: &PruneOptions) -> Result<PruneReport, Error> {
        let shared = &self.shared;
        let inventory = self.inventory()?;
        let before = inventory.usage(shared);
        let plan = inventory.plan(options, SystemTime::now());

        // 1. Records, flushed before any layer goes.
        for key in &plan.records {
            self.solver.forget(key)?;
            shared
                .gc
                .last_used_tree
                .remove(key.0.as_bytes())
                .map_err(sled_err)?;
        }
        shared.db.flush().map_err(sled_err)?;

        // 2. Layers: the entries naming them, their record, their directory.
        let blob_tree = shared.db.open_tree(LAYER_BLOBS_TREE).map_err(sled_err)?;
        let tar_tree = shared.db.open_tree(LAYER_TARS_TREE).map_err(sled_err)?;
        let imported_tree = shared.db.open_tree(IMPORTED_TREE).map_err(sled_err)?;
        for id in &plan.layers {
            blob_tree.remove(id.as_str()).map_err(sled_err)?;
            tar_tree.remove(id.as_str()).map_err(sled_err)?;
            for (digest, layer) in &inventory.imported {
                if layer == id {
                    imported_tree.remove(digest.as_bytes()).map_err(sled_err)?;
                }
            }
            shared.db.flush().map_err(sled_err)?;
            match shared.snapshots.remove(id) {
                Ok(()) => {}
                Err(e) => tracing::warn!("removing layer {id}: {e}"),
            }
        }

        // 3. Blobs nothing names any more.
        let still_named = referenced_digests(&shared.db)?;
        for digest in &plan.blobs {
            if !still_named.contains(digest.as_str()) {
                if let Err(e) = shared.content.delete(digest) {
                    tracing::warn!("removing blob {digest}: {e}");
                }
            }
        }

        // 4. Cache mounts.
        let mounts = shared.state_dir.join("cache-mounts");
        for name in &plan.cache_mounts {
            let dir = mounts.join(name);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("removing cache mount {}: {e}", dir.display());
            }
        }

        // 5. Explain records (the "why did this step run" history, see explain.rs): all of
        // them with `--all`, the older ones with `until=`. A plain or size-bounded prune keeps
        // them, so the next build can say a step ran because its result was pruned.
        let explain_cutoff = match (options.all, options.until) {
            (true, _) => Some(None),
            (false, Some(until)) => Some(Some(SystemTime::now() - until)),
            (false, None) => None,
        };
        if let Some(older_than) = explain_cutoff {
            match self.solver.explain_store().prune(older_than) {
                Ok(pruned) => tracing::debug!(records = pruned.records, "pruned explain records"),
                Err(e) => tracing::warn!("pruning explain records: {e}"),
            }
        }

        let after = self.inventory()?.usage(shared);
        let remaining: HashSet<(UsageKind, &str)> = after
            .items
            .iter()
            .map(|i| (i.kind, i.id.as_str()))
            .collect();
        let removed: Vec<UsageItem> = before
            .items
            .into_iter()
            .filter(|i| !remaining.contains(&(i.kind, i.id.as_str())))
            .collect();
        let reclaimed = removed
            .iter()
            .filter(|i| i.kind != UsageKind::CacheRecord)
            .map(|i| i.size)
            .sum();
        Ok(PruneReport { removed, reclaimed })
    }
}

/// What one prune removes.
#[derive(Debug, Default)]
struct Plan {
    records: Vec<CacheKey>,
    layers: Vec<LayerId>,
    blobs: Vec<hoist_store::Digest>,
    cache_mounts: Vec<String>,
}

/// Something prune may remove, in least-recently-used order.
enum Candidate {
    Record(usize),
    CacheMount(usize),
}

impl Inventory {
    /// Layers last used: the latest use of a record naming them, else their creation.
    fn layer_last_used(&self) -> HashMap<&LayerId, SystemTime> {
        let mut out: HashMap<&LayerId, SystemTime> =
            self.layers.iter().map(|(id, l)| (id, l.created)).collect();
        for r in &self.records {
            for id in &r.layers {
                if let Some(t) = out.get_mut(id) {
                    *t = (*t).max(r.last_used);
                }
            }
        }
        out
    }

    fn usage(&self, shared: &Shared) -> DiskUsage {
        let _ = shared;
        let mut users: HashMap<&LayerId, usize> = HashMap::new();
        for r in &self.records {
            for id in unique(&r.layers) {
                *users.entry(id).or_default() += 1;
            }
        }
        let mut items = Vec::new();
        for r in &self.records {
            let own: u64 = unique(&r.layers)
                .filter(|id| users.get(id) == Some(&1))
                .filter_map(|id| self.layers.get(id))
                .map(|l| l.size)
                .sum();
            items.push(UsageItem {
                kind: UsageKind::CacheRecord,
                id: r.key.to_string(),
                size: own,
                created: Some(r.created),
                last_used: Some(r.last_used),
                in_use: r.layers.iter().any(|id| self.in_use.contains(id)),
                description: format!("{} layer(s)", r.layers.len()),
            });
        }
        let last_used = self.layer_last_used();
        let mut ids: Vec<&LayerId> = self.layers.keys().collect();
        ids.sort();
        for id in ids {
            let layer = &self.layers[id];
            let description = if layer.imported {
                "image layer".to_string()
            } else if layer.flattened_from.is_some() {
                "flattened chain (mount cache)".to_string()
            } else if users.contains_key(id) {
                "build step layer".to_string()
            } else {
                "orphan layer (no cache record)".to_string()
            };
            items.push(UsageItem {
                kind: UsageKind::Snapshot,
                id: id.to_string(),
                size: layer.size,
                created: Some(layer.created),
                last_used: last_used.get(id).copied(),
                in_use: self.in_use.contains(id),
                description,
            });
        }
        let exported: HashSet<String> = self
            .layers
            .values()
            .filter_map(|l| l.blob.as_ref().map(|d| d.to_string()))
            .collect();
        let mut digests: Vec<&hoist_store::Digest> = self.blobs.keys().collect();
        digests.sort();
        for digest in digests {
            let (size, mtime) = self.blobs[digest];
            let name = digest.to_string();
            let description = if self.imported.contains_key(&name) {
                "pulled image layer blob"
            } else if exported.contains(&name) {
                "exported layer blob"
            } else if self.referenced_blobs.contains(&name) {
                "manifest, config or frontend blob"
            } else {
                "unreferenced blob"
            };
            items.push(UsageItem {
                kind: UsageKind::Blob,
                id: name,
                size,
                created: Some(mtime),
                last_used: Some(mtime),
                in_use: false,
                description: description.into(),
            });
        }
        for (name, size, mtime) in &self.cache_mounts {
            items.push(UsageItem {
                kind: UsageKind::CacheMount,
                id: name.clone(),
                size: *size,
                created: None,
                last_used: Some(*mtime),
                in_use: false,
                description: "RUN --mount=type=cache directory".into(),
            });
        }
        DiskUsage { items }
    }

    /// Decides what to remove.
    fn plan(&self, options: &PruneOptions, now: SystemTime) -> Plan {
        let old_enough = |t: SystemTime| match options.until {
            Some(age) => now.duration_since(t).is_ok_and(|d| d > age),
            None => true,
        };
        // Records of image sources (only imported layers) stay without --all.
        let prunable_record = |r: &Record| {
            let source_only = !r.layers.is_empty()
                && r.layers
                    .iter()
                    .all(|id| self.layers.get(id).is_some_and(|l| l.imported));
            (options.all || !source_only)
                && old_enough(r.last_used)
                && !r.layers.iter().any(|id| self.in_use.contains(id))
        };
        let mut candidates: Vec<(SystemTime, Candidate)> = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            if prunable_record(r) {
                candidates.push((r.last_used, Candidate::Record(i)));
            }
        }
        for (i, (_, _, mtime)) in self.cache_mounts.iter().enumerate() {
            if old_enough(*mtime) {
                candidates.push((*mtime, Candidate::CacheMount(i)));
            }
        }
        candidates.sort_by_key(|(t, _)| *t);

        let mut users: HashMap<&LayerId, usize> = HashMap::new();
        for r in &self.records {
            for id in unique(&r.layers) {
                *users.entry(id).or_default() += 1;
            }
        }
        let layer_last_used = self.layer_last_used();
        let protected = |id: &LayerId| {
            let layer = &self.layers[id];
            self.in_use.contains(id)
                || (layer.imported && !options.all)
                || !old_enough(layer_last_used.get(id).copied().unwrap_or(layer.created))
        };
        let layer_bytes = |id: &LayerId| {
            let layer = &self.layers[id];
            let blob = layer
                .blob
                .as_ref()
                .and_then(|d| self.blobs.get(d))
                .map_or(0, |b| b.0);
            layer.size + blob
        };
        let mut total: u64 = self.layers.keys().map(layer_bytes).sum::<u64>()
            + self
                .blobs
                .iter()
                .filter(|(d, _)| !self.layers.values().any(|l| l.blob.as_ref() == Some(*d)))
                .map(|(_, b)| b.0)
                .sum::<u64>()
            + self.cache_mounts.iter().map(|m| m.1).sum::<u64>();
        let within = |total: u64| options.keep_storage.is_some_and(|keep| total <= keep);

        let mut plan = Plan::default();
        let mut dead: HashSet<LayerId> = HashSet::new();
        // Orphans first: layers no record names (left by a crash or an interrupted prune).
        for id in self.layers.keys() {
            let is_flat = self.layers[id].flattened_from.is_some();
            if !users.contains_key(id) && !is_flat && !protected(id) {
                if within(total) {
                    break;
                }
                total = total.saturating_sub(layer_bytes(id));
                dead.insert(id.clone());
            }
        }
        for (_, candidate) in &candidates {
            if within(total) {
                break;
            }
            match candidate {
                Candidate::Record(i) => {
                    let r = &self.records[*i];
                    plan.records.push(r.key);
                    for id in unique(&r.layers) {
                        let Some(n) = users.get_mut(id) else { continue };
                        *n -= 1;
                        if *n == 0
                            && self.layers.contains_key(id)
                            && !protected(id)
                            && dead.insert(id.clone())
                        {
                            total = total.saturating_sub(layer_bytes(id));
                        }
                    }
                }
                Candidate::CacheMount(i) => {
                    let (name, size, _) = &self.cache_mounts[*i];
                    plan.cache_mounts.push(name.clone());
                    total = total.saturating_sub(*size);
                }
            }
        }
        // A flattened chain goes with any layer it was made from.
        for (id, layer) in &self.layers {
            if let Some(parents) = &layer.flattened_from {
                let parent_gone = parents
                    .iter()
                    .any(|p| dead.contains(p) || !self.layers.contains_key(p));
                let unused = !users.contains_key(id) && !self.in_use.contains(id);
                if parent_gone && unused {
                    dead.insert(id.clone());
                }
            }
        }
        let mut layers: Vec<LayerId> = dead.into_iter().collect();
        layers.sort();
        for id in &layers {
            if let Some(blob) = &self.layers[id].blob {
                plan.blobs.push(blob.clone());
            }
            for (digest, layer) in &self.imported {
                if layer == id {
                    if let Ok(d) = digest.parse() {
                        plan.blobs.push(d);
                    }
                }
            }
        }
        if options.all {
            for (digest, (_, mtime)) in &self.blobs {
                if !self.referenced_blobs.contains(digest.as_str()) && old_enough(*mtime) {
                    plan.blobs.push(digest.clone());
                }
            }
        }
        plan.blobs.sort();
        plan.blobs.dedup();
        plan.layers = layers;
        plan
    }
}

/// Each id once, in first-seen order.
fn unique(ids: &[LayerId]) -> impl Iterator<Item = &LayerId> {
    let mut seen = HashSet::new();
    ids.iter().filter(move |id| seen.insert(*id))
}

/// Every `sha256:<64 hex>` named by a key or value of a database tree that may name blobs.
fn referenced_digests(db: &sled::Db) -> Result<HashSet<String>, Error> {
    let mut out = HashSet::new();
    for name in db.tree_names() {
        let mut never_names_blobs = NO_BLOB_TREES.iter().chain(hoist_solver::explain::EXPLAIN_TREES);
        if never_names_blobs.any(|n| n.as_bytes() == &name[..]) {
            continue;
        }
        let tree = db.open_tree(&name).map_err(sled_err)?;
        for kv in tree.iter() {
            let (k, v) = kv.map_err(sled_err)?;
            find_digests(&k, &mut out);
            find_digests(&v, &mut out);
        }
    }
    Ok(out)
}

/// Adds every `sha256:` followed by 64 lowercase hex digits in `bytes` to `out`.
fn find_digests(bytes: &[u8], out: &mut HashSet<String>) {
    const PREFIX: &[u8] = b"sha256:";
    let mut at = 0;
    while let Some(pos) = bytes[at..].windows(PREFIX.len()).position(|w| w == PREFIX) {
        let start = at + pos;
        let hex = bytes.get(start + PREFIX.len()..start + PREFIX.len() + 64);
        if let Some(hex) = hex.filter(|h| {
            h.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        }) {
            out.insert(format!("sha256:{}", String::from_utf8_lossy(hex)));
        }
        at = start + PREFIX.len();
    }
}

/// Bytes of the files under `dir`, each inode once (symlinks not followed).
fn dir_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() <= 1 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// The cache mount directories with their sizes and last change (newest mtime inside).
fn list_cache_mounts(root: &Path) -> Result<Vec<(String, u64, SystemTime)>, Error> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(root, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            dir_size(&path),
            mtime,
        ));
    }
    out.sort();
    Ok(out)
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_filters_parse() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("ten").is_err());
        let mut options = PruneOptions::default();
        options.apply_filter("until=10m").unwrap();
        assert_eq!(options.until, Some(Duration::from_secs(600)));
        assert!(options
            .apply_filter("type=regular")
            .unwrap_err()
            .contains("unknown prune filter"));
        assert!(options.apply_filter("until").is_err());
    }

    #[test]
    fn finds_digests_in_any_bytes() {
        let hex = "a".repeat(64);
        let text = format!("{{\"digest\":\"sha256:{hex}\",\"short\":\"sha256:abc\"}}");
        let mut out = HashSet::new();
        find_digests(text.as_bytes(), &mut out);
        assert_eq!(out, HashSet::from([format!("sha256:{hex}")]));
    }
}
