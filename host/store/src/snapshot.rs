//! The overlayfs snapshotter: committed layers are overlay upper dirs under `root/l/<id>`,
//! recorded in sled; work in progress lives under `root/t` and is never recorded, so whatever a
//! crash leaves there (or an unrecorded `l/<id>`) is removed by the next [`Snapshotter::open`].
//!
//! Chains deeper than the mount limit are handled by flattening their bottom part into a merged
//! layer (hardlinks, no data copies), cached in sled by the ids it was made from.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::layer::{apply_layer_with, AppliedLayer};
use crate::sys::{mounts_under, Kernel, OverlayMount, RealKernel};

/// Default maximum number of lower directories in one overlay mount before flattening.
pub const DEFAULT_MAX_LOWERS: usize = 256;
/// Flattened prefixes grow in steps of this many layers so consecutive steps share them.
const FLATTEN_STEP: usize = 32;
/// The overlayfs xattr marking an opaque directory.
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// Short identifier of a committed layer (base-36, kept short so mount options stay short).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LayerId(String);

impl LayerId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_counter(n: u64) -> LayerId {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let (mut n, mut out) = (n, Vec::new());
        loop {
            out.push(DIGITS[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        out.reverse();
        LayerId(out.into_iter().map(char::from).collect())
    }
}

impl FromStr for LayerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<LayerId> {
        let valid = !s.is_empty()
            && s.len() <= 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
        if valid {
            Ok(LayerId(s.to_string()))
        } else {
            Err(Error::LayerNotFound { id: s.to_string() })
        }
    }
}

impl TryFrom<String> for LayerId {
    type Error = Error;

    fn try_from(s: String) -> Result<LayerId> {
        s.parse()
    }
}

impl From<LayerId> for String {
    fn from(id: LayerId) -> String {
        id.0
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerId({})", self.0)
    }
}

/// What sled records about a committed layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// Seconds since the Unix epoch at commit.
    pub created: u64,
    /// The chain the layer was prepared on (bottom → top); empty for imports.
    pub parents: Vec<LayerId>,
    /// True for a merged layer made by flattening a deep chain (not a diff).
    pub flattened: bool,
}

/// Overlayfs snapshotter; cheap to clone, one per state directory.
#[derive(Clone)]
pub struct Snapshotter {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    db: sled::Db,
    layers: sled::Tree,
    flats: sled::Tree,
    kernel: Arc<dyn Kernel>,
    max_lowers: usize,
}

impl fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshotter")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl Snapshotter {
    /// Opens the snapshotter at `root`, removing crash leftovers and checking overlayfs works.
    pub fn open(root: &Path, db: &sled::Db) -> Result<Snapshotter> {
        Snapshotter::open_with(root, db, Arc::new(RealKernel), DEFAULT_MAX_LOWERS)
    }

    /// [`Snapshotter::open`] with an explicit kernel seam and overlay depth limit (at least 2).
    pub fn open_with(
        root: &Path,
        db: &sled::Db,
        kernel: Arc<dyn Kernel>,
        max_lowers: usize,
    ) -> Result<Snapshotter> {
        let db_err = |what: &str| {
            let what = what.to_string();
            move |source| Error::Db { what, source }
        };
        let inner = Inner {
            root: root.to_path_buf(),
            db: db.clone(),
            layers: db
                .open_tree("hoist-store/layers")
                .map_err(db_err("open layers tree"))?,
            flats: db
                .open_tree("hoist-store/flattened")
                .map_err(db_err("open flattened tree"))?,
            kernel,
            max_lowers: max_lowers.max(2),
        };
        let snap = Snapshotter {
            inner: Arc::new(inner),
        };
        snap.recover()?;
        snap.check_overlay()?;
        Ok(snap)
    }

    /// Starts a writable layer on `parents` (bottom → top); mounted unless there are no parents.
    pub fn prepare(&self, parents: &[LayerId]) -> Result<Mutable> {
        self.check_known(parents)?;
        let tmp = self.inner.new_temp()?;
        let upper = tmp.join("u");
        let mut mutable = Mutable {
            inner: self.inner.clone(),
            parents: parents.to_vec(),
            mountpoint: upper.clone(),
            upper,
            tmp,
            mounted: false,
        };
        create_dir(&mutable.upper, 0o755)?;
        if !parents.is_empty() {
            let work = mutable.tmp.join("w");
            let mnt = mutable.tmp.join("m");
            create_dir(&work, 0o700)?;
            create_dir(&mnt, 0o755)?;
            self.inner
                .mount(parents, Some((mutable.upper.clone(), work)), &mnt)?;
            mutable.mountpoint = mnt;
            mutable.mounted = true;
        }
        Ok(mutable)
    }

    /// Mounts the merged view of `parents` (bottom → top) read-only.
    pub fn view(&self, parents: &[LayerId]) -> Result<View> {
        self.check_known(parents)?;
        let tmp = self.inner.new_temp()?;
        let path = tmp.join("m");
        create_dir(&path, 0o755)?;
        let mut view = View {
            inner: self.inner.clone(),
            tmp,
            path,
            mounted: false,
        };
        if !parents.is_empty() {
            self.inner.mount(parents, None, &view.path)?;
            view.mounted = true;
        }
        Ok(view)
    }

    /// Unpacks a layer tarball into a new committed layer.
    pub fn import_layer(&self, r: impl Read) -> Result<LayerId> {
        Ok(self.import(r)?.0)
    }

    /// Like [`Snapshotter::import_layer`], also returning the diff id and compression seen.
    pub fn import(&self, r: impl Read) -> Result<(LayerId, AppliedLayer)> {
        let tmp = self.inner.new_temp()?;
        let guard = TempGuard(tmp.clone());
        let upper = tmp.join("u");
        create_dir(&upper, 0o755)?;
        let applied = apply_layer_with(r, &upper, self.inner.kernel.as_ref())?;
        let id = self.inner.commit_dir(
            &upper,
            LayerInfo {
                created: now(),
                parents: Vec::new(),
                flattened: false,
            },
        )?;
        drop(guard);
        Ok((id, applied))
    }

    /// The directory holding a committed layer (an overlay upper dir).
    pub fn layer_dir(&self, id: &LayerId) -> PathBuf {
        self.inner.layer_dir(id)
    }

    /// What sled records about `id`.
    pub fn info(&self, id: &LayerId) -> Result<LayerInfo> {
        self.inner.info(id)
    }

    /// Forgets and deletes a committed layer.
    pub fn remove(&self, id: &LayerId) -> Result<()> {
        self.inner.info(id)?;
        self.inner
            .layers
            .remove(id.as_str())
            .map_err(|source| Error::Db {
                what: format!("remove {id}"),
                source,
            })?;
        self.inner.flush()?;
        let dir = self.inner.layer_dir(id);
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))
    }

    /// All committed layers, sorted by id.
    pub fn list(&self) -> Result<Vec<LayerId>> {
        let mut out = Vec::new();
        for kv in self.inner.layers.iter() {
            let (key, _) = kv.map_err(|source| Error::Db {
                what: "list layers".into(),
                source,
            })?;
            if let Some(id) = std::str::from_utf8(&key).ok().and_then(|s| s.parse().ok()) {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The snapshotter root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn check_known(&self, parents: &[LayerId]) -> Result<()> {
        parents
            .iter()
            .try_for_each(|id| self.inner.info(id).map(drop))
    }

    /// Unmounts and removes what a crash left behind: temp dirs and unrecorded layer dirs.
    fn recover(&self) -> Result<()> {
        let root = &self.inner.root;
        for dir in [root.clone(), root.join("l"), root.join("t")] {
            fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        }
        for mnt in mounts_under(root).map_err(Error::io("read mountinfo for", root))? {
            tracing::info!(mountpoint = %mnt.display(), "unmounting leftover snapshot mount");
            self.inner
                .kernel
                .unmount(&mnt)
                .map_err(|source| Error::Mount {
                    op: "umount",
                    target: mnt.clone(),
                    source,
                })?;
        }
        let tmp = root.join("t");
        for entry in read_dir(&tmp)? {
            remove_any(&entry)?;
        }
        let layers = root.join("l");
        for entry in read_dir(&layers)? {
            let recorded = match entry.file_name().and_then(|n| n.to_str()) {
                Some(name) => self
                    .inner
                    .layers
                    .contains_key(name)
                    .map_err(|source| Error::Db {
                        what: format!("look up {name}"),
                        source,
                    })?,
                None => false,
            };
            if !recorded {
                tracing::info!(dir = %entry.display(), "removing unfinished layer");
                remove_any(&entry)?;
            }
        }
        for id in self.list()? {
            if !self.inner.layer_dir(&id).is_dir() {
                tracing::warn!(%id, "forgetting layer whose directory is missing");
                self.inner
                    .layers
                    .remove(id.as_str())
                    .map_err(|source| Error::Db {
                        what: format!("remove {id}"),
                        source,
                    })?;
            }
        }
        self.inner.flush()
    }

    /// Mounts a two-lower overlay with an upper and checks reads, writes and whiteouts.
    fn check_overlay(&self) -> Result<()> {
        let root = self.inner.root.clone();
        let unusable = |reason: String| Error::OverlayUnusable {
            root: root.clone(),
            reason,
        };
        let tmp = self.inner.new_temp()?;
        let _guard = TempGuard(tmp.clone());
        let [l1, l2, u, w, m] = ["l1", "l2", "u", "w", "m"].map(|n| tmp.join(n));
        for d in [&l1, &l2, &u, &w, &m] {
            create_dir(d, 0o755)?;
        }
        fs::write(l1.join("f"), b"x").map_err(Error::io("write", &l1))?;
        let mount = OverlayMount {
            lowers: vec![l2, l1],
            upper: Some((u.clone(), w)),
            target: m.clone(),
        };
        self.inner
            .kernel
            .mount_overlay(&mount)
            .map_err(|e| unusable(format!("test mount failed: {e}")))?;
        let probe = (|| -> io::Result<bool> {
            let seen = fs::read(m.join("f"))? == b"x";
            fs::remove_file(m.join("f"))?;
            Ok(seen)
        })();
        self.inner
            .kernel
            .unmount(&m)
            .map_err(|source| Error::Mount {
                op: "umount",
                target: m.clone(),
                source,
            })?;
        match probe {
            Ok(true) => {}
            Ok(false) => {
                return Err(unusable(
                    "lower file not visible through the overlay".into(),
                ))
            }
            Err(e) => return Err(unusable(format!("test write failed: {e}"))),
        }
        let whiteout = fs::symlink_metadata(u.join("f"))
            .map_err(|e| unusable(format!("no whiteout in upper: {e}")))?;
        if !is_whiteout(&whiteout) {
            return Err(unusable(
                "deleting a lower file did not leave a 0/0 whiteout".into(),
            ));
        }
        Ok(())
    }
}

impl Inner {
    fn layer_dir(&self, id: &LayerId) -> PathBuf {
        self.root.join("l").join(id.as_str())
    }

    fn info(&self, id: &LayerId) -> Result<LayerInfo> {
        let raw = self.layers.get(id.as_str()).map_err(|source| Error::Db {
            what: format!("get {id}"),
            source,
        })?;
        let raw = raw.ok_or_else(|| Error::LayerNotFound { id: id.to_string() })?;
        serde_json::from_slice(&raw).map_err(|e| Error::Db {
            what: format!("decode {id}"),
            source: sled::Error::Unsupported(e.to_string()),
        })
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|source| Error::Db {
            what: "flush".into(),
            source,
        })?;
        Ok(())
    }

    /// A fresh, unrecorded temp dir under `root/t`.
    fn new_temp(&self) -> Result<PathBuf> {
        let parent = self.root.join("t");
        let dir = tempfile::Builder::new()
            .prefix("")
            .rand_bytes(6)
            .tempdir_in(&parent)
            .map_err(Error::io("create temp dir in", &parent))?;
        Ok(dir.keep())
    }

    /// Atomically publishes `dir` as a new layer: rename into `l/`, then record and flush.
    fn commit_dir(&self, dir: &Path, info: LayerInfo) -> Result<LayerId> {
        let n = self.db.generate_id().map_err(|source| Error::Db {
            what: "generate id".into(),
            source,
        })?;
        let id = LayerId::from_counter(n);
        let dest = self.layer_dir(&id);
        fs::rename(dir, &dest).map_err(Error::io("rename into", &dest))?;
        if let Ok(parent) = fs::File::open(self.root.join("l")) {
            let _ = parent.sync_all();
        }
        let value = serde_json::to_vec(&info).map_err(|e| Error::Db {
            what: format!("encode {id}"),
            source: sled::Error::Unsupported(e.to_string()),
        })?;
        self.layers
            .insert(id.as_str(), value)
            .map_err(|source| Error::Db {
                what: format!("insert {id}"),
                source,
            })?;
        self.flush()?;
        Ok(id)
    }

    /// Mounts an overlay of `parents`, flattening the bottom of the chain when too deep.
    fn mount(
        &self,
        parents: &[LayerId],
        upper: Option<(PathBuf, PathBuf)>,
        target: &Path,
    ) -> Result<()> {
        let mut max = self.max_lowers;
        loop {
            let mut lowers = self.lower_dirs(parents, max)?;
            if lowers.len() == 1 && upper.is_none() {
                // A read-only overlay needs two lowers; an empty dir changes nothing.
                let empty = self.root.join("empty");
                create_dir_all(&empty)?;
                lowers.push(empty);
            }
            let m = OverlayMount {
                lowers,
                upper: upper.clone(),
                target: target.to_path_buf(),
            };
            match self.kernel.mount_overlay(&m) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) && max > 2 => max /= 2,
                Err(source) => {
                    return Err(Error::Mount {
                        op: "mount overlay at",
                        target: target.to_path_buf(),
                        source,
                    })
                }
            }
        }
    }

    /// Lower dirs for `parents`, topmost first, at most `max` of them.
    fn lower_dirs(&self, parents: &[LayerId], max: usize) -> Result<Vec<PathBuf>> {
        let n = parents.len();
        if n <= max {
            return Ok(parents.iter().rev().map(|id| self.layer_dir(id)).collect());
        }
        let prefix = (n - (max - 1))
            .div_ceil(FLATTEN_STEP)
            .saturating_mul(FLATTEN_STEP)
            .min(n);
        let flat = self.flattened(&parents[..prefix])?;
        let mut lowers: Vec<PathBuf> = parents[prefix..]
            .iter()
            .rev()
            .map(|id| self.layer_dir(id))
            .collect();
        lowers.push(self.layer_dir(&flat));
        Ok(lowers)
    }

    /// The merged layer for `chain`, made (and cached in sled) on first use.
    fn flattened(&self, chain: &[LayerId]) -> Result<LayerId> {
        let mut hasher = Sha256::new();
        for id in chain {
            hasher.update(id.as_str());
            hasher.update(b"\n");
        }
        let key = hasher.finalize();
        let cached = self.flats.get(key).map_err(|source| Error::Db {
            what: "get flattened".into(),
            source,
        })?;
        if let Some(id) = cached.and_then(|v| {
            std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<LayerId>().ok())
        }) {
            if self.info(&id).is_ok() {
                return Ok(id);
            }
        }
        let tmp = self.new_temp()?;
        let _guard = TempGuard(tmp.clone());
        let merged = tmp.join("u");
        create_dir(&merged, 0o755)?;
        for id in chain {
            self.merge_into(&merged, &self.layer_dir(id))?;
        }
        let id = self.commit_dir(
            &merged,
            LayerInfo {
                created: now(),
                parents: chain.to_vec(),
                flattened: true,
            },
        )?;
        self.flats
            .insert(key, id.as_str())
            .map_err(|source| Error::Db {
                what: "insert flattened".into(),
                source,
            })?;
        self.flush()?;
        Ok(id)
    }

    /// Applies the upper dir `src` onto the merged tree `dst` by overlay rules, hardlinking files.
    fn merge_into(&self, dst: &Path, src: &Path) -> Result<()> {
        for s in read_dir(src)? {
            let d = dst.join(s.file_name().unwrap_or_default());
            let meta = fs::symlink_metadata(&s).map_err(Error::io("stat", &s))?;
            let existing = fs::symlink_metadata(&d).ok();
            if is_whiteout(&meta) {
                if existing.is_some() {
                    remove_any(&d)?;
                }
                continue;
            }
            if !meta.is_dir() {
                if existing.is_some() {
                    remove_any(&d)?;
                }
                fs::hard_link(&s, &d).map_err(Error::io("hardlink", &d))?;
                continue;
            }
            let opaque = self
                .kernel
                .xattrs(&s)
                .map_err(Error::io("list xattrs of", &s))?
                .iter()
                .any(|(k, v)| k.as_encoded_bytes() == OPAQUE_XATTR && v.as_slice() == b"y");
            match existing {
                Some(m) if m.is_dir() && !opaque => {}
                Some(_) => {
                    remove_any(&d)?;
                    fs::create_dir(&d).map_err(Error::io("create dir", &d))?;
                }
                None => fs::create_dir(&d).map_err(Error::io("create dir", &d))?,
            }
            self.merge_into(&d, &s)?;
            self.copy_dir_metadata(&s, &d, &meta)?;
        }
        Ok(())
    }

    fn copy_dir_metadata(&self, src: &Path, dst: &Path, meta: &fs::Metadata) -> Result<()> {
        self.kernel
            .lchown(dst, meta.uid(), meta.gid())
            .map_err(Error::io("chown", dst))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(Error::io("chmod", dst))?;
        for (name, value) in self
            .kernel
            .xattrs(src)
            .map_err(Error::io("list xattrs of", src))?
        {
            if !name.as_encoded_bytes().starts_with(b"trusted.overlay.") {
                self.kernel
                    .set_xattr(dst, name.as_encoded_bytes(), &value)
                    .map_err(Error::io("set xattr on", dst))?;
            }
        }
        let nanos = u32::try_from(meta.mtime_nsec()).unwrap_or(0);
        self.kernel
            .set_mtime(dst, meta.mtime(), nanos)
            .map_err(Error::io("set mtime of", dst))
    }
}

/// A writable layer in progress; dropping it without [`Mutable::commit`] discards it.
pub struct Mutable {
    inner: Arc<Inner>,
    parents: Vec<LayerId>,
    tmp: PathBuf,
    upper: PathBuf,
    mountpoint: PathBuf,
    mounted: bool,
}

impl fmt::Debug for Mutable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutable")
            .field("mountpoint", &self.mountpoint)
            .field("parents", &self.parents)
            .finish()
    }
}

impl Mutable {
    /// Where the merged, writable root filesystem is visible.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The upper dir collecting this layer's changes (overlay upper format).
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The chain this layer was prepared on (bottom → top).
    pub fn parents(&self) -> &[LayerId] {
        &self.parents
    }

    /// Unmounts and atomically publishes the changes as a new layer.
    pub fn commit(mut self) -> Result<LayerId> {
        self.unmount()?;
        let info = LayerInfo {
            created: now(),
            parents: self.parents.clone(),
            flattened: false,
        };
        self.inner.commit_dir(&self.upper, info)
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            self.inner
                .kernel
                .unmount(&self.mountpoint)
                .map_err(|source| Error::Mount {
                    op: "umount",
                    target: self.mountpoint.clone(),
                    source,
                })?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Mutable {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!(error = %e, "cannot unmount discarded layer; leaving it for recovery");
            return;
        }
        let _ = remove_any(&self.tmp);
    }
}

/// A read-only mount of a chain of layers; unmounted on drop.
pub struct View {
    inner: Arc<Inner>,
    tmp: PathBuf,
    path: PathBuf,
    mounted: bool,
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("path", &self.path).finish()
    }
}

impl View {
    /// Where the merged tree is visible.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = self.inner.kernel.unmount(&self.path) {
                tracing::warn!(error = %e, path = %self.path.display(), "cannot unmount view");
                return;
            }
        }
        let _ = remove_any(&self.tmp);
    }
}

/// Removes a temp dir when dropped.
struct TempGuard(PathBuf);

impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = remove_any(&self.0);
    }
}

/// True for an overlay whiteout (a 0/0 character device).
fn is_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir(path).map_err(Error::io("create dir", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io("chmod", path))
}

fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(Error::io("create dir", path))
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Error::io("read dir", dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()
        .map_err(Error::io("read dir", dir))?;
    out.sort();
    Ok(out)
}

/// Removes a file, symlink or whole directory tree (not following symlinks).
fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(Error::io("remove", path))
}

#[cfg(test)]
mod tests;
