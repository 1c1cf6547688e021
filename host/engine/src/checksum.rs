//! Content checksums of local build contexts: the digest a file source's cache key is built on.
//!
//! [`tree_checksum`] hashes exactly the paths a [`PathFilter`] selects (the same selection, in
//! the same order, as [`sync_local`](crate::context::sync_local) copies), so two contexts that
//! would sync to the same snapshot get the same digest. A [`ChecksumCache`] in a `sled::Tree`
//! remembers each file's digest with its (dev, inode, size, mtime, ctime): a file whose metadata
//! all match is not read again, so an unchanged tree costs one `lstat` per entry. Files are hashed
//! on a few threads. This module only reads the context; it writes nothing but cache entries.
//!
//! # The tree hash (`hoist-tree-v1`)
//!
//! SHA-256 over a version tag, then for each selected entry, in walk order (parents first, names
//! in byte order), length-prefixed fields: a type tag, the relative path, the permission bits
//! (mode & 0o7777), and a payload: a regular file's content SHA-256, a symlink's target, a
//! device's number, or, for a further hardlink to a file already hashed, that file's relative path
//! (its content is counted once). **Owners and times are left out**, as in BuildKit: a synced
//! context is owned by 0:0 whatever the client's owners, and mtimes change on every checkout.
//!
//! A file changed within [`RACY_WINDOW`] before it was read is hashed but not cached: a second
//! write in the same kernel clock tick could leave its size and times unchanged (git's "racily
//! clean" problem), so it is read again next time.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::context::{walk_selected, ContextError, PathFilter};
use crate::fsutil::{FsError, WalkEntry};

/// Threads hashing file contents at most (the engine shares its cores with running builds).
pub const MAX_HASH_THREADS: usize = 4;

/// How long after its last change (ctime) a file's digest becomes cacheable: a few ticks of the
/// kernel's coarse clock, which timestamps writes.
pub const RACY_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

/// Read buffer per hashing thread.
const READ_BUFFER: usize = 1 << 20;

/// Cache entries written per sled batch: one batch for a whole large tree costs sled about
/// 4.5 KiB of memory per entry at peak (90 MB for 20,000 files), 1,024 at a time about 17 MB.
const CACHE_BATCH: usize = 1024;

/// Version tag opening every tree hash; bump it when the record format changes.
const TREE_HASH_VERSION: &[u8] = b"hoist-tree-v1";

/// Per-file digests remembered across builds, keyed by absolute path, valid while the file's
/// (dev, inode, size, mtime, ctime) are unchanged.
#[derive(Debug, Clone)]
pub struct ChecksumCache {
    tree: sled::Tree,
}

/// The metadata a cached digest is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

/// Bytes of an encoded cache value: the stamp's five numbers and a SHA-256.
const CACHE_VALUE_LEN: usize = 5 * 8 + 32;

impl Stamp {
    /// The stamp of `meta`.
    fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The cache value for this stamp and `digest`.
    fn encode(&self, digest: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(CACHE_VALUE_LEN);
        out.extend_from_slice(&self.dev.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.ctime_ns.to_le_bytes());
        out.extend_from_slice(digest);
        out
    }

    /// The stamp and digest of a cache value (`None` if malformed).
    fn decode(value: &[u8]) -> Option<(Stamp, [u8; 32])> {
        if value.len() != CACHE_VALUE_LEN {
            return None;
        }
        let word = |i: usize| -> Option<[u8; 8]> { value.get(i * 8..i * 8 + 8)?.try_into().ok() };
        let stamp = Stamp {
            dev: u64::from_le_bytes(word(0)?),
            ino: u64::from_le_bytes(word(1)?),
            size: u64::from_le_bytes(word(2)?),
            mtime_ns: i64::from_le_bytes(word(3)?),
            ctime_ns: i64::from_le_bytes(word(4)?),
        };
        Some((stamp, value.get(40..)?.try_into().ok()?))
    }
}

impl ChecksumCache {
    /// A cache stored in `tree` (the caller owns the database and decides when to flush it).
    pub fn new(tree: sled::Tree) -> Self {
        ChecksumCache { tree }
    }

    /// The digest remembered for `key` if it was stored for exactly `stamp`.
    fn lookup(&self, key: &[u8], stamp: &Stamp) -> Result<Option<[u8; 32]>, sled::Error> {
        let value = self.tree.get(key)?;
        Ok(value
            .and_then(|v| Stamp::decode(&v))
            .filter(|(s, _)| s == stamp)
            .map(|(_, d)| d))
    }
}

/// A tree checksum and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChecksum {
    /// `sha256:<hex>` over the selected entries.
    pub digest: String,
    /// Relative paths of the files whose contents were read this time.
    pub rehashed: Vec<PathBuf>,
    /// Number of files whose digest came from the cache.
    pub reused: usize,
    /// Selected entries hashed (files, directories, links, devices).
    pub entries: usize,
    /// Bytes of file contents read this time.
    pub bytes_read: u64,
}

/// The content checksum of what `filter` selects in directory `src`, with which files were read
/// and how many reused a cached digest.
pub fn tree_checksum(
    src: &Path,
    filter: &dyn PathFilter,
    cache: &ChecksumCache,
) -> Result<TreeChecksum, ContextError> {
    let fs_err = |source| ContextError::Fs {
        context: src.to_owned(),
        source,
    };
    let root = std::path::absolute(src).map_err(|e| fs_err(FsError::io(src, e)))?;
    let entries = walk_selected(&root, filter).map_err(fs_err)?;
    let plan = plan_files(&entries);
    let mut resolved = resolve_digests(&root, &entries, &plan.files, cache)?;
    resolved.sort_by_key(|r| r.index);
    let mut digests = vec![None; entries.len()];
    let mut batch = sled::Batch::default();
    let mut batched = 0;
    let mut rehashed = Vec::new();
    let mut bytes_read = 0;
    for file in &resolved {
        digests[file.index] = Some(file.digest);
        let Some(read) = &file.read else { continue };
        rehashed.push(entries[file.index].rel.clone());
        bytes_read += read.bytes;
        if let Some(stamp) = read.stable {
            batch.insert(
                cache_key(&root, &entries[file.index]),
                stamp.encode(&file.digest),
            );
            batched += 1;
        }
        if batched == CACHE_BATCH {
            let full = std::mem::take(&mut batch);
            cache.tree.apply_batch(full).map_err(ContextError::Cache)?;
            batched = 0;
        }
    }
    cache.tree.apply_batch(batch).map_err(ContextError::Cache)?;
    let digest = tree_digest(&root, &entries, &digests, &plan.link_of).map_err(fs_err)?;
    Ok(TreeChecksum {
        digest,
        reused: resolved.len() - rehashed.len(),
        rehashed,
        entries: entries.len(),
        bytes_read,
    })
}

/// The checksum of exactly what a step reads from local context `src`: the paths `selectors`
/// resolve to, through the source's own `source_filter`, hashed as [`tree_checksum`] does. Also
/// returns the resolved paths (`/`-prefixed, for messages).
pub fn selection_checksum(
    src: &Path,
    source_filter: &dyn PathFilter,
    selectors: &[crate::selection::PathSelector],
    cache: &ChecksumCache,
) -> Result<(TreeChecksum, Vec<String>), ContextError> {
    let root = std::path::absolute(src).map_err(|e| ContextError::Fs {
        context: src.to_owned(),
        source: FsError::io(src, e),
    })?;
    let selection = crate::selection::SelectionFilter::resolve(&root, selectors).map_err(|source| {
        ContextError::Fs {
            context: src.to_owned(),
            source,
        }
    })?;
    let both = crate::selection::Both(source_filter, &selection);
    Ok((tree_checksum(&root, &both, cache)?, selection.roots()))
}

/// The regular files needing a digest, and the further hardlinks of an earlier file (entry
/// index → index of the first, whose digest they share).
struct Plan {
    files: Vec<usize>,
    link_of: HashMap<usize, usize>,
}

/// Finds the regular files of `entries` to digest, counting each hardlinked inode once.
fn plan_files(entries: &[WalkEntry]) -> Plan {
    let mut plan = Plan {
        files: Vec::new(),
        link_of: HashMap::new(),
    };
    let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if !entry.meta.is_file() {
            continue;
        }
        if entry.meta.nlink() > 1 {
            let inode = (entry.meta.dev(), entry.meta.ino());
            if let Some(&first) = first_of_inode.get(&inode) {
                plan.link_of.insert(index, first);
                continue;
            }
            first_of_inode.insert(inode, index);
        }
        plan.files.push(index);
    }
    plan
}

/// The cache key of an entry: its absolute path.
fn cache_key(root: &Path, entry: &WalkEntry) -> Vec<u8> {
    root.join(&entry.rel).into_os_string().into_vec()
}

/// The digest of one file, and how it was obtained.
struct Resolved {
    /// Index in the entry list.
    index: usize,
    /// SHA-256 of its contents.
    digest: [u8; 32],
    /// Set when the file was read (not taken from the cache).
    read: Option<ReadInfo>,
}

/// What reading a file found.
struct ReadInfo {
    /// Bytes read.
    bytes: u64,
    /// Its stamp, if it did not change while being read and had settled (only then is it cached).
    stable: Option<Stamp>,
}

/// The digests of the files at `files` (indexes into `entries`): from the cache when their stamp
/// matches, else read; on up to [`MAX_HASH_THREADS`] threads.
fn resolve_digests(
    root: &Path,
    entries: &[WalkEntry],
    files: &[usize],
    cache: &ChecksumCache,
) -> Result<Vec<Resolved>, ContextError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_HASH_THREADS)
        .min(files.len());
    let next = AtomicUsize::new(0);
    let work = || -> Result<Vec<Resolved>, ContextError> {
        let mut buffer = Vec::new();
        let mut done = Vec::new();
        while let Some(&index) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push(resolve_one(
                root,
                &entries[index],
                index,
                cache,
                &mut buffer,
            )?);
        }
        Ok(done)
    };
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        let mut all = Vec::with_capacity(files.len());
        for handle in handles {
            let panicked = || ContextError::Fs {
                context: root.to_owned(),
                source: FsError::io(root, std::io::Error::other("hashing thread panicked")),
            };
            all.extend(handle.join().map_err(|_| panicked())??);
        }
        Ok(all)
    })
}

/// The digest of one file: cached if its stamp matches, else read (growing `buffer` to
/// [`READ_BUFFER`] on first use).
fn resolve_one(
    root: &Path,
    entry: &WalkEntry,
    index: usize,
    cache: &ChecksumCache,
    buffer: &mut Vec<u8>,
) -> Result<Resolved, ContextError> {
    let stamp = Stamp::of(&entry.meta);
    let cached = cache
        .lookup(&cache_key(root, entry), &stamp)
        .map_err(ContextError::Cache)?;
    if let Some(digest) = cached {
        return Ok(Resolved {
            index,
            digest,
            read: None,
        });
    }
    if buffer.is_empty() {
        buffer.resize(READ_BUFFER, 0);
    }
    let (digest, read) = hash_file(root, entry, buffer).map_err(|source| ContextError::Fs {
        context: root.to_owned(),
        source,
    })?;
    Ok(Resolved {
        index,
        digest,
        read: Some(read),
    })
}

/// Hashes one regular file, noting whether it kept the metadata the walk saw.
fn hash_file(
    root: &Path,
    entry: &WalkEntry,
    buffer: &mut [u8],
) -> Result<([u8; 32], ReadInfo), FsError> {
    let path = root.join(&entry.rel);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| FsError::io(&path, e))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let n = file.read(buffer).map_err(|e| FsError::io(&path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let after = file.metadata().map_err(|e| FsError::io(&path, e))?;
    let stable = cacheable(Stamp::of(&entry.meta), Stamp::of(&after), bytes, started);
    Ok((hasher.finalize().into(), ReadInfo { bytes, stable }))
}

/// The stamp to cache a digest under, if the file (stamped `before` by the walk, `after` once
/// read, `bytes` long) did not change while read and had settled for [`RACY_WINDOW`] when the
/// read started (`started`, since the epoch).
fn cacheable(
    before: Stamp,
    after: Stamp,
    bytes: u64,
    started: std::time::Duration,
) -> Option<Stamp> {
    let settled_before =
        i64::try_from(started.saturating_sub(RACY_WINDOW).as_nanos()).unwrap_or(i64::MAX);
    let unchanged = after == before && bytes == before.size;
    (unchanged && before.ctime_ns < settled_before).then_some(before)
}

/// The `sha256:<hex>` tree hash of `entries` (under `root`) given each file's content digest and
/// the hardlinks; symlink targets are read here.
fn tree_digest(
    root: &Path,
    entries: &[WalkEntry],
    digests: &[Option<[u8; 32]>],
    link_of: &HashMap<usize, usize>,
) -> Result<String, FsError> {
    let mut hasher = Sha256::new();
    field(&mut hasher, TREE_HASH_VERSION);
    for (index, entry) in entries.iter().enumerate() {
        let ft = entry.meta.file_type();
        let perm = (entry.meta.mode() & 0o7777).to_le_bytes();
        let rel = entry.rel.as_os_str().as_bytes();
        let (tag, payload): (&[u8], Vec<u8>) = if let Some(&first) = link_of.get(&index) {
            (b"h", entries[first].rel.as_os_str().as_bytes().to_vec())
        } else if ft.is_file() {
            (b"f", digests[index].map(|d| d.to_vec()).unwrap_or_default())
        } else if ft.is_dir() {
            (b"d", Vec::new())
        } else if ft.is_symlink() {
            let path = root.join(&entry.rel);
            let target = std::fs::read_link(&path).map_err(|e| FsError::io(&path, e))?;
            (b"l", target.into_os_string().into_vec())
        } else if ft.is_block_device() || ft.is_char_device() {
            (
                if ft.is_block_device() { b"b" } else { b"c" },
                entry.meta.rdev().to_le_bytes().to_vec(),
            )
        } else if ft.is_fifo() {
            (b"p", Vec::new())
        } else {
            (b"s", Vec::new())
        };
        field(&mut hasher, tag);
        field(&mut hasher, rel);
        field(&mut hasher, &perm);
        field(&mut hasher, &payload);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Feeds one length-prefixed field to the hasher.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{IncludeAll, PrefixFilter};
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn cache() -> ChecksumCache {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        ChecksumCache::new(db.open_tree("checksums").expect("tree"))
    }

    /// Waits until recent writes are older than the racy window, so their digests get cached.
    fn settle() {
        std::thread::sleep(RACY_WINDOW * 2);
    }

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("src/deep")).unwrap();
        fs::write(p.join("src/a.rs"), "a").unwrap();
        fs::write(p.join("src/deep/b.rs"), "bb").unwrap();
        fs::write(p.join("README"), "readme").unwrap();
        symlink("../README", p.join("src/readme-link")).unwrap();
        fs::hard_link(p.join("src/a.rs"), p.join("a-hard.rs")).unwrap();
        settle();
        dir
    }

    #[test]
    fn unchanged_tree_same_digest_and_nothing_reread() {
        let ctx = context();
        let cache = cache();
        let first = tree_checksum(ctx.path(), &IncludeAll, &cache).unwrap();
        assert!(first.digest.starts_with("sha256:") && first.digest.len() == 71);
        assert_eq!(
            first.rehashed.len(),
            3,
            "a.rs (once for both links), b.rs, README"
        );
        assert_eq!(first.bytes_read, 1 + 2 + 6);
        let second = tree_checksum(ctx.path(), &IncludeAll, &cache).unwrap();
        assert_eq!(second.digest, first.digest);
        assert!(second.rehashed.is_empty());
        assert_eq!((second.reused, second.bytes_read), (3, 0));
        let fresh = tree_checksum(ctx.path(), &IncludeAll, &super::tests::cache())
            .unwrap()
            .digest;
        assert_eq!(fresh, first.digest, "the cache does not change the result");
    }

    #[test]
    fn content_mode_link_and_hardlink_changes_change_the_digest() {
        let ctx = context();
        let cache = cache();
        let p = ctx.path();
        let mut seen = vec![tree_checksum(p, &IncludeAll, &cache).unwrap().digest];
        let mut check = |what: &str| {
            let digest = tree_checksum(p, &IncludeAll, &cache).unwrap().digest;
            assert!(!seen.contains(&digest), "{what} did not change the digest");
            seen.push(digest);
        };
        fs::write(p.join("src/deep/b.rs"), "bB").unwrap();
        check("same-size content change");
        fs::set_permissions(p.join("README"), fs::Permissions::from_mode(0o755)).unwrap();
        check("mode change");
        fs::remove_file(p.join("src/readme-link")).unwrap();
        symlink("../OTHER", p.join("src/readme-link")).unwrap();
        check("symlink target change");
        fs::remove_file(p.join("a-hard.rs")).unwrap();
        fs::write(p.join("a-hard.rs"), "a").unwrap();
        check("hardlink replaced by an equal copy");
        settle();
        tree_checksum(p, &IncludeAll, &cache).unwrap();
        let digest = tree_checksum(p, &IncludeAll, &cache).unwrap();
        assert!(digest.rehashed.is_empty(), "a repeat run reads nothing");
    }

    #[test]
    fn just_written_files_are_read_again() {
        let ctx = context();
        let cache = cache();
        let before = tree_checksum(ctx.path(), &IncludeAll, &cache).unwrap();
        fs::write(ctx.path().join("README"), "new").unwrap();
        let after = tree_checksum(ctx.path(), &IncludeAll, &cache).unwrap();
        assert_eq!(after.rehashed, vec![PathBuf::from("README")]);
        assert_ne!(after.digest, before.digest);
    }

    #[test]
    fn racily_clean_or_changing_files_are_not_cached() {
        let ms = std::time::Duration::from_millis;
        let stamp = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 1_000_000_000,
            ctime_ns: 1_000_000_000,
        };
        let changed = Stamp {
            ctime_ns: 1_000_000_001,
            ..stamp
        };
        assert_eq!(cacheable(stamp, stamp, 3, ms(1_000 + 21)), Some(stamp));
        assert_eq!(
            cacheable(stamp, stamp, 3, ms(1_000 + 19)),
            None,
            "changed too recently"
        );
        assert_eq!(
            cacheable(stamp, changed, 3, ms(5_000)),
            None,
            "changed while read"
        );
        assert_eq!(cacheable(stamp, stamp, 2, ms(5_000)), None, "short read");
    }

    #[test]
    fn digest_covers_only_selected_paths() {
        let ctx = context();
        let cache = cache();
        let filter = PrefixFilter::new(&["src/deep"]);
        let before = tree_checksum(ctx.path(), &filter, &cache).unwrap().digest;
        fs::write(ctx.path().join("README"), "changed outside the selection").unwrap();
        assert_eq!(
            tree_checksum(ctx.path(), &filter, &cache).unwrap().digest,
            before
        );
        fs::write(ctx.path().join("src/deep/new"), "").unwrap();
        assert_ne!(
            tree_checksum(ctx.path(), &filter, &cache).unwrap().digest,
            before
        );
    }

    #[test]
    fn owners_and_times_are_ignored() {
        let ctx = context();
        let cache = cache();
        let before = tree_checksum(ctx.path(), &IncludeAll, &cache)
            .unwrap()
            .digest;
        std::os::unix::fs::lchown(ctx.path().join("README"), Some(99), Some(99)).unwrap();
        crate::fsutil::set_times(&ctx.path().join("src/a.rs"), (1, 0), (1, 0)).unwrap();
        let after = tree_checksum(ctx.path(), &IncludeAll, &cache).unwrap();
        assert_eq!(after.digest, before);
        assert_eq!(
            after.rehashed.len(),
            2,
            "changed metadata invalidates the cached digests"
        );
    }
}

/// Each entry `filter` selects in `src`, in walk order, with the content digest of regular files
/// (hardlinks share their first file's): the per-file data [`tree_checksum`] hashes, for naming
/// the files that changed between builds. Digests come from `cache` when the stamps match
/// (right after a [`tree_checksum`] of the same tree, all do), else the file is read.
pub fn entry_digests(
    src: &Path,
    filter: &dyn PathFilter,
    cache: &ChecksumCache,
) -> Result<Vec<(WalkEntry, Option<[u8; 32]>)>, ContextError> {
    let fs_err = |source| ContextError::Fs {
        context: src.to_owned(),
        source,
    };
    let root = std::path::absolute(src).map_err(|e| fs_err(FsError::io(src, e)))?;
    let entries = walk_selected(&root, filter).map_err(fs_err)?;
    let plan = plan_files(&entries);
    let mut digests = vec![None; entries.len()];
    for file in resolve_digests(&root, &entries, &plan.files, cache)? {
        digests[file.index] = Some(file.digest);
    }
    for (&link, &first) in &plan.link_of {
        digests[link] = digests[first];
    }
    Ok(entries.into_iter().zip(digests).collect())
}
