//! Path safety and metadata helpers for the engine's filesystem half.
//!
//! This module owns the rules that keep every file operation inside the directory it was given:
//! [`resolve_in_root`] resolves a container path inside a root directory with symlinks scoped to
//! that root (an absolute or `..`-laden link target can never leave it, like securejoin),
//! [`mkdir_all_in_root`] creates directories the same way, [`glob_in_root`] expands wildcards,
//! [`lookup_user`]/[`lookup_group`] read the root's own `/etc/passwd` and `/etc/group`, and
//! [`TreeCopier`] copies entries with modes, owners, times, xattrs, symlinks (as links) and
//! hardlinks preserved. It works on plain directories: it never mounts anything and never touches
//! a path outside the roots it is handed. Resolution is not race-free against a concurrent writer
//! in the same root; the engine only uses it on filesystems no container is running in.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// Symlinks followed while resolving one path before giving up (securejoin's limit).
pub const MAX_SYMLINKS: u32 = 255;

/// Largest `/etc/passwd` or `/etc/group` read from an image; larger files are refused.
pub const MAX_ID_DB_BYTES: u64 = 16 << 20;

/// Error of a filesystem helper, naming the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// An I/O error on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path the operation failed on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Too many symlinks met while resolving `path`.
    #[error("{path}: too many levels of symbolic links")]
    TooManySymlinks {
        /// The container path being resolved.
        path: String,
    },
    /// A path that must be a directory is something else.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A directory stands where a non-directory is to be written.
    #[error("{}: cannot overwrite a directory with a non-directory", path.display())]
    IsADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A user name missing from the root's `/etc/passwd`.
    #[error("unknown user {name:?}: not in {db}")]
    UnknownUser {
        /// The name asked for.
        name: String,
        /// The database searched (container path).
        db: String,
    },
    /// A group name missing from the root's `/etc/group`.
    #[error("unknown group {name:?}: not in {db}")]
    UnknownGroup {
        /// The name asked for.
        name: String,
        /// The database searched (container path).
        db: String,
    },
    /// A `/etc/passwd` or `/etc/group` larger than [`MAX_ID_DB_BYTES`].
    #[error("{db}: larger than {MAX_ID_DB_BYTES} bytes")]
    IdDbTooLarge {
        /// The database (container path).
        db: String,
    },
    /// A malformed wildcard pattern.
    #[error("bad wildcard pattern {pattern:?}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
    },
    /// A malformed octal or symbolic mode.
    #[error("bad mode {mode:?}: expected octal (\"755\") or symbolic (\"u+x,go-w\")")]
    BadMode {
        /// The mode as given.
        mode: String,
    },
    /// A number from a source (tar header, metadata) out of the range hoist accepts.
    #[error("{}: {what} {value} out of range", path.display())]
    OutOfRange {
        /// The path whose metadata is concerned.
        path: PathBuf,
        /// Which field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
}

impl FsError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the error is a missing file or directory.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// Whether the error is a missing user or group name.
    pub fn is_unknown_id(&self) -> bool {
        matches!(
            self,
            FsError::UnknownUser { .. } | FsError::UnknownGroup { .. }
        )
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// Resolves container path `path` to a host path inside `root`, following symlinks scoped to
/// `root`: `..` never climbs above it and an absolute link target restarts at it. Missing
/// components are taken literally. The final component is followed only when
/// `follow_final_symlink` (a trailing `/` or `/.` always follows it, as in POSIX).
pub fn resolve_in_root(root: &Path, path: &str, follow_final_symlink: bool) -> Result<PathBuf> {
    resolve_in_root_traced(root, path, follow_final_symlink, &mut Vec::new())
}

/// [`resolve_in_root`], also noting the path relative to `root` of every symlink it followed
/// (what a content checksum of the resolution must cover besides the resolved path).
pub fn resolve_in_root_traced(
    root: &Path,
    path: &str,
    follow_final_symlink: bool,
    links_followed: &mut Vec<PathBuf>,
) -> Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending = reversed_components(path.as_bytes());
    let mut links = 0;
    while let Some(component) = pending.pop() {
        match component.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(&resolved).join(&component);
        let follow = follow_final_symlink || !pending.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && follow => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::TooManySymlinks {
                        path: path.to_owned(),
                    });
                }
                let target = fs::read_link(&candidate).map_err(|e| FsError::io(&candidate, e))?;
                links_followed.push(resolved.join(&component));
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(reversed_components(target.as_os_str().as_bytes()));
            }
            Ok(_) => resolved.push(&component),
            Err(e) if is_missing(&e) => resolved.push(&component),
            Err(e) => return Err(FsError::io(candidate, e)),
        }
    }
    Ok(root.join(resolved))
}

/// Splits a path on `/` into components, last first (so `pop` yields them in order).
fn reversed_components(path: &[u8]) -> Vec<OsString> {
    path.split(|&b| b == b'/')
        .rev()
        .map(|c| OsStr::from_bytes(c).to_owned())
        .collect()
}

/// Whether an error means the path (or a parent) does not exist as a directory.
fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// The container path (`/a/b`) of `host`, a path inside `root`.
pub fn container_path(root: &Path, host: &Path) -> String {
    match host.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => host.to_string_lossy().into_owned(),
    }
}

/// Re-resolves `host`, a path inside `root`, so a symlink met on it stays scoped to `root`.
pub fn rescope(root: &Path, host: &Path, follow_final_symlink: bool) -> Result<PathBuf> {
    resolve_in_root(root, &container_path(root, host), follow_final_symlink)
}

/// Result of [`mkdir_all_in_root`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkdirAll {
    /// The host path of the directory, inside the root.
    pub path: PathBuf,
    /// The directories created, outermost first (empty when it already existed).
    pub created: Vec<PathBuf>,
}

/// Creates directory `path` and its missing parents inside `root` (symlinks scoped to `root`),
/// giving each created directory exactly `mode` (not reduced by the umask).
pub fn mkdir_all_in_root(root: &Path, path: &str, mode: u32) -> Result<MkdirAll> {
    let resolved = resolve_in_root(root, path, true)?;
    let rel = resolved
        .strip_prefix(root)
        .map_err(|_| FsError::NotADirectory {
            path: resolved.clone(),
        })?;
    let mut current = root.to_path_buf();
    let mut created = Vec::new();
    for component in rel.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => return Err(FsError::NotADirectory { path: current }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(|e| FsError::io(&current, e))?;
                set_mode(&current, mode)?;
                created.push(current.clone());
            }
            Err(e) => return Err(FsError::io(current, e)),
        }
    }
    Ok(MkdirAll {
        path: resolved,
        created,
    })
}

/// Whether `s` contains an unescaped wildcard character (`*`, `?` or `[`).
pub fn has_wildcard(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Expands wildcard `pattern` (a container path; `*`, `?`, `[..]` and `\` escapes in any
/// component, `*` matching leading dots too) inside `root`: the sorted container paths of the
/// entries that exist.
pub fn glob_in_root(root: &Path, pattern: &str) -> Result<Vec<String>> {
    let mut candidates = vec![String::new()];
    for component in pattern.split('/') {
        if component.is_empty() || component == "." {
            continue;
        }
        if !has_wildcard(component) {
            let literal = unescape(component);
            candidates.iter_mut().for_each(|c| {
                c.push('/');
                c.push_str(&literal);
            });
            continue;
        }
        let matcher = Glob::new(component)?;
        let mut next = Vec::new();
        for candidate in &candidates {
            next.extend(matching_children(root, candidate, &matcher)?);
        }
        candidates = next;
    }
    let mut found = Vec::new();
    for candidate in candidates {
        let candidate = if candidate.is_empty() {
            "/".to_owned()
        } else {
            candidate
        };
        let host = resolve_in_root(root, &candidate, false)?;
        match fs::symlink_metadata(&host) {
            Ok(_) => found.push(candidate),
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(FsError::io(host, e)),
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The container paths of the children of directory `dir` (inside `root`) matching `matcher`.
fn matching_children(root: &Path, dir: &str, matcher: &Glob) -> Result<Vec<String>> {
    let host = resolve_in_root(root, if dir.is_empty() { "/" } else { dir }, true)?;
    let entries = match fs::read_dir(&host) {
        Ok(entries) => entries,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(FsError::io(host, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::io(&host, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str().filter(|n| matcher.matches(n)) {
            out.push(format!("{dir}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes `\` escapes from a literal path component.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// A validated wildcard pattern for one path component (Go `filepath.Match` syntax).
#[derive(Debug, Clone)]
pub struct Glob {
    chars: Vec<char>,
}

impl Glob {
    /// Checks `pattern` (`*`, `?`, `[..]` with ranges and `^`/`!` negation, `\` escapes).
    pub fn new(pattern: &str) -> Result<Self> {
        let chars: Vec<char> = pattern.chars().collect();
        let bad = || FsError::BadPattern {
            pattern: pattern.to_owned(),
        };
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' if i + 1 >= chars.len() => return Err(bad()),
                '\\' => i += 2,
                '[' => i = class_end(&chars, i).ok_or_else(bad)?,
                _ => i += 1,
            }
        }
        Ok(Glob { chars })
    }

    /// Whether `name` (one component) matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let p = &self.chars;
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if pi < p.len() {
                if p[pi] == '*' {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                if let Some((matched, next)) = name.get(ni).and_then(|&c| match_one(p, pi, c)) {
                    if matched {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
            } else if ni == name.len() {
                return true;
            }
            match star {
                Some((sp, sn)) if sn < name.len() => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                _ => return false,
            }
        }
    }
}

/// Matches the pattern element at `pi` (not `*`) against `c`: whether it matched, and the index
/// after the element.
fn match_one(p: &[char], pi: usize, c: char) -> Option<(bool, usize)> {
    match p[pi] {
        '?' => Some((true, pi + 1)),
        '\\' => Some((p.get(pi + 1) == Some(&c), pi + 2)),
        '[' => {
            let end = class_end(p, pi)?;
            Some((class_matches(&p[pi + 1..end - 1], c), end))
        }
        literal => Some((literal == c, pi + 1)),
    }
}

/// The index after the `]` closing the class opened at `start`, if it is closed.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if matches!(p.get(i), Some('^' | '!')) {
        i += 1;
    }
    let first = i;
    while i < p.len() {
        match p[i] {
            ']' if i > first => return Some(i + 1),
            '\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Whether `c` is in the class body `body` (between `[` and `]`).
fn class_matches(body: &[char], c: char) -> bool {
    let (negated, body) = match body.first() {
        Some('^' | '!') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut i = 0;
    let mut found = false;
    while i < body.len() {
        let (lo, next) = class_char(body, i);
        if body.get(next) == Some(&'-') && next + 1 < body.len() {
            let (hi, after) = class_char(body, next + 1);
            found |= lo <= c && c <= hi;
            i = after;
        } else {
            found |= lo == c;
            i = next;
        }
    }
    found != negated
}

/// The (possibly escaped) character at `i` of a class body and the index after it.
fn class_char(body: &[char], i: usize) -> (char, usize) {
    match (body[i], body.get(i + 1)) {
        ('\\', Some(&c)) => (c, i + 2),
        (c, _) => (c, i + 1),
    }
}

/// Numeric ids of a user: its uid and its primary gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    /// User id.
    pub uid: u32,
    /// Primary group id (for a numeric user, the same number: Docker's rule).
    pub gid: u32,
}

/// Resolves a user name or numeric id through `root`'s `/etc/passwd` (resolved inside `root`).
/// A numeric string passes through with gid = uid; an unknown name is an error naming it.
pub fn lookup_user(root: &Path, name_or_id: &str) -> Result<UserIds> {
    if let Ok(id) = name_or_id.parse::<u32>() {
        return Ok(UserIds { uid: id, gid: id });
    }
    let unknown = || FsError::UnknownUser {
        name: name_or_id.to_owned(),
        db: "/etc/passwd".to_owned(),
    };
    let fields = find_id_entry(root, "/etc/passwd", name_or_id)?.ok_or_else(unknown)?;
    match (
        fields.get(2).and_then(|f| f.parse().ok()),
        fields.get(3).and_then(|f| f.parse().ok()),
    ) {
        (Some(uid), Some(gid)) => Ok(UserIds { uid, gid }),
        _ => Err(unknown()),
    }
}

/// Resolves a group name or numeric id through `root`'s `/etc/group` (resolved inside `root`).
pub fn lookup_group(root: &Path, name_or_id: &str) -> Result<u32> {
    if let Ok(id) = name_or_id.parse::<u32>() {
        return Ok(id);
    }
    let unknown = || FsError::UnknownGroup {
        name: name_or_id.to_owned(),
        db: "/etc/group".to_owned(),
    };
    let fields = find_id_entry(root, "/etc/group", name_or_id)?.ok_or_else(unknown)?;
    fields
        .get(2)
        .and_then(|f| f.parse().ok())
        .ok_or_else(unknown)
}

/// The `:`-separated fields of the line of database `db` (a container path) naming `name`, or
/// `None` when the database or the name is missing.
fn find_id_entry(root: &Path, db: &str, name: &str) -> Result<Option<Vec<String>>> {
    let host = resolve_in_root(root, db, true)?;
    let file = match File::open(&host) {
        Ok(file) => file,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(FsError::io(host, e)),
    };
    let mut data = Vec::new();
    file.take(MAX_ID_DB_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| FsError::io(&host, e))?;
    if data.len() as u64 > MAX_ID_DB_BYTES {
        return Err(FsError::IdDbTooLarge { db: db.to_owned() });
    }
    let text = String::from_utf8_lossy(&data);
    let line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(':').next() == Some(name));
    Ok(line.map(|l| l.split(':').map(str::to_owned).collect()))
}

/// A mode change as given to `COPY --chmod`: octal, or symbolic clauses like chmod(1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeChange {
    /// Replace the permission bits (`"755"`, `"4755"`).
    Absolute(u32),
    /// Apply `[ugoa]*[+-=][rwxXst]*` clauses in order (`"u+x,go-w"`).
    Symbolic(Vec<Clause>),
}

/// One clause of a symbolic mode: who it concerns and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    ops: Vec<(char, String)>,
}

impl ModeChange {
    /// Parses an octal (`"755"`) or symbolic (`"u+x,go-w"`) mode.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || FsError::BadMode { mode: s.to_owned() };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let mode = u32::from_str_radix(s, 8).map_err(|_| bad())?;
            return if mode <= 0o7777 {
                Ok(ModeChange::Absolute(mode))
            } else {
                Err(bad())
            };
        }
        s.split(',')
            .map(|c| parse_clause(c).ok_or_else(bad))
            .collect::<Result<_>>()
            .map(ModeChange::Symbolic)
    }

    /// The new permission bits of an entry with bits `mode` (`is_dir` for `X`).
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            ModeChange::Absolute(m) => return *m,
            ModeChange::Symbolic(clauses) => clauses,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            for (op, perms) in &clause.ops {
                let bits = perm_bits(perms, mode, is_dir, clause.who) & clause.who;
                mode = match op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => (mode & !clause.who) | bits,
                };
            }
        }
        mode
    }
}

/// Parses one symbolic clause: `[ugoa]*` then one or more `[+-=]` with permission letters.
fn parse_clause(s: &str) -> Option<Clause> {
    let who_len = s.find(['+', '-', '='])?;
    let mut who = 0;
    for c in s[..who_len].chars() {
        who |= match c {
            'u' => 0o4700,
            'g' => 0o2070,
            'o' => 0o1007,
            'a' => 0o7777,
            _ => return None,
        };
    }
    if who == 0 {
        who = 0o7777;
    }
    let mut ops: Vec<(char, String)> = Vec::new();
    for c in s[who_len..].chars() {
        match c {
            '+' | '-' | '=' => ops.push((c, String::new())),
            'r' | 'w' | 'x' | 'X' | 's' | 't' | 'u' | 'g' | 'o' => ops.last_mut()?.1.push(c),
            _ => return None,
        }
    }
    Some(Clause { who, ops })
}

/// The mode bits named by permission letters (before masking by who), `mode` being the current
/// bits (for `X` and for copying a class with `u`/`g`/`o`).
fn perm_bits(perms: &str, mode: u32, is_dir: bool, who: u32) -> u32 {
    let class = |shift: u32| ((mode >> shift) & 0o7) * 0o111;
    perms.chars().fold(0, |bits, c| {
        bits | match c {
            'r' => 0o444,
            'w' => 0o222,
            'x' => 0o111,
            'X' if is_dir || mode & 0o111 != 0 => 0o111,
            's' => 0o6000,
            't' if who & 0o1000 != 0 => 0o1000,
            'u' => class(6),
            'g' => class(3),
            'o' => class(0),
            _ => 0,
        }
    })
}

/// Sets the permission bits of `path` (not a symlink) exactly.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| FsError::io(path, e))
}

/// Sets the owner of `path` without following a final symlink.
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| FsError::io(path, e))
}

/// A file time: seconds and nanoseconds since the epoch.
pub type Times = (i64, i64);

/// Sets the access and modification times of `path` (not following a final symlink).
pub fn set_times(path: &Path, atime: Times, mtime: Times) -> Result<()> {
    let spec = |(s, ns): Times| TimeSpec::new(s, ns);
    nix::sys::stat::utimensat(
        None,
        path,
        &spec(atime),
        &spec(mtime),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| FsError::io(path, io::Error::from(e)))
}

/// Copies the extended attributes of `src` to `dest` (neither followed if a symlink); attributes
/// the destination filesystem or kernel refuses (`ENOTSUP`, `EPERM`) are skipped.
pub fn copy_xattrs(src: &Path, dest: &Path) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(()),
        Err(e) => return Err(FsError::io(src, e)),
    };
    for name in names {
        let value = match xattr::get(src, &name) {
            Ok(Some(value)) => value,
            Ok(None) => continue,
            Err(e) if is_unsupported(&e) => continue,
            Err(e) => return Err(FsError::io(src, e)),
        };
        match xattr::set(dest, &name, &value) {
            Ok(()) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => return Err(FsError::io(dest, e)),
        }
    }
    Ok(())
}

/// Whether an xattr error means "not available here" rather than a failure.
fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP | libc::EPERM | libc::ENODATA)
    )
}

/// Makes an empty destination for a non-directory at `dest`: a directory there is an error,
/// anything else (file, symlink, device) is removed so nothing is written through it.
pub fn clear_for_file(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Err(FsError::IsADirectory {
            path: dest.to_owned(),
        }),
        Ok(_) => fs::remove_file(dest).map_err(|e| FsError::io(dest, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsError::io(dest, e)),
    }
}

/// Creates a new regular file at `dest` (never following a symlink there) with `0600` bits.
pub fn create_new_file(dest: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)
        .map_err(|e| FsError::io(dest, e))
}

/// Makes a device node or fifo at `dest`, its kind and bits taken from `mode`, device `rdev`.
pub fn make_node(dest: &Path, mode: u32, rdev: u64) -> Result<()> {
    let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
    let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
    nix::sys::stat::mknod(dest, kind, perm, rdev).map_err(|e| FsError::io(dest, io::Error::from(e)))
}

/// One entry found by a directory walk: its path relative to the walk root and its metadata
/// (symlinks not followed).
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Path relative to the walk root (never empty).
    pub rel: PathBuf,
    /// `lstat` metadata.
    pub meta: Metadata,
}

/// How a [`TreeCopier`] treats what it copies.
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions<'a> {
    /// Root the destination must stay in: symlinked directories met there are re-resolved in it.
    pub dest_root: &'a Path,
    /// Owner of every copied entry; `None` keeps the source owners.
    pub owner: Option<(u32, u32)>,
    /// Mode change applied to copied files and directories (not symlinks).
    pub mode: Option<&'a ModeChange>,
    /// Fixed access and modification time (seconds since the epoch) for copied entries.
    pub timestamp: Option<i64>,
}

/// Counts of what a [`TreeCopier`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written (hardlinks to an already copied file not counted).
    pub files: u64,
    /// Bytes of regular file contents written.
    pub bytes: u64,
}

/// Copies entries with their metadata into a destination root, preserving symlinks (as links,
/// never followed) and hardlinks among the entries it copied. Call [`TreeCopier::finish`] last:
/// directory times are set then, after their contents.
pub struct TreeCopier<'a> {
    opts: CopyOptions<'a>,
    links: HashMap<(u64, u64), PathBuf>,
    dir_times: Vec<(PathBuf, Times, Times)>,
    stats: CopyStats,
}

impl<'a> TreeCopier<'a> {
    /// A copier writing with `opts`.
    pub fn new(opts: CopyOptions<'a>) -> Self {
        TreeCopier {
            opts,
            links: HashMap::new(),
            dir_times: Vec::new(),
            stats: CopyStats::default(),
        }
    }

    /// Copies the single entry `src` (metadata `meta`) to host path `dest`, whose parent exists.
    /// A directory is created (or an existing one kept as is, its metadata untouched) but not
    /// filled; returns the host directory to fill, re-resolved if `dest` was a symlink to one.
    pub fn copy_entry(&mut self, src: &Path, meta: &Metadata, dest: &Path) -> Result<PathBuf> {
        if meta.is_dir() {
            return self.copy_dir_entry(src, meta, dest);
        }
        clear_for_file(dest)?;
        let ft = meta.file_type();
        if ft.is_file() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, dest).map_err(|e| FsError::io(dest, e))?;
                return Ok(dest.to_owned());
            }
            self.links.insert((meta.dev(), meta.ino()), dest.to_owned());
        }
        if ft.is_file() {
            self.copy_contents(src, dest)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(src).map_err(|e| FsError::io(src, e))?;
            std::os::unix::fs::symlink(&target, dest).map_err(|e| FsError::io(dest, e))?;
        } else if ft.is_socket() {
            return Ok(dest.to_owned());
        } else {
            make_node(dest, meta.mode(), meta.rdev())?;
        }
        self.apply_metadata(src, meta, dest)?;
        Ok(dest.to_owned())
    }

    /// Creates directory `dest` for a source directory, or reuses an existing one.
    fn copy_dir_entry(&mut self, src: &Path, meta: &Metadata, dest: &Path) -> Result<PathBuf> {
        match fs::symlink_metadata(dest) {
            Ok(existing) if existing.is_dir() => Ok(dest.to_owned()),
            Ok(existing) if existing.file_type().is_symlink() => {
                let target = rescope(self.opts.dest_root, dest, true)?;
                match fs::metadata(&target) {
                    Ok(m) if m.is_dir() => Ok(target),
                    _ => Err(FsError::NotADirectory {
                        path: dest.to_owned(),
                    }),
                }
            }
            Ok(_) => Err(FsError::NotADirectory {
                path: dest.to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(dest).map_err(|e| FsError::io(dest, e))?;
                self.apply_metadata(src, meta, dest)?;
                Ok(dest.to_owned())
            }
            Err(e) => Err(FsError::io(dest, e)),
        }
    }

    /// Copies the bytes of regular file `src` into a new file `dest`.
    fn copy_contents(&mut self, src: &Path, dest: &Path) -> Result<()> {
        let mut input = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(src)
            .map_err(|e| FsError::io(src, e))?;
        let mut output = create_new_file(dest)?;
        let n = io::copy(&mut input, &mut output).map_err(|e| FsError::io(dest, e))?;
        self.stats.files += 1;
        self.stats.bytes += n;
        Ok(())
    }

    /// Gives `dest` the owner, mode, xattrs and times of `src` (`meta`), with the overrides of
    /// the options; directory times are deferred to [`TreeCopier::finish`].
    fn apply_metadata(&mut self, src: &Path, meta: &Metadata, dest: &Path) -> Result<()> {
        let (uid, gid) = self.opts.owner.unwrap_or((meta.uid(), meta.gid()));
        set_owner(dest, uid, gid)?;
        let is_link = meta.file_type().is_symlink();
        if !is_link {
            let mode = meta.mode() & 0o7777;
            set_mode(
                dest,
                self.opts
                    .mode
                    .map_or(mode, |m| m.apply(mode, meta.is_dir())),
            )?;
        }
        copy_xattrs(src, dest)?;
        let (atime, mtime) = match self.opts.timestamp {
            Some(t) => ((t, 0), (t, 0)),
            None => (
                (meta.atime(), meta.atime_nsec()),
                (meta.mtime(), meta.mtime_nsec()),
            ),
        };
        if meta.is_dir() {
            self.dir_times.push((dest.to_owned(), atime, mtime));
            Ok(())
        } else {
            set_times(dest, atime, mtime)
        }
    }

    /// Copies `entries` (a walk of directory `src_dir`, parents before children) into directory
    /// `dest_dir`.
    pub fn copy_entries(
        &mut self,
        src_dir: &Path,
        entries: &[WalkEntry],
        dest_dir: &Path,
    ) -> Result<()> {
        let mut dirs: HashMap<&Path, PathBuf> = HashMap::new();
        dirs.insert(Path::new(""), dest_dir.to_owned());
        for entry in entries {
            let parent_rel = entry.rel.parent().unwrap_or(Path::new(""));
            let Some(parent) = dirs.get(parent_rel) else {
                continue;
            };
            let Some(name) = entry.rel.file_name() else {
                continue;
            };
            let dest = parent.join(name);
            let written = self.copy_entry(&src_dir.join(&entry.rel), &entry.meta, &dest)?;
            if entry.meta.is_dir() {
                dirs.insert(&entry.rel, written);
            }
        }
        Ok(())
    }

    /// Sets the deferred directory times (innermost first) and returns what was copied.
    pub fn finish(mut self) -> Result<CopyStats> {
        while let Some((dir, atime, mtime)) = self.dir_times.pop() {
            set_times(&dir, atime, mtime)?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn resolve_keeps_absolute_link_inside_root() {
        let root = tmp();
        fs::create_dir(root.path().join("etc")).unwrap();
        symlink("/", root.path().join("up")).unwrap();
        symlink("../../../../etc", root.path().join("dotdot")).unwrap();
        let r = root.path();
        assert_eq!(
            resolve_in_root(r, "/up/etc/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, "dotdot/x", true).unwrap(),
            r.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(r, "/../../..", true).unwrap(),
            r.to_path_buf()
        );
        assert_eq!(resolve_in_root(r, "/up", false).unwrap(), r.join("up"));
        assert_eq!(resolve_in_root(r, "/up", true).unwrap(), r.to_path_buf());
    }

    #[test]
    fn resolve_detects_symlink_loops() {
        let root = tmp();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        let err = resolve_in_root(root.path(), "/a/x", true).unwrap_err();
        assert!(matches!(err, FsError::TooManySymlinks { .. }), "{err}");
    }

    #[test]
    fn relative_link_resolves_against_its_directory() {
        let root = tmp();
        fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        symlink("usr/lib", root.path().join("lib")).unwrap();
        symlink("../lib/x", root.path().join("usr/lib/y")).unwrap();
        let got = resolve_in_root(root.path(), "/lib/y", true).unwrap();
        assert_eq!(got, root.path().join("usr/lib/x"));
    }

    #[test]
    fn mkdir_all_follows_links_inside_root_with_exact_mode() {
        let root = tmp();
        symlink("/", root.path().join("escape")).unwrap();
        let made = mkdir_all_in_root(root.path(), "/escape/a/b", 0o1777).unwrap();
        assert_eq!(made.path, root.path().join("a/b"));
        assert_eq!(made.created.len(), 2);
        let mode = fs::metadata(root.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
    }

    #[test]
    fn glob_matches_like_go_filepath_match() {
        let cases = [
            ("*.txt", "a.txt", true),
            ("*.txt", ".hidden.txt", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[!a]x", "zx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b", "aXbYc", false),
            ("[]]", "]", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Glob::new(pattern).unwrap().matches(name),
                want,
                "{pattern} vs {name}"
            );
        }
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("abc\\").is_err());
    }

    #[test]
    fn glob_in_root_expands_components() {
        let root = tmp();
        fs::create_dir_all(root.path().join("src/a")).unwrap();
        fs::create_dir_all(root.path().join("src/b")).unwrap();
        fs::write(root.path().join("src/a/x.rs"), "").unwrap();
        fs::write(root.path().join("src/b/y.rs"), "").unwrap();
        fs::write(root.path().join("src/b/y.md"), "").unwrap();
        let got = glob_in_root(root.path(), "/src/*/*.rs").unwrap();
        assert_eq!(got, vec!["/src/a/x.rs", "/src/b/y.rs"]);
        assert!(glob_in_root(root.path(), "/nope/*").unwrap().is_empty());
    }

    #[test]
    fn users_and_groups_come_from_the_root() {
        let root = tmp();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n# c\napp:x:1001:1002::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        assert_eq!(
            lookup_user(root.path(), "app").unwrap(),
            UserIds {
                uid: 1001,
                gid: 1002
            }
        );
        assert_eq!(
            lookup_user(root.path(), "42").unwrap(),
            UserIds { uid: 42, gid: 42 }
        );
        assert_eq!(lookup_group(root.path(), "staff").unwrap(), 50);
        let err = lookup_user(root.path(), "ghost").unwrap_err();
        assert!(
            err.is_unknown_id() && err.to_string().contains("ghost"),
            "{err}"
        );
        assert!(lookup_group(root.path(), "ghost")
            .unwrap_err()
            .is_unknown_id());
    }

    #[test]
    fn passwd_symlink_cannot_read_the_host() {
        let root = tmp();
        fs::create_dir(root.path().join("etc")).unwrap();
        symlink("/etc/passwd", root.path().join("etc/passwd")).unwrap();
        // Scoped to the root the link points at itself: the host's /etc/passwd (which knows
        // `root`) is never read.
        let err = lookup_user(root.path(), "root").unwrap_err();
        assert!(matches!(err, FsError::TooManySymlinks { .. }), "{err}");
    }

    #[test]
    fn symbolic_modes_apply_like_chmod() {
        let m = |s: &str| ModeChange::parse(s).unwrap();
        assert_eq!(m("755").apply(0o600, false), 0o755);
        assert_eq!(m("u+x,go-w").apply(0o666, false), 0o744);
        assert_eq!(m("a=r").apply(0o777, false), 0o444);
        assert_eq!(m("+X").apply(0o644, true), 0o755);
        assert_eq!(m("+X").apply(0o644, false), 0o644);
        assert_eq!(m("g=u").apply(0o640, false), 0o660);
        assert_eq!(m("u+s,o+t").apply(0o755, true), 0o5755);
        assert!(ModeChange::parse("9").is_err());
        assert!(ModeChange::parse("u+q").is_err());
        assert!(ModeChange::parse("77777").is_err());
    }
}
