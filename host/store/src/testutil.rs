//! Helpers shared by the root-only tests: describe a directory tree as comparable data.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::sys::{Kernel, RealKernel};

/// Everything observable about one entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// File content, symlink target or "major:minor".
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Facts of every entry under `root` (root itself excluded), keyed by relative path.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Facts> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let m = fs::symlink_metadata(entry.path()).unwrap();
        let ft = m.file_type();
        let (kind, data) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_file() {
            ("file", fs::read(entry.path()).unwrap())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_char_device() {
            (
                "char",
                format!(
                    "{}:{}",
                    rustix::fs::major(m.rdev()),
                    rustix::fs::minor(m.rdev())
                )
                .into_bytes(),
            )
        } else if ft.is_fifo() {
            ("fifo", Vec::new())
        } else {
            ("other", Vec::new())
        };
        let xattrs = RealKernel
            .xattrs(entry.path())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v))
            .collect();
        let facts = Facts {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            data,
            xattrs,
        };
        out.insert(
            entry.path().strip_prefix(root).unwrap().to_path_buf(),
            facts,
        );
    }
    out
}

/// Sets mtime of `path` (not following symlinks).
pub fn set_mtime(path: &Path, secs: i64) {
    RealKernel.set_mtime(path, secs, 0).unwrap();
}

/// Changes owner of `path` (not following symlinks).
pub fn chown(path: &Path, uid: u32, gid: u32) {
    RealKernel.lchown(path, uid, gid).unwrap();
}

/// Sets permission bits of `path`.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}
