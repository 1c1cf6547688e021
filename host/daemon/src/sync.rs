//! The daemon's copies of client contexts and the incremental sync that brings one up to date.
//!
//! A copy lives under `<state>/sessions/contexts/<key>/tree`, `<key>` being the stable key the
//! client derives from its machine, the directory and the context's role. A sync is three steps:
//! [`Incoming::plan`] validates the client's listing, removes what the copy has that the listing
//! lacks (or has as another kind), creates directories and symlinks, and names the regular files
//! whose size or modification time differ: only those are asked for. [`Incoming::receive`] writes
//! each asked-for file into `staging/` and renames it into place with its mode and times, so a
//! crash never leaves a half-written file looking current. [`Incoming::finish`] makes hardlinks,
//! fixes modes, and sets directory times deepest first. Afterwards the copy holds exactly the
//! listing, with the client's modes and times; owners are root's (a synced context is 0:0 anyway).
//!
//! Every path comes from the client: it is checked (relative, no `.` or `..`, parent an earlier
//! directory of the same listing) before anything is touched, and the copy is only ever walked
//! through directories this module made, so nothing is written outside the tree.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_api::proto::{Entry, EntryKind};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Most entries one context listing may have.
pub const MAX_ENTRIES: usize = 4_000_000;

/// Longest relative path accepted (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// A failed sync, naming the context entry or copy path concerned.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The client's listing is malformed.
    #[error("context {context:?}: bad listing entry {path:?}: {reason}")]
    BadEntry {
        /// The context.
        context: String,
        /// The entry's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The client sent data the sync did not ask for, or not all it asked for.
    #[error("context {context:?}: {reason}")]
    Protocol {
        /// The context.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// The context key is not one the daemon accepts.
    #[error("bad context key {0:?}: expected 64 hex digits")]
    BadKey(String),
    /// A filesystem operation on the copy failed.
    #[error("context copy {}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Wraps an I/O error with its path.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Daemon-wide counters of what sessions sent; tests read them through the Info RPC.
#[derive(Debug, Default)]
pub struct TransferCounters {
    /// Regular files received.
    pub files_received: AtomicU64,
    /// Bytes of file contents received.
    pub bytes_received: AtomicU64,
    /// Context syncs completed.
    pub contexts_synced: AtomicU64,
    /// Entries listed by clients.
    pub entries_listed: AtomicU64,
}

/// The copies of client contexts, each behind a lock: a sync takes it exclusively, a build using
/// the copy shares it, so a copy never changes under a running build.
#[derive(Debug)]
pub struct CopyStore {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

impl CopyStore {
    /// The store under `root` (created if missing).
    pub fn open(root: &Path) -> Result<CopyStore, SyncError> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        Ok(CopyStore {
            root: root.to_path_buf(),
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for shared use of the copy under `key` (a build reading it, or a check that it
    /// is current).
    pub async fn lock_shared(&self, key: &str) -> Result<OwnedRwLockReadGuard<()>, SyncError> {
        check_key(key)?;
        Ok(self.lock_of(key).read_owned().await)
    }

    fn lock_of(&self, key: &str) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Waits for exclusive use of the copy under `key`.
    pub async fn lock(&self, key: &str) -> Result<OwnedRwLockWriteGuard<()>, SyncError> {
        check_key(key)?;
        Ok(self.lock_of(key).write_owned().await)
    }

    /// The directory of the copy under `key` (its `tree/` and `staging/`).
    pub fn dir_of(&self, key: &str) -> Result<PathBuf, SyncError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// A key is a SHA-256 in hex: it becomes a directory name, so nothing else is accepted.
fn check_key(key: &str) -> Result<(), SyncError> {
    if key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(SyncError::BadKey(key.to_string()))
    }
}

/// What one sync received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Files whose contents were received.
    pub files: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Entries in the listing.
    pub entries: u64,
}

/// A sync in progress: the listing is applied, the asked-for files are arriving.
#[derive(Debug)]
pub struct Incoming {
    context: String,
    tree: PathBuf,
    staging: PathBuf,
    entries: Vec<Entry>,
    /// Indexes of the files asked for, in the order they must arrive.
    needed: Vec<u32>,
    /// How many of `needed` are complete.
    done: usize,
    /// The staging file being written, for `needed[done]`.
    open: Option<File>,
    stats: SyncStats,
}

impl Incoming {
    /// Applies `entries` to the copy in `dir` (its `tree/`), asking for changed files.
    pub fn plan(context: &str, dir: &Path, entries: Vec<Entry>) -> Result<Incoming, SyncError> {
        validate(context, &entries)?;
        let tree = dir.join("tree");
        let staging = dir.join("staging");
        fs::create_dir_all(&tree).map_err(io_err(&tree))?;
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        }
        fs::create_dir_all(&staging).map_err(io_err(&staging))?;

        let wanted: HashMap<&str, EntryKind> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind()))
            .collect();
        remove_stale(&tree, "", &wanted)?;

        let mut needed = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let path = tree.join(&entry.path);
            match entry.kind() {
                EntryKind::Dir => {
                    if !path.is_dir() {
                        fs::create_dir(&path).map_err(io_err(&path))?;
                    }
                }
                EntryKind::Symlink => {
                    let current = fs::read_link(&path).ok();
                    if current.as_deref() != Some(Path::new(&entry.link_target)) {
                        if current.is_some() {
                            fs::remove_file(&path).map_err(io_err(&path))?;
                        }
                        std::os::unix::fs::symlink(&entry.link_target, &path)
                            .map_err(io_err(&path))?;
                    }
                }
                EntryKind::File if entry.hardlink_to.is_empty() => {
                    let same = fs::symlink_metadata(&path).is_ok_and(|m| {
                        m.is_file() && m.size() == entry.size && mtime_ns(&m) == entry.mtime_ns
                    });
                    if !same {
                        needed.push(u32::try_from(index).unwrap_or(u32::MAX));
                    }
                }
                EntryKind::File | EntryKind::Unspecified => {}
            }
        }
        Ok(Incoming {
            context: context.to_string(),
            tree,
            staging,
            entries,
            needed,
            done: 0,
            open: None,
            stats: SyncStats::default(),
        })
    }

    /// The indexes of the files the copy needs, in the order they must be sent.
    pub fn needed(&self) -> &[u32] {
        &self.needed
    }

    /// Takes one chunk of file `index`; the file is put in place on its last chunk.
    pub fn receive(
        &mut self,
        index: u32,
        data: &[u8],
        eof: bool,
        counters: &TransferCounters,
    ) -> Result<(), SyncError> {
        let expected = self.needed.get(self.done).copied();
        if expected != Some(index) {
            return Err(self.protocol(format!("got data for entry {index}, expected {expected:?}")));
        }
        let entry = &self.entries[index as usize];
        let staged = self.staging.join(index.to_string());
        if self.open.is_none() {
            self.open = Some(File::create(&staged).map_err(io_err(&staged))?);
        }
        let file = self.open.as_mut().ok_or_else(|| SyncError::Protocol {
            context: self.context.clone(),
            reason: "no open file".into(),
        })?;
        file.write_all(data).map_err(io_err(&staged))?;
        let len = data.len() as u64;
        self.stats.bytes += len;
        counters.bytes_received.fetch_add(len, Ordering::Relaxed);
        if !eof {
            return Ok(());
        }
        let file = self.open.take().ok_or_else(|| SyncError::Protocol {
            context: self.context.clone(),
            reason: "no open file".into(),
        })?;
        let written = file.metadata().map_err(io_err(&staged))?.len();
        if written != entry.size {
            return Err(self.protocol(format!(
                "{:?}: listed as {} bytes, {written} sent",
                entry.path, entry.size
            )));
        }
        file.set_permissions(fs::Permissions::from_mode(entry.mode & 0o7777))
            .map_err(io_err(&staged))?;
        let mtime = system_time(entry.mtime_ns);
        file.set_times(fs::FileTimes::new().set_accessed(mtime).set_modified(mtime))
            .map_err(io_err(&staged))?;
        drop(file);
        let dest = self.tree.join(&entry.path);
        fs::rename(&staged, &dest).map_err(io_err(&dest))?;
        self.done += 1;
        self.stats.files += 1;
        counters.files_received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Completes the sync: hardlinks, modes, symlink and directory times.
    pub fn finish(self) -> Result<SyncStats, SyncError> {
        if self.done != self.needed.len() || self.open.is_some() {
            return Err(self.protocol(format!(
                "{} of {} asked-for files were not sent",
                self.needed.len() - self.done,
                self.needed.len()
            )));
        }
        for entry in &self.entries {
            let path = self.tree.join(&entry.path);
            match entry.kind() {
                EntryKind::File if !entry.hardlink_to.is_empty() => {
                    let target = self.tree.join(&entry.hardlink_to);
                    let target_ino = fs::symlink_metadata(&target)
                        .map_err(io_err(&target))?
                        .ino();
                    let linked = fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == target_ino);
                    if !linked {
                        if fs::symlink_metadata(&path).is_ok() {
                            fs::remove_file(&path).map_err(io_err(&path))?;
                        }
                        fs::hard_link(&target, &path).map_err(io_err(&path))?;
                    }
                }
                EntryKind::File | EntryKind::Dir => {
                    let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
                    if meta.mode() & 0o7777 != entry.mode & 0o7777 {
                        fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode & 0o7777))
                            .map_err(io_err(&path))?;
                    }
                    if entry.kind() == EntryKind::File && mtime_ns(&meta) != entry.mtime_ns {
                        set_times(&path, entry.mtime_ns)?;
                    }
                }
                EntryKind::Symlink => set_times(&path, entry.mtime_ns)?,
                EntryKind::Unspecified => {}
            }
        }
        // Directory times last, deepest first: writing inside a directory changes its time.
        for entry in self
            .entries
            .iter()
            .rev()
            .filter(|e| e.kind() == EntryKind::Dir)
        {
            set_times(&self.tree.join(&entry.path), entry.mtime_ns)?;
        }
        let _ = fs::remove_dir_all(&self.staging);
        Ok(SyncStats {
            entries: self.entries.len() as u64,
            ..self.stats
        })
    }

    /// How many of the asked-for files are complete.
    pub fn received(&self) -> usize {
        self.done
    }

    /// The copy's tree directory.
    pub fn tree(&self) -> &Path {
        &self.tree
    }

    fn protocol(&self, reason: String) -> SyncError {
        SyncError::Protocol {
            context: self.context.clone(),
            reason,
        }
    }
}

/// Whether the copy in `dir` already matches `entries` exactly (kinds, modes, sizes, times, link
/// targets, hardlinks, nothing extra): then a sync has nothing to do and needs no exclusive use,
/// so builds sharing a context (a base image layout, say) run side by side.
pub fn is_current(dir: &Path, entries: &[Entry]) -> bool {
    if validate("", entries).is_err() {
        return false;
    }
    let tree = dir.join("tree");
    let mut inodes: HashMap<&str, u64> = HashMap::new();
    for entry in entries {
        let path = tree.join(&entry.path);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return false;
        };
        let same = match entry.kind() {
            EntryKind::Dir => {
                meta.is_dir()
                    && meta.mode() & 0o7777 == entry.mode & 0o7777
                    && mtime_ns(&meta) == entry.mtime_ns
            }
            EntryKind::Symlink => {
                meta.file_type().is_symlink()
                    && mtime_ns(&meta) == entry.mtime_ns
                    && fs::read_link(&path).is_ok_and(|t| t == Path::new(&entry.link_target))
            }
            EntryKind::File if !entry.hardlink_to.is_empty() => {
                inodes.get(entry.hardlink_to.as_str()) == Some(&meta.ino())
            }
            EntryKind::File => {
                meta.is_file()
                    && meta.size() == entry.size
                    && mtime_ns(&meta) == entry.mtime_ns
                    && meta.mode() & 0o7777 == entry.mode & 0o7777
            }
            EntryKind::Unspecified => false,
        };
        if !same {
            return false;
        }
        inodes.insert(entry.path.as_str(), meta.ino());
    }
    count_entries(&tree).is_some_and(|n| n == entries.len())
}

/// Entries under `dir`, itself included; None if it cannot be read.
fn count_entries(dir: &Path) -> Option<usize> {
    let mut n = 1;
    for child in fs::read_dir(dir).ok()? {
        let child = child.ok()?;
        if child.file_type().ok()?.is_dir() {
            n += count_entries(&child.path())?;
        } else {
            n += 1;
        }
    }
    Some(n)
}

/// Checks a listing before anything is touched: the root first, then relative clean paths whose
/// parent is an earlier directory, no duplicates, hardlinks to earlier plain files.
fn validate(context: &str, entries: &[Entry]) -> Result<(), SyncError> {
    let bad = |path: &str, reason: &str| SyncError::BadEntry {
        context: context.to_string(),
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if entries.len() > MAX_ENTRIES {
        return Err(bad("", &format!("more than {MAX_ENTRIES} entries")));
    }
    match entries.first() {
        Some(root) if root.path.is_empty() && root.kind() == EntryKind::Dir => {}
        _ => {
            return Err(bad(
                "",
                "the listing must start with the root directory (empty path)",
            ))
        }
    }
    let mut seen: HashMap<&str, &Entry> = HashMap::with_capacity(entries.len());
    seen.insert("", &entries[0]);
    let mut names = HashSet::new();
    for entry in &entries[1..] {
        let path = entry.path.as_str();
        if path.len() > MAX_PATH_BYTES {
            return Err(bad(path, "path too long"));
        }
        if path.starts_with('/')
            || path.contains('\0')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(path, "not a clean relative path"));
        }
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if !seen.get(parent).is_some_and(|p| p.kind() == EntryKind::Dir) {
            return Err(bad(path, "its parent directory is not listed before it"));
        }
        match entry.kind() {
            EntryKind::Unspecified => return Err(bad(path, "unknown entry kind")),
            EntryKind::File if !entry.hardlink_to.is_empty() => {
                let target = seen.get(entry.hardlink_to.as_str());
                if !target.is_some_and(|t| t.kind() == EntryKind::File && t.hardlink_to.is_empty())
                {
                    return Err(bad(path, "hardlink to a file not listed before it"));
                }
            }
            EntryKind::Symlink if entry.link_target.is_empty() => {
                return Err(bad(path, "symlink without a target"))
            }
            _ => {}
        }
        if !names.insert(path) {
            return Err(bad(path, "listed twice"));
        }
        seen.insert(path, entry);
    }
    Ok(())
}

/// Removes what `tree/rel` holds that the listing does not (or holds as another kind).
fn remove_stale(
    tree: &Path,
    rel: &str,
    wanted: &HashMap<&str, EntryKind>,
) -> Result<(), SyncError> {
    let dir = tree.join(rel);
    for child in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let child = child.map_err(io_err(&dir))?;
        let name = child.file_name();
        let Some(name) = name.to_str() else {
            let path = child.path();
            fs::remove_file(&path)
                .or_else(|_| fs::remove_dir_all(&path))
                .map_err(io_err(&path))?;
            continue;
        };
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let path = child.path();
        let kind = child.file_type().map_err(io_err(&path))?;
        let on_disk = if kind.is_dir() {
            EntryKind::Dir
        } else if kind.is_symlink() {
            EntryKind::Symlink
        } else if kind.is_file() {
            EntryKind::File
        } else {
            EntryKind::Unspecified
        };
        match wanted.get(child_rel.as_str()) {
            Some(k) if *k == on_disk && on_disk == EntryKind::Dir => {
                remove_stale(tree, &child_rel, wanted)?
            }
            Some(k) if *k == on_disk => {}
            _ if on_disk == EntryKind::Dir => fs::remove_dir_all(&path).map_err(io_err(&path))?,
            _ => fs::remove_file(&path).map_err(io_err(&path))?,
        }
    }
    Ok(())
}

/// Modification time in nanoseconds since the epoch.
pub fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// A time from nanoseconds since the epoch (before it clamps to the epoch).
fn system_time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Sets access and modification time of `path` without following a symlink.
fn set_times(path: &Path, ns: i64) -> Result<(), SyncError> {
    let spec = TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    utimensat(None, path, &spec, &spec, UtimensatFlags::NoFollowSymlink).map_err(|e| {
        SyncError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, mode: u32, size: u64, mtime_ns: i64) -> Entry {
        Entry {
            path: path.into(),
            kind: kind as i32,
            mode,
            size,
            mtime_ns,
            ..Entry::default()
        }
    }

    fn root() -> Entry {
        entry("", EntryKind::Dir, 0o755, 0, 1_000_000_000)
    }

    /// Runs a whole sync with `files` as the contents of the asked-for entries.
    fn sync(
        dir: &Path,
        entries: Vec<Entry>,
        files: &HashMap<&str, &[u8]>,
    ) -> (Vec<String>, SyncStats) {
        let counters = TransferCounters::default();
        let mut incoming = Incoming::plan("context", dir, entries.clone()).expect("plan");
        let asked: Vec<String> = incoming
            .needed()
            .iter()
            .map(|&i| entries[i as usize].path.clone())
            .collect();
        for &i in incoming.needed().to_vec().iter() {
            let data = files[entries[i as usize].path.as_str()];
            incoming.receive(i, data, true, &counters).expect("receive");
        }
        (asked, incoming.finish().expect("finish"))
    }

    #[test]
    fn second_sync_asks_only_for_changed_files_and_mirrors_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let listing = vec![
            root(),
            entry("a.txt", EntryKind::File, 0o644, 1, 5_000_000_123),
            entry("bin", EntryKind::Dir, 0o700, 0, 7_000_000_000),
            entry("bin/run", EntryKind::File, 0o755, 2, 6_000_000_000),
            Entry {
                link_target: "../a.txt".into(),
                ..entry("bin/link", EntryKind::Symlink, 0o777, 0, 3_000_000_000)
            },
            Entry {
                hardlink_to: "a.txt".into(),
                ..entry("hard", EntryKind::File, 0o644, 1, 5_000_000_123)
            },
        ];
        let files: HashMap<&str, &[u8]> = [("a.txt", &b"A"[..]), ("bin/run", &b"#!"[..])].into();
        let (asked, stats) = sync(dir.path(), listing.clone(), &files);
        assert_eq!(asked, ["a.txt", "bin/run"]);
        assert_eq!((stats.files, stats.bytes, stats.entries), (2, 3, 6));
        let tree = dir.path().join("tree");
        let meta = fs::symlink_metadata(tree.join("bin/run")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, mtime_ns(&meta)),
            (0o755, 6_000_000_000)
        );
        assert_eq!(
            mtime_ns(&fs::symlink_metadata(tree.join("bin")).unwrap()),
            7_000_000_000
        );
        assert_eq!(
            fs::symlink_metadata(tree.join("bin")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(
            fs::read_link(tree.join("bin/link")).unwrap(),
            Path::new("../a.txt")
        );
        assert_eq!(
            fs::metadata(tree.join("hard")).unwrap().ino(),
            fs::metadata(tree.join("a.txt")).unwrap().ino()
        );
        assert_eq!(
            mtime_ns(&fs::symlink_metadata(&tree).unwrap()),
            1_000_000_000
        );

        // One file changed, one removed, one added: only the changed and added ones are asked for.
        fs::write(tree.join("stray"), "not listed").unwrap();
        let mut next = listing.clone();
        next[3] = entry("bin/run", EntryKind::File, 0o755, 3, 8_000_000_000);
        next.remove(4);
        next.push(entry("new", EntryKind::File, 0o600, 0, 9_000_000_000));
        let files: HashMap<&str, &[u8]> = [("bin/run", &b"#!x"[..]), ("new", &b""[..])].into();
        let (asked, stats) = sync(dir.path(), next, &files);
        assert_eq!(asked, ["bin/run", "new"]);
        assert_eq!((stats.files, stats.bytes), (2, 3));
        assert!(!tree.join("bin/link").exists() && !tree.join("stray").exists());
        assert_eq!(fs::read(tree.join("bin/run")).unwrap(), b"#!x");

        // Back to the first listing: bin/run differs again; then nothing differs.
        let (asked, _) = sync(
            dir.path(),
            listing.clone(),
            &[("bin/run", &b"#!"[..])].into(),
        );
        assert_eq!(asked, ["bin/run"]);
        assert!(is_current(dir.path(), &listing));
        let (asked, stats) = sync(dir.path(), listing.clone(), &HashMap::new());
        assert!(asked.is_empty(), "{asked:?}");
        fs::write(tree.join("extra"), "").unwrap();
        assert!(
            !is_current(dir.path(), &listing),
            "an extra file makes the copy stale"
        );
        assert_eq!((stats.files, stats.bytes, stats.entries), (0, 0, 6));
    }

    #[test]
    fn a_kind_change_replaces_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let listing = vec![
            root(),
            entry("x", EntryKind::Dir, 0o755, 0, 1),
            entry("x/y", EntryKind::File, 0o644, 1, 1),
        ];
        sync(dir.path(), listing, &[("x/y", &b"y"[..])].into());
        let listing = vec![root(), entry("x", EntryKind::File, 0o644, 1, 1)];
        let (asked, _) = sync(dir.path(), listing, &[("x", &b"x"[..])].into());
        assert_eq!(asked, ["x"]);
        assert_eq!(fs::read(dir.path().join("tree/x")).unwrap(), b"x");
    }

    #[test]
    fn malformed_listings_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for (entries, needle) in [
            (
                vec![entry("a", EntryKind::File, 0o644, 0, 0)],
                "root directory",
            ),
            (
                vec![root(), entry("../etc/passwd", EntryKind::File, 0o644, 0, 0)],
                "clean relative",
            ),
            (
                vec![root(), entry("/abs", EntryKind::File, 0o644, 0, 0)],
                "clean relative",
            ),
            (
                vec![root(), entry("d/f", EntryKind::File, 0o644, 0, 0)],
                "parent directory",
            ),
            (
                vec![
                    root(),
                    Entry {
                        link_target: "/".into(),
                        ..entry("l", EntryKind::Symlink, 0, 0, 0)
                    },
                    entry("l/f", EntryKind::File, 0o644, 0, 0),
                ],
                "parent directory",
            ),
            (
                vec![
                    root(),
                    entry("a", EntryKind::File, 0o644, 0, 0),
                    entry("a", EntryKind::File, 0o644, 0, 0),
                ],
                "twice",
            ),
            (
                vec![
                    root(),
                    Entry {
                        hardlink_to: "nope".into(),
                        ..entry("h", EntryKind::File, 0o644, 0, 0)
                    },
                ],
                "hardlink",
            ),
        ] {
            let err = Incoming::plan("context", dir.path(), entries)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(!dir.path().join("tree").exists());
    }

    #[test]
    fn data_out_of_order_or_short_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let counters = TransferCounters::default();
        let listing = vec![
            root(),
            entry("a", EntryKind::File, 0o644, 3, 1),
            entry("b", EntryKind::File, 0o644, 1, 1),
        ];
        let mut incoming = Incoming::plan("context", dir.path(), listing.clone()).unwrap();
        assert!(incoming
            .receive(2, b"b", true, &counters)
            .unwrap_err()
            .to_string()
            .contains("expected Some(1)"));
        let mut incoming = Incoming::plan("context", dir.path(), listing.clone()).unwrap();
        assert!(incoming
            .receive(1, b"ab", true, &counters)
            .unwrap_err()
            .to_string()
            .contains("listed as 3 bytes"));
        let incoming = Incoming::plan("context", dir.path(), listing).unwrap();
        assert!(incoming
            .finish()
            .unwrap_err()
            .to_string()
            .contains("2 of 2"));
    }

    #[test]
    fn keys_must_be_hex_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = CopyStore::open(dir.path()).unwrap();
        assert!(store.dir_of("../x").is_err());
        assert!(store.dir_of(&"a".repeat(64)).is_ok());
    }
}
