//! Layer tarballs ⇄ overlay "upper" directories.
//!
//! On disk a layer is an overlayfs upper directory: a deleted path is a 0/0 character device and
//! a directory that hides everything below it carries `trusted.overlay.opaque=y`. In a tarball the
//! same facts are OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`). [`export_layer`] converts the first
//! into the second with deterministic bytes (sorted entries, PAX for long names, exact modes,
//! owners, mtimes, xattrs and hardlinks); [`apply_layer`] converts back and refuses any entry
//! that would land outside the layer directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::content::{ContentStore, Digest};
use crate::error::{Error, Result};
use crate::sys::{Kernel, NodeKind, RealKernel};

/// Prefix OCI uses for whiteout file names.
const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI marker that makes its directory opaque.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr marking an opaque directory.
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (the default, readable by every registry and runtime).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// An uncompressed tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer blob with this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    /// Guesses the compression of a stream from its first bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Digests of an exported layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (the image config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// sha256 of the blob as written (compressed).
    pub digest: Digest,
    /// Size in bytes of the blob as written.
    pub size: u64,
}

/// What [`apply_layer`] found out about the stream it unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLayer {
    /// sha256 of the uncompressed tar, to check against the image config.
    pub diff_id: Digest,
    /// The compression detected from the stream's magic bytes.
    pub compression: Compression,
}

/// Writes the overlay upper directory `dir` as an OCI layer tarball to `w`.
pub fn export_layer(dir: &Path, w: impl Write, compression: Compression) -> Result<LayerDigests> {
    export_layer_with(dir, w, compression, &RealKernel)
}

/// Exports `dir` as a layer blob straight into `store`; the blob is stored under `digest`.
pub fn export_layer_to_store(
    dir: &Path,
    store: &ContentStore,
    compression: Compression,
) -> Result<LayerDigests> {
    let mut blob = store.writer()?;
    let digests = export_layer(dir, &mut blob, compression)?;
    let (digest, size) = blob.commit(Some(&digests.digest))?;
    Ok(LayerDigests {
        digest,
        size,
        ..digests
    })
}

/// [`export_layer`] with an explicit kernel seam (for xattr reads).
pub fn export_layer_with(
    dir: &Path,
    w: impl Write,
    compression: Compression,
    kernel: &dyn Kernel,
) -> Result<LayerDigests> {
    let compressed = HashWriter::new(w);
    let encoder = Encoder::new(compressed, compression).map_err(tar_err(dir))?;
    let mut builder = tar::Builder::new(HashWriter::new(BufWriter::new(encoder)));
    let mut exporter = Exporter {
        kernel,
        builder: &mut builder,
        links: HashMap::new(),
    };
    exporter.walk(dir, b"")?;
    let plain = builder.into_inner().map_err(tar_err(dir))?;
    let diff_id = plain.digest();
    let encoder = plain
        .inner
        .into_inner()
        .map_err(|e| tar_err(dir)(e.into_error()))?;
    let compressed = encoder.finish().map_err(tar_err(dir))?;
    Ok(LayerDigests {
        diff_id,
        digest: compressed.digest(),
        size: compressed.count,
    })
}

/// The numeric fields of a tar header (uid, gid, mode, mtime), read as Go's archive/tar and
/// GNU tar read them: a field left empty (all NUL or space bytes, as some writers leave uid and
/// gid) is 0, not an error. A field with other non-octal bytes is still an error.
pub struct HeaderNumbers {
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Permission bits and the set-id/sticky bits.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
}

impl HeaderNumbers {
    /// Reads the fields of `header`.
    pub fn of(header: &tar::Header) -> std::io::Result<HeaderNumbers> {
        let raw = header.as_old();
        Ok(HeaderNumbers {
            uid: empty_is_zero(header.uid(), &raw.uid)?,
            gid: empty_is_zero(header.gid(), &raw.gid)?,
            mode: empty_is_zero(header.mode().map(u64::from), &raw.mode)? as u32,
            mtime: empty_is_zero(header.mtime(), &raw.mtime)?,
        })
    }
}

fn empty_is_zero(parsed: std::io::Result<u64>, raw: &[u8]) -> std::io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

/// Unpacks a layer tarball (gzip, zstd or plain, detected by magic) into the layer dir `dir`,
/// turning OCI whiteouts into overlay whiteouts; refuses entries escaping `dir`.
pub fn apply_layer(r: impl Read, dir: &Path) -> Result<AppliedLayer> {
    apply_layer_with(r, dir, &RealKernel)
}

/// [`apply_layer`] with an explicit kernel seam.
pub fn apply_layer_with(mut r: impl Read, dir: &Path, kernel: &dyn Kernel) -> Result<AppliedLayer> {
    let mut head = [0u8; 4];
    let n = read_up_to(&mut r, &mut head).map_err(tar_err(dir))?;
    let compression = Compression::detect(&head[..n]);
    let stream = Cursor::new(head[..n].to_vec()).chain(r);
    let decoded: Box<dyn Read + '_> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(stream).map_err(tar_err(dir))?)
        }
        Compression::None => Box::new(stream),
    };
    let mut hashed = HashReader {
        inner: decoded,
        hasher: Sha256::new(),
    };
    let mut applier = Applier {
        root: dir,
        kernel,
        dir_times: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(tar_err(dir))? {
            applier.apply(entry.map_err(tar_err(dir))?)?;
        }
    }
    applier.finish()?;
    io::copy(&mut hashed, &mut io::sink()).map_err(tar_err(dir))?;
    Ok(AppliedLayer {
        diff_id: Digest::from_hasher(hashed.hasher),
        compression,
    })
}

/// Walks an upper dir and appends tar entries in sorted, deterministic order.
struct Exporter<'a, W: Write> {
    kernel: &'a dyn Kernel,
    builder: &'a mut tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written → their tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Exporter<'_, W> {
    fn walk(&mut self, dir: &Path, prefix: &[u8]) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(Error::io("read dir", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(Error::io("read dir", dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let mut tar_name = prefix.to_vec();
            tar_name.extend_from_slice(name.as_bytes());
            self.entry(&path, &name, prefix, tar_name)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, name: &OsStr, prefix: &[u8], tar_name: Vec<u8>) -> Result<()> {
        let meta = fs::symlink_metadata(path).map_err(Error::io("stat", path))?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut wh = prefix.to_vec();
            wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            wh.extend_from_slice(name.as_bytes());
            return self.append_marker(path, &wh, &meta);
        }
        let xattrs = self
            .kernel
            .xattrs(path)
            .map_err(Error::io("list xattrs of", path))?;
        let mut header = header_from(&meta);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        for (key, value) in &xattrs {
            let key = key.as_bytes();
            if !key.starts_with(b"trusted.overlay.") && key != b"security.selinux" {
                if let Ok(key) = std::str::from_utf8(key) {
                    pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
                }
            }
        }
        if ft.is_dir() {
            let mut dir_name = tar_name.clone();
            dir_name.push(b'/');
            header.set_entry_type(tar::EntryType::Directory);
            self.append(path, header, &dir_name, None, pax, io::empty())?;
            let opaque = xattrs
                .iter()
                .any(|(k, v)| k.as_bytes() == OPAQUE_XATTR && v.as_slice() == b"y");
            if opaque {
                let mut marker = dir_name.clone();
                marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
                self.append_marker(path, &marker, &meta)?;
            }
            return self.walk(path, &dir_name);
        }
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())).cloned() {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                return self.append(path, header, &tar_name, Some(&first), pax, io::empty());
            }
            self.links
                .insert((meta.dev(), meta.ino()), tar_name.clone());
        }
        if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(path).map_err(Error::io("open", path))?;
            self.append(path, header, &tar_name, None, pax, file.take(meta.len()))
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(Error::io("read link", path))?;
            header.set_entry_type(tar::EntryType::Symlink);
            self.append(
                path,
                header,
                &tar_name,
                Some(target.as_os_str().as_bytes()),
                pax,
                io::empty(),
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            header.set_entry_type(kind);
            let (major, minor) = (
                rustix::fs::major(meta.rdev()),
                rustix::fs::minor(meta.rdev()),
            );
            header.set_device_major(major).map_err(tar_err(path))?;
            header.set_device_minor(minor).map_err(tar_err(path))?;
            self.append(path, header, &tar_name, None, pax, io::empty())
        } else if ft.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
            self.append(path, header, &tar_name, None, pax, io::empty())
        } else {
            tracing::warn!(path = %path.display(), "skipping socket in layer export");
            Ok(())
        }
    }

    /// Appends an empty regular file used as an OCI whiteout or opaque marker.
    fn append_marker(&mut self, path: &Path, name: &[u8], meta: &fs::Metadata) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        header.set_mtime(meta.mtime().max(0) as u64);
        self.append(path, header, name, None, Vec::new(), io::empty())
    }

    fn append(
        &mut self,
        path: &Path,
        mut header: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        mut pax: Vec<(String, Vec<u8>)>,
        data: impl Read,
    ) -> Result<()> {
        set_name(&mut header, name, &mut pax);
        if let Some(link) = link {
            if link.len() <= 100 {
                put_bytes(&mut header.as_old_mut().linkname, link);
            } else {
                pax.push(("linkpath".to_string(), link.to_vec()));
                put_bytes(&mut header.as_old_mut().linkname, &link[..100]);
            }
        }
        if !pax.is_empty() {
            let records = pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.builder
                .append_pax_extensions(records)
                .map_err(tar_err(path))?;
        }
        header.set_cksum();
        self.builder.append(&header, data).map_err(tar_err(path))
    }
}

/// A ustar header carrying the mode, owner and mtime of `meta`.
fn header_from(meta: &fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_size(0);
    header
}

/// Stores `name` in the ustar name/prefix fields, or in a PAX `path` record when it does not fit.
fn set_name(header: &mut tar::Header, name: &[u8], pax: &mut Vec<(String, Vec<u8>)>) {
    let Some(ustar) = header.as_ustar_mut() else {
        return;
    };
    if name.len() <= 100 {
        put_bytes(&mut ustar.name, name);
        return;
    }
    let body = name.strip_suffix(b"/").unwrap_or(name);
    let split = body
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && name.len() - i - 1 <= 100);
    match split {
        Some(i) => {
            put_bytes(&mut ustar.prefix, &name[..i]);
            put_bytes(&mut ustar.name, &name[i + 1..]);
        }
        None => {
            pax.push(("path".to_string(), name.to_vec()));
            put_bytes(&mut ustar.name, &name[..100]);
        }
    }
}

/// Copies `bytes` into a NUL-padded fixed-size header field.
fn put_bytes(field: &mut [u8], bytes: &[u8]) {
    field.fill(0);
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

/// Unpacks tar entries into a layer dir, enforcing that nothing escapes it.
struct Applier<'a> {
    root: &'a Path,
    kernel: &'a dyn Kernel,
    /// Directory mtimes, applied last because creating children changes them.
    dir_times: Vec<(PathBuf, i64, u32)>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = PathBuf::from(OsStr::from_bytes(&raw));
        let rel = safe_relative(&raw, &shown)?;
        let name = rel
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        if name == OPAQUE_MARKER.as_bytes() {
            return self.mark_opaque(&rel, &shown);
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&rel, hidden, &shown);
        }
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            return match kind {
                tar::EntryType::Directory => {
                    self.set_metadata(&mut entry, self.root.to_path_buf(), true, &shown)
                }
                _ => Err(unsafe_entry(
                    &shown,
                    "non-directory entry for the layer root",
                )),
            };
        }
        let target = self.prepare(&rel, kind == tar::EntryType::Directory, &shown)?;
        match kind {
            tar::EntryType::Directory => {
                if !target.is_dir() {
                    fs::create_dir(&target).map_err(Error::io("create dir", &target))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(Error::io("create", &target))?;
                io::copy(&mut entry, &mut file).map_err(tar_err(&shown))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&shown, "symlink without target"))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .map_err(Error::io("symlink", &target))?;
            }
            tar::EntryType::Link => return self.hardlink(&entry, &target, &shown),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let node = match kind {
                    tar::EntryType::Char => NodeKind::Char,
                    tar::EntryType::Block => NodeKind::Block,
                    _ => NodeKind::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let mode = HeaderNumbers::of(header).map_err(tar_err(&shown))?.mode;
                self.kernel
                    .mknod(&target, node, mode, major, minor)
                    .map_err(Error::io("mknod", &target))?;
            }
            other => {
                tracing::debug!(entry = %shown.display(), kind = ?other, "skipping tar entry type");
                return Ok(());
            }
        }
        self.set_metadata(
            &mut entry,
            target,
            kind == tar::EntryType::Directory,
            &shown,
        )
    }

    /// Ensures the parents of `rel` are real directories inside the root and clears the way for a
    /// new entry (keeping an existing directory when a directory is being written).
    fn prepare(&self, rel: &Path, is_dir: bool, shown: &Path) -> Result<PathBuf> {
        let parent = self.ensure_parents(rel, shown, true)?;
        let target = parent.join(rel.file_name().unwrap_or_default());
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() && is_dir => {}
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&target).map_err(Error::io("remove", &target))?
            }
            Ok(_) => fs::remove_file(&target).map_err(Error::io("remove", &target))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    op: "stat",
                    path: target,
                    source: e,
                })
            }
        }
        Ok(target)
    }

    /// Walks the parent components of `rel`, refusing symlinks and non-directories; creates
    /// missing ones when `create`. Returns the absolute parent directory.
    fn ensure_parents(&self, rel: &Path, shown: &Path, create: bool) -> Result<PathBuf> {
        let mut dir = self.root.to_path_buf();
        let parent = rel.parent().unwrap_or(Path::new(""));
        for comp in parent.components() {
            dir.push(comp);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(shown, "path goes through a symlink"))
                }
                Ok(m) if !m.is_dir() => {
                    return Err(unsafe_entry(shown, "a parent is not a directory"))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&dir).map_err(Error::io("create dir", &dir))?;
                    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                        .map_err(Error::io("chmod", &dir))?;
                }
                Err(e) => {
                    return Err(Error::Io {
                        op: "stat",
                        path: dir,
                        source: e,
                    })
                }
            }
        }
        Ok(dir)
    }

    fn hardlink<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        target: &Path,
        shown: &Path,
    ) -> Result<()> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| unsafe_entry(shown, "hardlink without target"))?;
        let link_shown = PathBuf::from(OsStr::from_bytes(&raw));
        let rel = safe_relative(&raw, &link_shown)
            .map_err(|_| unsafe_entry(shown, "hardlink target escapes the layer"))?;
        if rel.as_os_str().is_empty() {
            return Err(unsafe_entry(shown, "hardlink to the layer root"));
        }
        let dir = self.ensure_parents(&rel, shown, false)?;
        let source = dir.join(rel.file_name().unwrap_or_default());
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_dir() => Err(unsafe_entry(shown, "hardlink to a directory")),
            Ok(_) => fs::hard_link(&source, target).map_err(Error::io("hardlink", target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(unsafe_entry(shown, "hardlink target is not in the layer"))
            }
            Err(e) => Err(Error::Io {
                op: "stat",
                path: source,
                source: e,
            }),
        }
    }

    fn whiteout(&self, rel: &Path, hidden: &[u8], shown: &Path) -> Result<()> {
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(()); // other `.wh..wh.` metadata (aufs) carries nothing for overlay
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(unsafe_entry(shown, "whiteout of an invalid name"));
        }
        let victim = rel.with_file_name(OsStr::from_bytes(hidden));
        let target = self.prepare(&victim, false, shown)?;
        self.kernel
            .mknod(&target, NodeKind::Char, 0, 0, 0)
            .map_err(Error::io("mknod whiteout", &target))
    }

    fn mark_opaque(&self, rel: &Path, shown: &Path) -> Result<()> {
        let dir = self.ensure_parents(rel, shown, true)?;
        if dir == self.root {
            return Ok(());
        }
        self.kernel
            .set_xattr(&dir, OPAQUE_XATTR, b"y")
            .map_err(Error::io("set opaque xattr on", &dir))
    }

    fn set_metadata<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: PathBuf,
        is_dir: bool,
        shown: &Path,
    ) -> Result<()> {
        let header = entry.header();
        let is_symlink = header.entry_type() == tar::EntryType::Symlink;
        let numbers = HeaderNumbers::of(header).map_err(tar_err(shown))?;
        let mode = numbers.mode & 0o7777;
        let mut uid = numbers.uid;
        let mut gid = numbers.gid;
        let mut mtime = (numbers.mtime as i64, 0u32);
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(tar_err(shown))? {
            for ext in exts {
                let ext = ext.map_err(tar_err(shown))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => uid = parse_num(value).unwrap_or(uid),
                    "gid" => gid = parse_num(value).unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(value).unwrap_or(mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            if !name.starts_with("trusted.overlay.") {
                                xattrs.push((name.to_string(), value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let (uid, gid) = (u32::try_from(uid), u32::try_from(gid));
        let (Ok(uid), Ok(gid)) = (uid, gid) else {
            return Err(unsafe_entry(shown, "uid/gid out of range"));
        };
        self.kernel
            .lchown(&target, uid, gid)
            .map_err(Error::io("chown", &target))?;
        if !is_symlink {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(Error::io("chmod", &target))?;
        }
        for (name, value) in xattrs {
            self.kernel
                .set_xattr(&target, name.as_bytes(), &value)
                .map_err(Error::io("set xattr on", &target))?;
        }
        if is_dir {
            self.dir_times.push((target, mtime.0, mtime.1));
            Ok(())
        } else {
            self.kernel
                .set_mtime(&target, mtime.0, mtime.1)
                .map_err(Error::io("set mtime of", &target))
        }
    }

    fn finish(self) -> Result<()> {
        for (dir, secs, nanos) in self.dir_times.iter().rev() {
            self.kernel
                .set_mtime(dir, *secs, *nanos)
                .map_err(Error::io("set mtime of", dir))?;
        }
        Ok(())
    }
}

/// Normalises a tar path to a relative path inside the layer, refusing absolute paths and `..`.
fn safe_relative(raw: &[u8], shown: &Path) -> Result<PathBuf> {
    if raw.starts_with(b"/") {
        return Err(unsafe_entry(shown, "absolute path"));
    }
    let mut rel = PathBuf::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(unsafe_entry(shown, "parent directory component")),
            c => rel.push(OsStr::from_bytes(c)),
        }
    }
    Ok(rel)
}

fn unsafe_entry(shown: &Path, reason: &'static str) -> Error {
    Error::UnsafeEntry {
        path: shown.to_path_buf(),
        reason,
    }
}

fn tar_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Tar {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_num(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Parses a PAX time like `1700000000.123456789` into seconds and nanoseconds.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some((secs, nanos))
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A writer that hashes and counts what passes through it.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through it.
struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The compressor for one of the [`Compression`] kinds.
enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    fn new(w: W, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
            Compression::None => Encoder::None(w),
        })
    }

    fn finish(self) -> io::Result<W> {
        let mut w = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Zstd(e) => e.finish()?,
            Encoder::None(w) => w,
        };
        w.flush()?;
        Ok(w)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests;
