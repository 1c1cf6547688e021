use std::fs;
use std::path::Path;

use super::*;
use crate::layer::{export_layer, Compression};
use crate::testutil::tree;

fn setup() -> (tempfile::TempDir, sled::Db, Snapshotter) {
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::open(tmp.path().join("db")).unwrap();
    let snap = Snapshotter::open(&tmp.path().join("snap"), &db).unwrap();
    (tmp, db, snap)
}

/// Commits a parentless layer holding `files`.
fn layer_with(snap: &Snapshotter, files: &[(&str, &str)]) -> LayerId {
    let m = snap.prepare(&[]).unwrap();
    for (name, content) in files {
        let path = m.mountpoint().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    m.commit().unwrap()
}

fn is_mounted(path: &Path) -> bool {
    mounts_under(Path::new("/"))
        .unwrap()
        .iter()
        .any(|m| m == path)
}

#[test]
fn prepare_commit_view_and_whiteouts_through_real_overlay() {
    let (_tmp, _db, snap) = setup();
    let base = layer_with(&snap, &[("keep", "k"), ("gone", "g"), ("dir/old", "o")]);

    let m = snap.prepare(std::slice::from_ref(&base)).unwrap();
    assert!(is_mounted(m.mountpoint()));
    assert_eq!(fs::read(m.mountpoint().join("keep")).unwrap(), b"k");
    fs::remove_file(m.mountpoint().join("gone")).unwrap();
    fs::remove_dir_all(m.mountpoint().join("dir")).unwrap();
    fs::create_dir(m.mountpoint().join("dir")).unwrap();
    fs::write(m.mountpoint().join("dir/new"), b"n").unwrap();
    let mountpoint = m.mountpoint().to_path_buf();
    let top = m.commit().unwrap();
    assert!(!is_mounted(&mountpoint));

    let mut tar_bytes = Vec::new();
    export_layer(&snap.layer_dir(&top), &mut tar_bytes, Compression::None).unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    // Entries follow the on-disk names in byte order (`dir` < `gone`), whiteouts included.
    assert_eq!(names, ["dir/", "dir/.wh..wh..opq", "dir/new", ".wh.gone"]);

    let imported = snap.import_layer(tar_bytes.as_slice()).unwrap();
    let via_commit = snap.view(&[base.clone(), top]).unwrap();
    let via_import = snap.view(&[base, imported]).unwrap();
    let expected = tree(via_commit.path());
    assert_eq!(
        expected
            .keys()
            .map(|p| p.to_str().unwrap())
            .collect::<Vec<_>>(),
        ["dir", "dir/new", "keep"]
    );
    assert_eq!(tree(via_import.path()), expected);
    assert!(
        fs::write(via_import.path().join("x"), b"").is_err(),
        "views are read-only"
    );
}

#[test]
fn dropping_a_mutable_unmounts_and_discards_it() {
    let (_tmp, _db, snap) = setup();
    let base = layer_with(&snap, &[("a", "1")]);
    let m = snap.prepare(&[base]).unwrap();
    fs::write(m.mountpoint().join("b"), b"2").unwrap();
    let (mnt, upper) = (m.mountpoint().to_path_buf(), m.upper().to_path_buf());
    drop(m);
    assert!(!is_mounted(&mnt));
    assert!(!upper.exists());
    assert_eq!(snap.list().unwrap().len(), 1);
}

#[test]
fn two_hundred_layer_chain_mounts() {
    let (_tmp, _db, snap) = setup();
    let chain: Vec<LayerId> = (0..200)
        .map(|i| layer_with(&snap, &[(&format!("f{i}"), "x"), ("top", &i.to_string())]))
        .collect();
    let m = snap.prepare(&chain).unwrap();
    assert_eq!(
        fs::read_to_string(m.mountpoint().join("top")).unwrap(),
        "199"
    );
    assert!(m.mountpoint().join("f0").exists() && m.mountpoint().join("f199").exists());
    assert_eq!(fs::read_dir(m.mountpoint()).unwrap().count(), 201);
    let info = snap.info(&m.commit().unwrap()).unwrap();
    assert_eq!(info.parents.len(), 200);
}

#[test]
fn chains_deeper_than_the_limit_are_flattened_correctly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::open(tmp.path().join("db")).unwrap();
    let snap =
        Snapshotter::open_with(&tmp.path().join("snap"), &db, Arc::new(RealKernel), 8).unwrap();
    let mut chain = vec![layer_with(
        &snap,
        &[("d/keep", "k"), ("d/old", "o"), ("file", "f")],
    )];
    for i in 0..30 {
        let m = snap.prepare(&chain).unwrap();
        fs::write(m.mountpoint().join(format!("n{i}")), i.to_string()).unwrap();
        if i > 0 {
            fs::remove_file(m.mountpoint().join(format!("n{}", i - 1))).unwrap();
        }
        if i == 5 {
            fs::remove_dir_all(m.mountpoint().join("d")).unwrap();
            fs::create_dir(m.mountpoint().join("d")).unwrap();
            fs::write(m.mountpoint().join("d/fresh"), b"!").unwrap();
        }
        chain.push(m.commit().unwrap());
    }
    let view = snap.view(&chain).unwrap();
    let names: Vec<String> = tree(view.path())
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["d", "d/fresh", "file", "n29"]);
    assert!(snap
        .list()
        .unwrap()
        .iter()
        .any(|id| snap.info(id).unwrap().flattened));
}

#[test]
fn reopening_after_a_crash_removes_half_made_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("snap");
    let db = sled::open(tmp.path().join("db")).unwrap();
    let snap = Snapshotter::open(&root, &db).unwrap();
    let base = layer_with(&snap, &[("a", "1")]);
    let m = snap.prepare(std::slice::from_ref(&base)).unwrap();
    fs::write(m.mountpoint().join("half"), b"written").unwrap();
    std::mem::forget(m); // as if killed: mount and temp dir stay behind
    fs::create_dir(root.join("l").join("zz")).unwrap(); // renamed but never recorded
    assert!(!mounts_under(&root).unwrap().is_empty());
    drop(snap);

    let snap = Snapshotter::open(&root, &db).unwrap();
    assert!(mounts_under(&root).unwrap().is_empty());
    assert_eq!(fs::read_dir(root.join("t")).unwrap().count(), 0);
    assert!(!root.join("l/zz").exists());
    assert_eq!(snap.list().unwrap(), vec![base.clone()]);
    assert_eq!(fs::read(snap.layer_dir(&base).join("a")).unwrap(), b"1");
}

#[test]
fn unknown_layers_and_removal() {
    let (_tmp, _db, snap) = setup();
    let err = snap.prepare(&["nope".parse().unwrap()]).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let id = layer_with(&snap, &[("a", "1")]);
    snap.remove(&id).unwrap();
    assert!(!snap.layer_dir(&id).exists());
    assert!(snap.view(&[id]).unwrap_err().is_not_found());
    assert!("../x".parse::<LayerId>().is_err());
}

/// The real kernel, except that overlay mounts with more than `max` lowers fail with `errno`:
/// E2BIG is an over-long mount(2) option string, as on kernels without `lowerdir+`; ENODEV
/// with `max` 0 is a kernel without overlayfs.
struct RefusingKernel {
    max: usize,
    errno: i32,
    refused: std::sync::atomic::AtomicUsize,
}

impl Kernel for RefusingKernel {
    fn mknod(
        &self,
        path: &Path,
        kind: crate::sys::NodeKind,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> std::io::Result<()> {
        RealKernel.mknod(path, kind, perm, major, minor)
    }
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        RealKernel.lchown(path, uid, gid)
    }
    fn set_xattr(&self, path: &Path, name: &[u8], value: &[u8]) -> std::io::Result<()> {
        RealKernel.set_xattr(path, name, value)
    }
    fn xattrs(&self, path: &Path) -> std::io::Result<Vec<(std::ffi::OsString, Vec<u8>)>> {
        RealKernel.xattrs(path)
    }
    fn set_mtime(&self, path: &Path, secs: i64, nanos: u32) -> std::io::Result<()> {
        RealKernel.set_mtime(path, secs, nanos)
    }
    fn mount_overlay(&self, m: &OverlayMount) -> std::io::Result<()> {
        if m.lowers.len() > self.max {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(std::io::Error::from_raw_os_error(self.errno));
        }
        RealKernel.mount_overlay(m)
    }
    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        RealKernel.unmount(target)
    }
}

#[test]
fn a_mount_refused_as_too_long_is_retried_with_a_flattened_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::open(tmp.path().join("db")).unwrap();
    let kernel = Arc::new(RefusingKernel {
        max: 5,
        errno: libc::E2BIG,
        refused: Default::default(),
    });
    let snap = Snapshotter::open_with(
        &tmp.path().join("snap"),
        &db,
        kernel.clone(),
        DEFAULT_MAX_LOWERS,
    )
    .unwrap();
    let chain: Vec<LayerId> = (0..12)
        .map(|i| layer_with(&snap, &[(&format!("f{i}"), "x"), ("top", &i.to_string())]))
        .collect();
    let view = snap.view(&chain).unwrap();
    assert_eq!(fs::read_to_string(view.path().join("top")).unwrap(), "11");
    assert_eq!(fs::read_dir(view.path()).unwrap().count(), 13);
    assert!(
        kernel.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the first attempt was refused"
    );
}

#[test]
fn a_kernel_without_overlayfs_is_refused_at_open_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::open(tmp.path().join("db")).unwrap();
    let kernel = Arc::new(RefusingKernel {
        max: 0,
        errno: libc::ENODEV,
        refused: Default::default(),
    });
    let root = tmp.path().join("snap");
    let err = Snapshotter::open_with(&root, &db, kernel, DEFAULT_MAX_LOWERS).unwrap_err();
    assert!(matches!(err, crate::Error::OverlayUnusable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&root.display().to_string()), "{message}");
    assert!(message.contains("No such device"), "{message}");
    // Nothing half-made is left behind: the test mount's scratch directory is gone.
    let leftovers: Vec<_> = fs::read_dir(root.join("t")).map(|d| d.count()).into_iter().collect();
    assert!(leftovers.iter().all(|n| *n == 0), "{leftovers:?}");
}
