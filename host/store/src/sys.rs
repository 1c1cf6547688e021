//! The kernel seam: every privileged or kernel-specific operation hoist-store performs (mknod,
//! chown, xattrs, timestamps, overlay mounts) goes through [`Kernel`], so layer and snapshot
//! logic can be unit-tested with a fake while [`RealKernel`] is exercised by the root tests.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timestamps, XattrFlags, CWD};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

/// Kind of special file [`Kernel::mknod`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device (overlay whiteouts are character devices 0/0).
    Char,
    /// A block device.
    Block,
    /// A named pipe.
    Fifo,
}

/// An overlayfs mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    /// Lower directories, topmost first (overlayfs order).
    pub lowers: Vec<PathBuf>,
    /// Upper and work directories; `None` makes a read-only overlay.
    pub upper: Option<(PathBuf, PathBuf)>,
    /// Where to mount.
    pub target: PathBuf,
}

/// Kernel operations used by layer apply/export and the snapshotter.
pub trait Kernel: Send + Sync {
    /// Creates a device node or fifo at `path` with permission bits `perm`.
    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()>;
    /// Changes the owner of `path` without following a final symlink.
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// Sets an extended attribute on `path` without following a final symlink.
    fn set_xattr(&self, path: &Path, name: &[u8], value: &[u8]) -> io::Result<()>;
    /// Lists `(name, value)` extended attributes of `path` without following a final symlink.
    fn xattrs(&self, path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>>;
    /// Sets access and modification time (seconds, nanoseconds) without following a symlink.
    fn set_mtime(&self, path: &Path, secs: i64, nanos: u32) -> io::Result<()>;
    /// Mounts an overlay filesystem.
    fn mount_overlay(&self, m: &OverlayMount) -> io::Result<()>;
    /// Detaches the mount at `target`.
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// The real Linux implementation of [`Kernel`] (safe rustix wrappers, no `unsafe`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealKernel;

impl Kernel for RealKernel {
    fn mknod(
        &self,
        path: &Path,
        kind: NodeKind,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        let ft = match kind {
            NodeKind::Char => FileType::CharacterDevice,
            NodeKind::Block => FileType::BlockDevice,
            NodeKind::Fifo => FileType::Fifo,
        };
        let dev = rustix::fs::makedev(major, minor);
        rustix::fs::mknodat(CWD, path, ft, Mode::from_raw_mode(perm & 0o7777), dev)?;
        Ok(())
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let uid = rustix::fs::Uid::from_raw(uid);
        let gid = rustix::fs::Gid::from_raw(gid);
        rustix::fs::chownat(CWD, path, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    fn set_xattr(&self, path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
        rustix::fs::lsetxattr(
            path,
            std::ffi::OsStr::from_bytes(name),
            value,
            XattrFlags::empty(),
        )?;
        Ok(())
    }

    fn xattrs(&self, path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
        let mut names = Vec::with_capacity(256);
        loop {
            names.clear();
            match rustix::fs::llistxattr(path, rustix::buffer::spare_capacity(&mut names)) {
                Ok(_) => break,
                Err(rustix::io::Errno::RANGE) => names.reserve(names.capacity() * 2),
                Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            }
        }
        let mut out = Vec::new();
        for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = std::ffi::OsStr::from_bytes(name);
            let mut value = Vec::with_capacity(128);
            loop {
                value.clear();
                match rustix::fs::lgetxattr(path, name, rustix::buffer::spare_capacity(&mut value))
                {
                    Ok(_) => break,
                    Err(rustix::io::Errno::RANGE) => value.reserve(value.capacity() * 2),
                    Err(e) => return Err(e.into()),
                }
            }
            out.push((name.to_os_string(), value));
        }
        out.sort();
        Ok(out)
    }

    fn set_mtime(&self, path: &Path, secs: i64, nanos: u32) -> io::Result<()> {
        let ts = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: nanos.into(),
        };
        let times = Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    fn mount_overlay(&self, m: &OverlayMount) -> io::Result<()> {
        match mount_overlay_fsopen(m) {
            // No new mount API, or no `lowerdir+` (kernel < 6.8): fall back to mount(2).
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) => {
                mount_overlay_legacy(m)
            }
            other => other,
        }
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        rustix::mount::unmount(target, UnmountFlags::DETACH)?;
        Ok(())
    }
}

/// Mounts with fsopen/fsconfig, passing each lower dir as its own `lowerdir+` value so the
/// page-sized mount option limit does not bound the chain depth.
fn mount_overlay_fsopen(m: &OverlayMount) -> io::Result<()> {
    use rustix::mount::{fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount};
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "source", "hoist")?;
    for lower in &m.lowers {
        fsconfig_set_string(&fs, "lowerdir+", lower.as_path())?;
    }
    if let Some((upper, work)) = &m.upper {
        fsconfig_set_string(&fs, "upperdir", upper.as_path())?;
        fsconfig_set_string(&fs, "workdir", work.as_path())?;
    }
    for (key, value) in PORTABLE_OPTIONS {
        fsconfig_set_string(&fs, key, value)?;
    }
    fsconfig_create(&fs)?;
    let attrs = if m.upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        &mnt,
        "",
        CWD,
        m.target.as_path(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// Mounts with mount(2) and a single option string (bounded by the page size).
fn mount_overlay_legacy(m: &OverlayMount) -> io::Result<()> {
    let data = legacy_options(m);
    // mount(2) copies at most one page of options: a longer string would be silently cut,
    // possibly into the path of a different layer, so refuse it and let the caller flatten.
    if data.len() >= 4096 {
        return Err(io::Error::from_raw_os_error(libc::E2BIG));
    }
    let separators_in_paths = m
        .lowers
        .iter()
        .chain(m.upper.iter().flat_map(|(u, w)| [u, w]))
        .any(|p| {
            p.as_os_str()
                .as_bytes()
                .iter()
                .any(|b| matches!(b, b',' | b':'))
        });
    if separators_in_paths {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let data =
        std::ffi::CString::new(data).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = if m.upper.is_none() {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    rustix::mount::mount(
        "hoist",
        m.target.as_path(),
        "overlay",
        flags,
        Some(data.as_c_str()),
    )?;
    Ok(())
}

/// Options that keep upper dirs in a plain, portable format: no redirect or metacopy xattrs
/// (a renamed lower directory is copied up in full), no inode index.
const PORTABLE_OPTIONS: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("index", "off"),
    ("metacopy", "off"),
];

/// The mount(2) option string for `m`.
pub(crate) fn legacy_options(m: &OverlayMount) -> Vec<u8> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in m.lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend_from_slice(lower.as_os_str().as_bytes());
    }
    if let Some((upper, work)) = &m.upper {
        data.extend_from_slice(b",upperdir=");
        data.extend_from_slice(upper.as_os_str().as_bytes());
        data.extend_from_slice(b",workdir=");
        data.extend_from_slice(work.as_os_str().as_bytes());
    }
    for (key, value) in PORTABLE_OPTIONS {
        data.extend_from_slice(format!(",{key}={value}").as_bytes());
    }
    data
}

/// Mountpoints under `root` according to /proc/self/mountinfo, deepest first.
pub(crate) fn mounts_under(root: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read("/proc/self/mountinfo")?;
    let mut out: Vec<PathBuf> = info
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|p| PathBuf::from(OsString::from_vec(unescape_mountinfo(p))))
        .filter(|p| p.starts_with(root) && p != root)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    Ok(out)
}

/// Decodes mountinfo's octal escapes (`\040` for space, ...).
fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_options_order_and_portability() {
        let m = OverlayMount {
            lowers: vec!["/l/2".into(), "/l/1".into()],
            upper: Some(("/t/u".into(), "/t/w".into())),
            target: "/t/m".into(),
        };
        let s = String::from_utf8(legacy_options(&m)).unwrap();
        assert_eq!(
            s,
            "lowerdir=/l/2:/l/1,upperdir=/t/u,workdir=/t/w,redirect_dir=off,index=off,metacopy=off"
        );
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo(br"/a\040b\134c"), b"/a b\\c");
        assert_eq!(unescape_mountinfo(br"/x\0"), b"/x\\0");
    }
}
