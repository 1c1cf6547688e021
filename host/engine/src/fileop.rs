//! File ops: the copy, mkdir, mkfile, rm and symlink actions of an LLB file op, applied in order
//! to a read-write root filesystem with the semantics Dockerfile `COPY`/`ADD` users expect from
//! BuildKit.
//!
//! This module owns those semantics (wildcards, "copy into" when the destination ends in `/` or is
//! a directory, directory contents, owners from the destination's `/etc/passwd`, `--chmod`, tar
//! unpacking for `ADD`). Every destination path is resolved with
//! [`resolve_in_root`](crate::fsutil::resolve_in_root), so nothing is written outside the root even
//! through a symlink found in the image; copy sources are read-only directories handed in by the
//! caller and only read. It never mounts anything: the caller passes mounted directories.
//!
//! Defaults follow Docker: a copy with no owner makes everything `0:0`; a user without a group
//! takes the user's primary group (a numeric user, the same number); an existing destination
//! directory keeps its own mode and owner.

use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hoist_store::layer::HeaderNumbers;
use hoist_llb::{
    Chown, CopyAction, FileAction, MkdirAction, MkfileAction, OpRef, OwnerId, RmAction,
    SymlinkAction,
};

use crate::context::{walk_selected, PatternFilter};
use crate::fsutil::{
    clear_for_file, container_path, create_new_file, glob_in_root, has_wildcard, lookup_group,
    lookup_user, make_node, mkdir_all_in_root, resolve_in_root, set_mode, set_owner, set_times,
    CopyOptions, FsError, ModeChange, TreeCopier,
};

/// A failed file action: which action, the path it concerned (a container path as written in
/// the action), and why.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {path}: {kind}")]
pub struct FileOpError {
    /// The action kind, as in a Dockerfile (`COPY`, `MKDIR`, `MKFILE`, `RM`, `SYMLINK`).
    pub action: &'static str,
    /// Index of the failed action in the op's action list.
    pub index: usize,
    /// The source or destination path concerned, as written in the action.
    pub path: String,
    /// Why it failed.
    #[source]
    pub kind: FileOpErrorKind,
}

/// Why a file action failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOpErrorKind {
    /// The path does not exist.
    #[error("no such file or directory")]
    NotFound,
    /// A wildcard matched nothing and empty matches were not allowed.
    #[error("no source files match the wildcard")]
    NoMatch,
    /// The copy source input has no filesystem (the caller could not provide it).
    #[error("copy source input {op}:{output} is not available")]
    MissingInput {
        /// Op index of the input.
        op: u32,
        /// Output index of the input.
        output: u32,
    },
    /// Something already exists where a new entry was to be made.
    #[error("file exists")]
    Exists,
    /// A directory was expected.
    #[error("not a directory")]
    NotADirectory,
    /// The root directory itself was to be removed.
    #[error("refusing to remove the root directory")]
    RemoveRoot,
    /// An archive entry would land outside the destination directory.
    #[error("archive entry {entry:?} points outside the destination")]
    ArchiveEscape {
        /// The entry's path (or link target) as stored in the archive.
        entry: String,
    },
    /// The archive could not be read.
    #[error("reading archive: {0}")]
    Archive(#[source] io::Error),
    /// A filesystem helper failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl FileOpError {
    /// An error of `action` on `path`.
    fn new(action: &'static str, path: &str, kind: impl Into<FileOpErrorKind>) -> Self {
        FileOpError {
            action,
            index: 0,
            path: path.to_owned(),
            kind: kind.into(),
        }
    }

    /// Whether the error is a missing path.
    pub fn is_not_found(&self) -> bool {
        match &self.kind {
            FileOpErrorKind::NotFound | FileOpErrorKind::NoMatch => true,
            FileOpErrorKind::Fs(e) => e.is_not_found(),
            _ => false,
        }
    }
}

/// Shorthand for the inner results of this module, before the action and path are attached.
type KindResult<T> = Result<T, FileOpErrorKind>;

/// Applies `actions` in order to the read-write root filesystem `root`; `src_root` gives the
/// read-only directory of a copy source input. Stops at the first failing action.
pub fn apply_actions(
    root: &Path,
    actions: &[FileAction],
    src_root: &dyn Fn(&OpRef) -> Option<PathBuf>,
) -> Result<(), FileOpError> {
    for (index, action) in actions.iter().enumerate() {
        apply_action(root, action, src_root).map_err(|e| FileOpError { index, ..e })?;
    }
    Ok(())
}

/// Applies one action.
fn apply_action(
    root: &Path,
    action: &FileAction,
    src_root: &dyn Fn(&OpRef) -> Option<PathBuf>,
) -> Result<(), FileOpError> {
    match action {
        FileAction::Copy(a) => copy(root, a, src_root),
        FileAction::Mkdir(a) => mkdir(root, a).map_err(|k| FileOpError::new("MKDIR", &a.path, k)),
        FileAction::Mkfile(a) => {
            mkfile(root, a).map_err(|k| FileOpError::new("MKFILE", &a.path, k))
        }
        FileAction::Rm(a) => rm(root, a).map_err(|k| FileOpError::new("RM", &a.path, k)),
        FileAction::Symlink(a) => {
            symlink(root, a).map_err(|k| FileOpError::new("SYMLINK", &a.path, k))
        }
    }
}

/// One resolved copy source.
struct Source {
    /// Last component of the path as written (the name used when copying "into" a directory);
    /// `None` for the source root.
    name: Option<String>,
    /// Host path inside the source root.
    host: PathBuf,
    /// Its metadata (symlink not followed).
    meta: Metadata,
}

/// Applies a copy action.
fn copy(
    root: &Path,
    a: &CopyAction,
    src_root: &dyn Fn(&OpRef) -> Option<PathBuf>,
) -> Result<(), FileOpError> {
    let at_src = |kind| FileOpError::new("COPY", &a.src_path, kind);
    let at_dest = |kind| FileOpError::new("COPY", &a.dest, kind);
    let input = FileOpErrorKind::MissingInput {
        op: a.src.op,
        output: a.src.output,
    };
    let src_dir = src_root(&a.src).ok_or_else(|| at_src(input))?;
    let sources = copy_sources(&src_dir, a).map_err(at_src)?;
    if sources.is_empty() {
        return Ok(());
    }
    let owner = resolve_owner(root, a.owner.as_ref()).map_err(|e| at_dest(e.into()))?;
    let mode = a
        .mode
        .as_deref()
        .map(ModeChange::parse)
        .transpose()
        .map_err(|e| at_src(e.into()))?;
    let filter = PatternFilter::new(&a.include_patterns, &a.exclude_patterns)
        .map_err(|e| at_src(e.into()))?;
    if let [single] = sources.as_slice() {
        if a.attempt_unpack && single.meta.is_file() {
            if let Some(compression) = sniff_archive(&single.host).map_err(at_src)? {
                let source = Unpack {
                    archive: &single.host,
                    compression,
                    owner: a.owner.as_ref().map(|_| owner),
                };
                return unpack(root, a, &source).map_err(at_dest);
            }
        }
    }
    let options = CopyOptions {
        dest_root: root,
        owner: Some(owner),
        mode: mode.as_ref(),
        timestamp: a.timestamp,
    };
    copy_into_dest(root, a, &sources, &filter, options).map_err(at_dest)
}

/// Resolves the source paths of a copy (expanding wildcards) in the source root `src_dir`.
fn copy_sources(src_dir: &Path, a: &CopyAction) -> KindResult<Vec<Source>> {
    let paths = if a.allow_wildcard && has_wildcard(&a.src_path) {
        let found = glob_in_root(src_dir, &a.src_path)?;
        if found.is_empty() && !a.allow_empty_wildcard {
            return Err(FileOpErrorKind::NoMatch);
        }
        found
    } else {
        vec![a.src_path.clone()]
    };
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let host = resolve_in_root(src_dir, &path, a.follow_symlinks)?;
        let meta = match fs::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Err(FileOpErrorKind::NotFound)
            }
            Err(e) => return Err(FsError::io(host, e).into()),
        };
        sources.push(Source {
            name: base_name(&path),
            host,
            meta,
        });
    }
    Ok(sources)
}

/// The last component of `path` after lexical cleaning (`.`/`..` applied), `None` for the root.
fn base_name(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.last().map(|s| (*s).to_owned())
}

/// Whether a destination as written names a directory to copy into (`dir/`, `dir/.`, `.`).
fn names_directory(dest: &str) -> bool {
    dest.ends_with('/') || dest.ends_with("/.") || dest == "." || dest.is_empty()
}

/// Copies the resolved `sources` to the destination of `a` inside `root`.
fn copy_into_dest(
    root: &Path,
    a: &CopyAction,
    sources: &[Source],
    filter: &PatternFilter,
    options: CopyOptions<'_>,
) -> KindResult<()> {
    let dest = resolve_in_root(root, &a.dest, true)?;
    let dest_is_dir = fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir());
    let into = sources.len() > 1 || names_directory(&a.dest) || dest_is_dir;
    let mut copier = TreeCopier::new(options);
    let mut created = Vec::new();
    for source in sources {
        let contents_only = source.meta.is_dir() && (a.dir_contents_only || source.name.is_none());
        let target = match (&source.name, into && !contents_only) {
            (Some(name), true) => {
                ensure_directory(root, a, &dest, options, &mut created)?;
                dest.join(name)
            }
            _ if contents_only && into => {
                ensure_directory(root, a, &dest, options, &mut created)?;
                dest.clone()
            }
            _ => {
                ensure_parent(root, a, &dest, options, &mut created)?;
                dest.clone()
            }
        };
        let written = copier.copy_entry(&source.host, &source.meta, &target)?;
        if source.meta.is_dir() {
            let entries = walk_selected(&source.host, filter)?;
            copier.copy_entries(&source.host, &entries, &written)?;
        }
    }
    copier.finish()?;
    stamp_all(&created, options.timestamp)?;
    Ok(())
}

/// Makes sure `dest` is a directory, creating it (and parents, mode 0755, with the copy's owner
/// and timestamp) when missing and the action allows it.
fn ensure_directory(
    root: &Path,
    a: &CopyAction,
    dest: &Path,
    options: CopyOptions<'_>,
    created: &mut Vec<PathBuf>,
) -> KindResult<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(FileOpErrorKind::NotADirectory),
        Err(_) if a.create_dest_path => {
            make_dirs(root, &container_path(root, dest), options, created)
        }
        Err(_) => Err(FileOpErrorKind::NotFound),
    }
}

/// Makes sure the parent of `dest` is a directory, creating it when missing and allowed.
fn ensure_parent(
    root: &Path,
    a: &CopyAction,
    dest: &Path,
    options: CopyOptions<'_>,
    created: &mut Vec<PathBuf>,
) -> KindResult<()> {
    match dest.parent() {
        Some(parent) if parent.starts_with(root) => {
            ensure_directory(root, a, parent, options, created)
        }
        _ => Ok(()),
    }
}

/// Creates directory `path` and its parents inside `root` with mode 0755 and the owner of
/// `options`, adding them to `created` (the caller stamps their times once it has written into
/// them).
fn make_dirs(
    root: &Path,
    path: &str,
    options: CopyOptions<'_>,
    created: &mut Vec<PathBuf>,
) -> KindResult<()> {
    let made = mkdir_all_in_root(root, path, 0o755)?;
    for dir in made.created {
        if let Some((uid, gid)) = options.owner {
            set_owner(&dir, uid, gid)?;
        }
        created.push(dir);
    }
    Ok(())
}

/// Sets the fixed `timestamp`, if any, on directories made for a copy, innermost first.
fn stamp_all(created: &[PathBuf], timestamp: Option<i64>) -> Result<(), FsError> {
    created
        .iter()
        .rev()
        .try_for_each(|dir| stamp(dir, timestamp))
}

/// Sets a fixed access and modification time on `path` when `timestamp` is given.
fn stamp(path: &Path, timestamp: Option<i64>) -> Result<(), FsError> {
    match timestamp {
        Some(t) => set_times(path, (t, 0), (t, 0)),
        None => Ok(()),
    }
}

/// The numeric owner for created entries: names resolved in `root`'s `/etc/passwd` and
/// `/etc/group`; no owner means `0:0`.
fn resolve_owner(root: &Path, owner: Option<&Chown>) -> Result<(u32, u32), FsError> {
    let Some(chown) = owner else {
        return Ok((0, 0));
    };
    let (uid, gid) = match &chown.user {
        None => (0, 0),
        Some(OwnerId::Id(id)) => (*id, *id),
        Some(OwnerId::Name(name)) => {
            let ids = lookup_user(root, name)?;
            (ids.uid, ids.gid)
        }
    };
    let gid = match &chown.group {
        None => gid,
        Some(OwnerId::Id(id)) => *id,
        Some(OwnerId::Name(name)) => lookup_group(root, name)?,
    };
    Ok((uid, gid))
}

/// Compression of a tar archive recognised for unpacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Whether the file at `path` is a tar archive (plain, gzip or zstd) and how it is compressed.
fn sniff_archive(path: &Path) -> KindResult<Option<Compression>> {
    let mut magic = [0u8; 4];
    let n = read_up_to(open(path)?, &mut magic).map_err(|e| FsError::io(path, e))?;
    let compression = match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    let mut block = [0u8; 512];
    let n = match read_up_to(decompress(open(path)?, compression)?, &mut block) {
        Ok(n) => n,
        Err(_) if compression != Compression::None => return Ok(None),
        Err(e) => return Err(FsError::io(path, e).into()),
    };
    Ok((n == block.len() && is_tar_header(&block)).then_some(compression))
}

/// Opens `path` for reading.
fn open(path: &Path) -> KindResult<File> {
    File::open(path).map_err(|e| FsError::io(path, e).into())
}

/// Reads until `buf` is full or the input ends; the count read.
fn read_up_to(mut input: impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A reader of the decompressed bytes of `file`.
fn decompress(file: File, compression: Compression) -> KindResult<Box<dyn Read>> {
    let file = BufReader::new(file);
    Ok(match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file).map_err(FileOpErrorKind::Archive)?,
        ),
    })
}

/// Whether a 512-byte block is a tar header with a valid checksum (a zero block is not).
fn is_tar_header(block: &[u8; 512]) -> bool {
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    stored == sum && block.iter().any(|&b| b != 0)
}

/// What to unpack, and the owner override (`None` keeps the archive's owners).
struct Unpack<'a> {
    /// Host path of the archive file.
    archive: &'a Path,
    /// Its compression.
    compression: Compression,
    /// Owner forced by the action.
    owner: Option<(u32, u32)>,
}

/// Extracts an archive into the destination directory of `a`, refusing any entry (or hardlink
/// target) that would land outside it, also through a symlink an earlier entry made.
fn unpack(root: &Path, a: &CopyAction, source: &Unpack<'_>) -> KindResult<()> {
    let dest = resolve_in_root(root, &a.dest, true)?;
    let options = CopyOptions {
        dest_root: root,
        owner: source.owner,
        mode: None,
        timestamp: a.timestamp,
    };
    let mut created = Vec::new();
    ensure_directory(root, a, &dest, options, &mut created)?;
    let dest_container = container_path(root, &dest);
    let mut archive = tar::Archive::new(decompress(open(source.archive)?, source.compression)?);
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(FileOpErrorKind::Archive)? {
        let mut entry = entry.map_err(FileOpErrorKind::Archive)?;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) = clean_archive_path(&raw) else {
            return Err(FileOpErrorKind::ArchiveEscape {
                entry: String::from_utf8_lossy(&raw).into_owned(),
            });
        };
        let Some(target) = archive_target(root, &dest, &dest_container, &rel, &raw)? else {
            continue;
        };
        write_archive_entry(root, &dest, &dest_container, &mut entry, &target)?;
        let times = apply_archive_metadata(&entry, &target, source.owner, a.timestamp)?;
        if let Some(times) = times {
            dir_times.push((target, times));
        }
    }
    while let Some((dir, mtime)) = dir_times.pop() {
        set_times(&dir, mtime, mtime)?;
    }
    stamp_all(&created, a.timestamp)?;
    Ok(())
}

/// The components of an archive path with `.`, `..` and leading `/` applied, or `None` if `..`
/// climbs above the archive root.
fn clean_archive_path(raw: &[u8]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            name => parts.push(String::from_utf8_lossy(name).into_owned()),
        }
    }
    Some(parts)
}

/// The host path an archive entry at `rel` is written to (`None` for the archive root): its
/// parent resolved inside `root`, required to be inside `dest`, and created if missing.
fn archive_target(
    root: &Path,
    dest: &Path,
    dest_container: &str,
    rel: &[String],
    raw: &[u8],
) -> KindResult<Option<PathBuf>> {
    let Some((name, parents)) = rel.split_last() else {
        return Ok(None);
    };
    let parent_container = join_container(dest_container, parents);
    let parent = resolve_in_root(root, &parent_container, true)?;
    if !parent.starts_with(dest) {
        return Err(FileOpErrorKind::ArchiveEscape {
            entry: String::from_utf8_lossy(raw).into_owned(),
        });
    }
    let made = mkdir_all_in_root(root, &parent_container, 0o755)?;
    Ok(Some(made.path.join(name)))
}

/// `base` joined with `parts` as a container path.
fn join_container(base: &str, parts: &[String]) -> String {
    let mut path = base.trim_end_matches('/').to_owned();
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// Writes one archive entry at host path `target` (its parent exists inside `dest`).
fn write_archive_entry<R: Read>(
    root: &Path,
    dest: &Path,
    dest_container: &str,
    entry: &mut tar::Entry<'_, R>,
    target: &Path,
) -> KindResult<()> {
    let kind = entry.header().entry_type();
    if kind.is_dir() {
        return match fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(FileOpErrorKind::Exists),
            Err(_) => fs::create_dir(target).map_err(|e| FsError::io(target, e).into()),
        };
    }
    clear_for_file(target)?;
    if kind.is_symlink() {
        let link = entry.link_name_bytes().unwrap_or_default().into_owned();
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), target)
            .map_err(|e| FsError::io(target, e))?;
    } else if kind.is_hard_link() {
        let link = entry.link_name_bytes().unwrap_or_default().into_owned();
        let escape = || FileOpErrorKind::ArchiveEscape {
            entry: String::from_utf8_lossy(&link).into_owned(),
        };
        let rel = clean_archive_path(&link).ok_or_else(escape)?;
        let existing = resolve_in_root(root, &join_container(dest_container, &rel), false)?;
        if !existing.starts_with(dest) || existing == dest {
            return Err(escape());
        }
        fs::hard_link(&existing, target).map_err(|e| FsError::io(target, e))?;
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        let mode = HeaderNumbers::of(entry.header())
            .map_err(FileOpErrorKind::Archive)?
            .mode
            & 0o7777;
        let file_type = if kind.is_fifo() {
            libc::S_IFIFO
        } else if kind.is_block_special() {
            libc::S_IFBLK
        } else {
            libc::S_IFCHR
        };
        let major = entry
            .header()
            .device_major()
            .map_err(FileOpErrorKind::Archive)?
            .unwrap_or(0);
        let minor = entry
            .header()
            .device_minor()
            .map_err(FileOpErrorKind::Archive)?
            .unwrap_or(0);
        make_node(target, file_type | mode, libc::makedev(major, minor))?;
    } else {
        let mut file = create_new_file(target)?;
        io::copy(entry, &mut file).map_err(FileOpErrorKind::Archive)?;
    }
    Ok(())
}

/// Gives an extracted entry its owner, mode and time; for a directory the time is returned to be
/// set after its contents.
fn apply_archive_metadata<R: Read>(
    entry: &tar::Entry<'_, R>,
    target: &Path,
    owner: Option<(u32, u32)>,
    timestamp: Option<i64>,
) -> KindResult<Option<(i64, i64)>> {
    let header = entry.header();
    let kind = header.entry_type();
    if kind.is_hard_link() {
        return Ok(None);
    }
    let out_of_range = |what, value| FsError::OutOfRange {
        path: target.to_owned(),
        what,
        value,
    };
    let numbers = HeaderNumbers::of(header).map_err(FileOpErrorKind::Archive)?;
    let (uid, gid) = match owner {
        Some(ids) => ids,
        None => {
            let (uid, gid) = (numbers.uid, numbers.gid);
            (
                u32::try_from(uid).map_err(|_| out_of_range("uid", uid))?,
                u32::try_from(gid).map_err(|_| out_of_range("gid", gid))?,
            )
        }
    };
    set_owner(target, uid, gid)?;
    if !kind.is_symlink() {
        set_mode(target, numbers.mode)?;
    }
    let mtime = match timestamp {
        Some(t) => t,
        None => {
            let raw = numbers.mtime;
            i64::try_from(raw).map_err(|_| out_of_range("mtime", raw))?
        }
    };
    if kind.is_dir() {
        return Ok(Some((mtime, 0)));
    }
    set_times(target, (mtime, 0), (mtime, 0))?;
    Ok(None)
}

/// Applies a mkdir action: the directory (and with `make_parents` its missing parents) gets the
/// exact mode, the owner and the timestamp; an existing directory is left as it is.
fn mkdir(root: &Path, a: &MkdirAction) -> KindResult<()> {
    let (uid, gid) = resolve_owner(root, a.owner.as_ref())?;
    let created = if a.make_parents {
        mkdir_all_in_root(root, &a.path, a.mode)?.created
    } else {
        let path = resolve_in_root(root, &a.path, true)?;
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => Ok(()),
                    _ => Err(FileOpErrorKind::NotADirectory),
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FileOpErrorKind::NotFound),
            Err(e) => return Err(FsError::io(path, e).into()),
        }
        set_mode(&path, a.mode)?;
        vec![path]
    };
    for dir in &created {
        set_owner(dir, uid, gid)?;
        stamp(dir, a.timestamp)?;
    }
    Ok(())
}

/// Applies a mkfile action: a new file with the data, exact mode, owner and timestamp; an
/// existing file (or symlink target inside the root) is replaced.
fn mkfile(root: &Path, a: &MkfileAction) -> KindResult<()> {
    let (uid, gid) = resolve_owner(root, a.owner.as_ref())?;
    let path = resolve_in_root(root, &a.path, true)?;
    clear_for_file(&path)?;
    let mut file = match create_new_file(&path) {
        Ok(file) => file,
        Err(e) if e.is_not_found() => return Err(FileOpErrorKind::NotFound),
        Err(e) => return Err(e.into()),
    };
    io::Write::write_all(&mut file, &a.data).map_err(|e| FsError::io(&path, e))?;
    drop(file);
    set_owner(&path, uid, gid)?;
    set_mode(&path, a.mode)?;
    stamp(&path, a.timestamp)?;
    Ok(())
}

/// Applies an rm action (the final component is never followed: a symlink is removed itself).
fn rm(root: &Path, a: &RmAction) -> KindResult<()> {
    let paths = if a.allow_wildcard && has_wildcard(&a.path) {
        glob_in_root(root, &a.path)?
    } else {
        vec![a.path.clone()]
    };
    if paths.is_empty() && !a.allow_not_found {
        return Err(FileOpErrorKind::NotFound);
    }
    for path in paths {
        let host = resolve_in_root(root, &path, false)?;
        if host == root {
            return Err(FileOpErrorKind::RemoveRoot);
        }
        let removed = match fs::symlink_metadata(&host) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&host),
            Ok(_) => fs::remove_file(&host),
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && a.allow_not_found => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FileOpErrorKind::NotFound),
            Err(e) => return Err(FsError::io(host, e).into()),
        }
    }
    Ok(())
}

/// Applies a symlink action: a new link (an existing path is an error), owner and timestamp set
/// on the link itself.
fn symlink(root: &Path, a: &SymlinkAction) -> KindResult<()> {
    let (uid, gid) = resolve_owner(root, a.owner.as_ref())?;
    let path = resolve_in_root(root, &a.path, false)?;
    match std::os::unix::fs::symlink(&a.target, &path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(FileOpErrorKind::Exists),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FileOpErrorKind::NotFound),
        Err(e) => return Err(FsError::io(path, e).into()),
    }
    set_owner(&path, uid, gid)?;
    stamp(&path, a.timestamp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink as make_link, MetadataExt, PermissionsExt};

    /// A destination root and a copy source root.
    struct Roots {
        dest: tempfile::TempDir,
        src: tempfile::TempDir,
    }

    fn roots() -> Roots {
        let roots = Roots {
            dest: tempfile::tempdir().unwrap(),
            src: tempfile::tempdir().unwrap(),
        };
        let s = roots.src.path();
        fs::create_dir_all(s.join("dir/sub")).unwrap();
        fs::write(s.join("a.txt"), "alpha").unwrap();
        fs::write(s.join("b.txt"), "beta").unwrap();
        fs::write(s.join("dir/x"), "x").unwrap();
        fs::write(s.join("dir/sub/y"), "y").unwrap();
        fs::set_permissions(s.join("dir/x"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::lchown(s.join("a.txt"), Some(1234), Some(1234)).unwrap();
        make_link("/etc/passwd", s.join("dir/passwd-link")).unwrap();
        fs::hard_link(s.join("dir/x"), s.join("dir/x-hard")).unwrap();
        roots
    }

    /// A copy as the Dockerfile frontend emits for `COPY src dest`.
    fn copy_action(src: &str, dest: &str) -> CopyAction {
        CopyAction {
            src: OpRef { op: 0, output: 0 },
            src_path: src.to_owned(),
            dest: dest.to_owned(),
            owner: None,
            mode: None,
            follow_symlinks: true,
            dir_contents_only: true,
            create_dest_path: true,
            allow_wildcard: true,
            allow_empty_wildcard: false,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            attempt_unpack: false,
            timestamp: None,
        }
    }

    fn run(r: &Roots, actions: Vec<FileAction>) -> Result<(), FileOpError> {
        let src = r.src.path().to_owned();
        apply_actions(r.dest.path(), &actions, &move |_: &OpRef| Some(src.clone()))
    }

    fn read(r: &Roots, path: &str) -> String {
        fs::read_to_string(r.dest.path().join(path)).unwrap()
    }

    fn meta(r: &Roots, path: &str) -> Metadata {
        fs::symlink_metadata(r.dest.path().join(path)).unwrap()
    }

    #[test]
    fn copy_file_to_file_creates_parents_and_owns_by_root() {
        let r = roots();
        run(
            &r,
            vec![FileAction::Copy(copy_action(
                "a.txt",
                "/new/dir/renamed.txt",
            ))],
        )
        .unwrap();
        assert_eq!(read(&r, "new/dir/renamed.txt"), "alpha");
        let m = meta(&r, "new/dir/renamed.txt");
        assert_eq!((m.uid(), m.gid()), (0, 0));
        assert_eq!(
            m.mtime(),
            fs::metadata(r.src.path().join("a.txt")).unwrap().mtime()
        );
        assert_eq!(meta(&r, "new/dir").mode() & 0o7777, 0o755);
    }

    #[test]
    fn copy_file_into_directory() {
        let r = roots();
        fs::create_dir(r.dest.path().join("existing")).unwrap();
        let actions = vec![
            FileAction::Copy(copy_action("a.txt", "/slash/")),
            FileAction::Copy(copy_action("b.txt", "/existing")),
        ];
        run(&r, actions).unwrap();
        assert_eq!(read(&r, "slash/a.txt"), "alpha");
        assert_eq!(read(&r, "existing/b.txt"), "beta");
    }

    #[test]
    fn copy_directory_copies_its_contents_with_links() {
        let r = roots();
        run(&r, vec![FileAction::Copy(copy_action("/dir", "/app"))]).unwrap();
        assert_eq!(read(&r, "app/x"), "x");
        assert_eq!(read(&r, "app/sub/y"), "y");
        assert!(!r.dest.path().join("app/dir").exists());
        assert_eq!(meta(&r, "app/x").mode() & 0o7777, 0o640);
        assert_eq!(
            fs::read_link(r.dest.path().join("app/passwd-link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(meta(&r, "app/x").ino(), meta(&r, "app/x-hard").ino());
    }

    #[test]
    fn copy_directory_itself_without_contents_only() {
        let r = roots();
        let mut a = copy_action("dir", "/out/");
        a.dir_contents_only = false;
        run(&r, vec![FileAction::Copy(a)]).unwrap();
        assert_eq!(read(&r, "out/dir/sub/y"), "y");
    }

    #[test]
    fn copy_follow_symlinks_decides_for_the_source_path_only() {
        let r = roots();
        make_link("dir", r.src.path().join("dir-link")).unwrap();
        let mut nofollow = copy_action("dir-link", "/kept-link");
        nofollow.follow_symlinks = false;
        let actions = vec![
            FileAction::Copy(copy_action("dir-link", "/followed")),
            FileAction::Copy(nofollow),
        ];
        run(&r, actions).unwrap();
        assert_eq!(read(&r, "followed/sub/y"), "y");
        assert_eq!(
            fs::read_link(r.dest.path().join("kept-link")).unwrap(),
            Path::new("dir")
        );
        assert_eq!(
            fs::read_link(r.dest.path().join("followed/passwd-link")).unwrap(),
            Path::new("/etc/passwd"),
            "links inside the tree stay links"
        );
    }

    #[test]
    fn copy_preserves_xattrs_of_files_and_dirs() {
        let r = roots();
        let s = r.src.path();
        xattr::set(s.join("dir/x"), "user.origin", b"file").unwrap();
        xattr::set(s.join("dir/sub"), "user.origin", b"dir").unwrap();
        run(&r, vec![FileAction::Copy(copy_action("dir", "/app"))]).unwrap();
        let get = |p: &str| xattr::get(r.dest.path().join(p), "user.origin").unwrap();
        assert_eq!(get("app/x").as_deref(), Some(&b"file"[..]));
        assert_eq!(get("app/sub").as_deref(), Some(&b"dir"[..]));
    }

    #[test]
    fn copy_wildcard_and_empty_matches() {
        let r = roots();
        run(&r, vec![FileAction::Copy(copy_action("*.txt", "/w/"))]).unwrap();
        assert_eq!(
            (read(&r, "w/a.txt"), read(&r, "w/b.txt")),
            ("alpha".into(), "beta".into())
        );
        let err = run(&r, vec![FileAction::Copy(copy_action("*.none", "/w/"))]).unwrap_err();
        assert!(matches!(err.kind, FileOpErrorKind::NoMatch), "{err}");
        let mut a = copy_action("*.none", "/w/");
        a.allow_empty_wildcard = true;
        run(&r, vec![FileAction::Copy(a)]).unwrap();
    }

    #[test]
    fn copy_missing_source_names_action_and_path() {
        let r = roots();
        let actions = vec![
            FileAction::Mkdir(mkdir_action("/ok", 0o755, false)),
            FileAction::Copy(copy_action("/src/foo", "/")),
        ];
        let err = run(&r, actions).unwrap_err();
        assert_eq!(err.to_string(), "COPY: /src/foo: no such file or directory");
        assert!(err.is_not_found());
        assert_eq!(err.index, 1);
    }

    #[test]
    fn copy_through_dest_symlink_to_slash_stays_in_root() {
        let r = roots();
        let outside = tempfile::tempdir().unwrap();
        let escape = outside.path().to_str().unwrap().to_owned();
        make_link("/", r.dest.path().join("up")).unwrap();
        make_link(&escape, r.dest.path().join("abs")).unwrap();
        make_link("../../../../../..", r.dest.path().join("rel")).unwrap();
        let actions = vec![
            FileAction::Copy(copy_action("a.txt", "/up/a1")),
            FileAction::Copy(copy_action("a.txt", "/rel/a2")),
            FileAction::Copy(copy_action("a.txt", "/abs/a3")),
        ];
        run(&r, actions).unwrap();
        assert_eq!(read(&r, "a1"), "alpha");
        assert_eq!(read(&r, "a2"), "alpha");
        assert_eq!(
            fs::read_to_string(
                r.dest
                    .path()
                    .join(escape.trim_start_matches('/'))
                    .join("a3")
            )
            .unwrap(),
            "alpha"
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside the root"
        );
    }

    #[test]
    fn copy_tree_over_dest_symlinked_dir_stays_in_root() {
        let r = roots();
        let outside = tempfile::tempdir().unwrap();
        make_link(outside.path(), r.dest.path().join("sub")).unwrap();
        // `dir/sub/y` meets the image's `/sub` -> <outside> symlink.
        let result = run(&r, vec![FileAction::Copy(copy_action("dir", "/"))]);
        assert!(
            result.is_err()
                || r.dest
                    .path()
                    .join(outside.path().strip_prefix("/").unwrap())
                    .exists()
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside the root"
        );
    }

    #[test]
    fn copy_chown_by_name_from_dest_passwd() {
        let r = roots();
        fs::create_dir(r.dest.path().join("etc")).unwrap();
        fs::write(
            r.dest.path().join("etc/passwd"),
            "root:x:0:0:::\napp:x:1001:1002:::\n",
        )
        .unwrap();
        fs::write(r.dest.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let mut a = copy_action("dir", "/app");
        a.owner = Some(Chown {
            user: Some(OwnerId::Name("app".into())),
            group: None,
        });
        let mut b = copy_action("b.txt", "/b");
        b.owner = Some(Chown {
            user: Some(OwnerId::Name("app".into())),
            group: Some(OwnerId::Name("staff".into())),
        });
        run(&r, vec![FileAction::Copy(a), FileAction::Copy(b)]).unwrap();
        for path in ["app", "app/x", "app/sub/y", "app/passwd-link"] {
            let m = meta(&r, path);
            assert_eq!((m.uid(), m.gid()), (1001, 1002), "{path}");
        }
        let m = meta(&r, "b");
        assert_eq!((m.uid(), m.gid()), (1001, 50));
        let mut c = copy_action("b.txt", "/c");
        c.owner = Some(Chown {
            user: Some(OwnerId::Name("ghost".into())),
            group: None,
        });
        let err = run(&r, vec![FileAction::Copy(c)]).unwrap_err();
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn copy_symbolic_chmod_applies_to_files_and_dirs() {
        let r = roots();
        let mut a = copy_action("dir", "/app");
        a.mode = Some("u+x,go-w".into());
        fs::set_permissions(
            r.src.path().join("dir/sub/y"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        fs::set_permissions(
            r.src.path().join("dir/sub"),
            fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        run(&r, vec![FileAction::Copy(a)]).unwrap();
        assert_eq!(meta(&r, "app/sub/y").mode() & 0o7777, 0o744);
        assert_eq!(meta(&r, "app/sub").mode() & 0o7777, 0o755);
        assert_eq!(meta(&r, "app/x").mode() & 0o7777, 0o740);
    }

    #[test]
    fn copy_fixed_timestamp_and_exclude_patterns() {
        let r = roots();
        let mut a = copy_action("dir", "/app");
        a.timestamp = Some(1_000_000);
        a.exclude_patterns = vec!["sub".into()];
        let mut b = copy_action("a.txt", "/made/for/it/");
        b.timestamp = Some(2_000_000);
        run(&r, vec![FileAction::Copy(a), FileAction::Copy(b)]).unwrap();
        for dir in ["made", "made/for", "made/for/it"] {
            assert_eq!(meta(&r, dir).mtime(), 2_000_000, "created parent {dir}");
        }
        assert_eq!(meta(&r, "app/x").mtime(), 1_000_000);
        assert_eq!(meta(&r, "app/passwd-link").mtime(), 1_000_000);
        assert_eq!(meta(&r, "app").mtime(), 1_000_000);
        assert!(!r.dest.path().join("app/sub").exists());
    }

    fn mkdir_action(path: &str, mode: u32, make_parents: bool) -> MkdirAction {
        MkdirAction {
            path: path.into(),
            mode,
            make_parents,
            owner: None,
            timestamp: None,
        }
    }

    #[test]
    fn mkdir_parents_get_exact_mode_owner_and_time() {
        let r = roots();
        fs::create_dir(r.dest.path().join("a")).unwrap();
        fs::set_permissions(r.dest.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        let mut a = mkdir_action("/a/b/c", 0o1777, true);
        a.owner = Some(Chown {
            user: Some(OwnerId::Id(7)),
            group: Some(OwnerId::Id(8)),
        });
        a.timestamp = Some(42);
        run(&r, vec![FileAction::Mkdir(a)]).unwrap();
        for path in ["a/b", "a/b/c"] {
            let m = meta(&r, path);
            assert_eq!(
                (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
                (0o1777, 7, 8, 42),
                "{path}"
            );
        }
        assert_eq!(
            meta(&r, "a").mode() & 0o7777,
            0o700,
            "existing parent untouched"
        );
        let err = run(
            &r,
            vec![FileAction::Mkdir(mkdir_action("/x/y", 0o755, false))],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "MKDIR: /x/y: no such file or directory");
        run(
            &r,
            vec![FileAction::Mkdir(mkdir_action("/a", 0o755, false))],
        )
        .unwrap();
    }

    #[test]
    fn mkfile_and_symlink_write_inside_root() {
        let r = roots();
        make_link("/", r.dest.path().join("up")).unwrap();
        let mkfile = MkfileAction {
            path: "/up/f".into(),
            mode: 0o600,
            data: b"data".to_vec(),
            owner: None,
            timestamp: Some(5),
        };
        let link = SymlinkAction {
            target: "/etc/shadow".into(),
            path: "/l".into(),
            owner: None,
            timestamp: Some(6),
        };
        run(
            &r,
            vec![
                FileAction::Mkfile(mkfile),
                FileAction::Symlink(link.clone()),
            ],
        )
        .unwrap();
        assert_eq!(read(&r, "f"), "data");
        assert_eq!(
            (meta(&r, "f").mode() & 0o7777, meta(&r, "f").mtime()),
            (0o600, 5)
        );
        assert_eq!(
            fs::read_link(r.dest.path().join("l")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(meta(&r, "l").mtime(), 6);
        let err = run(&r, vec![FileAction::Symlink(link)]).unwrap_err();
        assert!(matches!(err.kind, FileOpErrorKind::Exists), "{err}");
    }

    #[test]
    fn rm_wildcard_and_not_found() {
        let r = roots();
        let d = r.dest.path();
        fs::create_dir_all(d.join("logs/old")).unwrap();
        fs::write(d.join("logs/a.log"), "").unwrap();
        fs::write(d.join("logs/b.log"), "").unwrap();
        fs::write(d.join("logs/keep.txt"), "").unwrap();
        make_link("/logs", d.join("link")).unwrap();
        let rm = |path: &str, allow_not_found, allow_wildcard| {
            FileAction::Rm(RmAction {
                path: path.into(),
                allow_not_found,
                allow_wildcard,
            })
        };
        run(
            &r,
            vec![rm("/logs/*.log", false, true), rm("/link", false, false)],
        )
        .unwrap();
        assert!(!d.join("logs/a.log").exists() && !d.join("logs/b.log").exists());
        assert!(
            d.join("logs/keep.txt").exists(),
            "symlink removed, not its target"
        );
        assert!(fs::symlink_metadata(d.join("link")).is_err());
        run(&r, vec![rm("/nope", true, false), rm("/nope*", true, true)]).unwrap();
        let err = run(&r, vec![rm("/nope", false, false)]).unwrap_err();
        assert_eq!(err.to_string(), "RM: /nope: no such file or directory");
        assert!(matches!(
            run(&r, vec![rm("/", false, false)]).unwrap_err().kind,
            FileOpErrorKind::RemoveRoot
        ));
        run(&r, vec![rm("/logs", false, false)]).unwrap();
        assert!(!d.join("logs").exists());
    }

    /// Writes a tar (gzip-compressed when `gzip`) with `entries` as (path, kind, data or link).
    fn write_tar(path: &Path, gzip: bool, entries: &[(&str, tar::EntryType, &str)]) {
        let file = File::create(path).unwrap();
        let writer: Box<dyn io::Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(file)
        };
        let mut builder = tar::Builder::new(writer);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(if kind.is_dir() { 0o750 } else { 0o640 });
            header.set_uid(33);
            header.set_gid(44);
            header.set_mtime(777);
            // Raw name bytes: the builder's own setters refuse `..`, which these tests need.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            let body: &[u8] = if kind.is_symlink() || kind.is_hard_link() {
                header.set_link_name(data).unwrap();
                b""
            } else {
                data.as_bytes()
            };
            header.set_size(body.len() as u64);
            header.set_cksum();
            builder.append(&header, body).unwrap();
        }
        builder.into_inner().unwrap().flush().unwrap();
    }

    fn add(src: &str, dest: &str) -> FileAction {
        let mut a = copy_action(src, dest);
        a.attempt_unpack = true;
        FileAction::Copy(a)
    }

    #[test]
    fn add_unpacks_plain_and_gzip_tars() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let r = roots();
        let entries = [
            ("d/", Directory, ""),
            ("d/f", Regular, "hello"),
            ("d/l", Symlink, "/etc/passwd"),
            ("d/h", Link, "d/f"),
            ("top", Regular, "t"),
        ];
        write_tar(&r.src.path().join("plain.tar"), false, &entries);
        write_tar(&r.src.path().join("z.tar.gz"), true, &entries);
        run(&r, vec![add("plain.tar", "/p/"), add("z.tar.gz", "/g")]).unwrap();
        for base in ["p", "g"] {
            assert_eq!(read(&r, &format!("{base}/d/f")), "hello");
            let m = meta(&r, &format!("{base}/d/f"));
            assert_eq!(
                (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
                (0o640, 33, 44, 777)
            );
            assert_eq!(meta(&r, &format!("{base}/d")).mode() & 0o7777, 0o750);
            assert_eq!(meta(&r, &format!("{base}/d")).mtime(), 777);
            assert_eq!(
                fs::read_link(r.dest.path().join(base).join("d/l")).unwrap(),
                Path::new("/etc/passwd")
            );
            assert_eq!(meta(&r, &format!("{base}/d/h")).ino(), m.ino());
        }
        run(&r, vec![add("a.txt", "/notar")]).unwrap();
        assert_eq!(
            read(&r, "notar"),
            "alpha",
            "a non-archive is copied as a file"
        );
    }

    #[test]
    fn add_refuses_entries_escaping_dest() {
        use tar::EntryType::{Regular, Symlink};
        let r = roots();
        write_tar(
            &r.src.path().join("dotdot.tar"),
            false,
            &[("ok", Regular, "1"), ("../evil", Regular, "x")],
        );
        write_tar(
            &r.src.path().join("via-link.tar"),
            false,
            &[("up", Symlink, "/"), ("up/evil", Regular, "x")],
        );
        write_tar(
            &r.src.path().join("hard.tar"),
            false,
            &[("h", tar::EntryType::Link, "../../a.txt")],
        );
        fs::create_dir(r.dest.path().join("out")).unwrap();
        for archive in ["dotdot.tar", "via-link.tar", "hard.tar"] {
            let err = run(&r, vec![add(archive, "/out/x/")]).unwrap_err();
            assert!(
                matches!(err.kind, FileOpErrorKind::ArchiveEscape { .. }),
                "{archive}: {err}"
            );
        }
        assert!(!r.dest.path().join("out/evil").exists());
        assert!(!r.dest.path().join("evil").exists());
        assert_eq!(read(&r, "out/x/ok"), "1");
    }
}
