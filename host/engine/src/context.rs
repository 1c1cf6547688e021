//! Local build-context handling: which paths of a context are selected, and copying them.
//!
//! A [`PathFilter`] decides, path by path, what a local context (or a `COPY` with include and
//! exclude patterns) selects; [`walk_selected`] lists the selected entries in a stable order and
//! [`sync_local`] copies them into an empty snapshot directory the way BuildKit's local source
//! does: modes, times, xattrs, symlinks (as links, never followed, even when they point out of the
//! context) and hardlinks preserved, owners made `0:0`. This module reads the client's context and
//! writes only under the destination it is given; it never mounts, and it does not parse
//! `.dockerignore` (the caller supplies that filter).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::fsutil::{CopyOptions, FsError, Glob, TreeCopier, WalkEntry};

/// Verdict of a [`PathFilter`] on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The path is selected (a directory's children are still asked about one by one).
    Include,
    /// The path and, for a directory, everything under it are left out.
    Exclude,
    /// A directory left out whose children may still be selected (by a `!` pattern or a deeper
    /// include path); it is created only as the parent of a selected child.
    ExcludeButDescend,
}

/// Selects paths of a tree, by path relative to its root (`a/b`, no leading `/`).
pub trait PathFilter: Sync {
    /// The verdict on `rel_path`, a directory when `is_dir`.
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter;
}

/// Selects everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncludeAll;

impl PathFilter for IncludeAll {
    fn matches(&self, _rel_path: &str, _is_dir: bool) -> Filter {
        Filter::Include
    }
}

/// Selects the given relative paths and everything under them (a local source's include paths).
#[derive(Debug, Clone, Default)]
pub struct PrefixFilter {
    prefixes: Vec<String>,
}

impl PrefixFilter {
    /// A filter selecting `prefixes` (leading `/` and `./`, trailing `/` ignored).
    pub fn new<S: AsRef<str>>(prefixes: &[S]) -> Self {
        let clean = |p: &str| {
            p.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect::<Vec<_>>()
                .join("/")
        };
        PrefixFilter {
            prefixes: prefixes.iter().map(|p| clean(p.as_ref())).collect(),
        }
    }
}

impl PathFilter for PrefixFilter {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        let under = |prefix: &str, path: &str| {
            prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        };
        if self.prefixes.iter().any(|p| under(p, rel_path)) {
            Filter::Include
        } else if is_dir && self.prefixes.iter().any(|p| under(rel_path, p)) {
            Filter::ExcludeButDescend
        } else {
            Filter::Exclude
        }
    }
}

/// Include and exclude wildcard patterns, as a `COPY`'s include-patterns and exclude-patterns: a
/// simplified Docker pattern matcher (`*`, `?`, `[..]` within a component, `**` across any
/// number of components, a leading `!` re-including in the exclude list, a pattern matching a
/// directory matching everything under it).
#[derive(Debug, Clone, Default)]
pub struct PatternFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

/// One parsed pattern: components (`None` for `**`), and whether it is a `!` re-include.
#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<Option<Glob>>,
    negated: bool,
}

impl PatternFilter {
    /// Parses include and exclude patterns; a malformed one is an error naming it.
    pub fn new<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Result<Self, FsError> {
        let parse_all = |list: &[S]| {
            list.iter()
                .map(|p| Pattern::parse(p.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(PatternFilter {
            include: parse_all(include)?,
            exclude: parse_all(exclude)?,
        })
    }

    /// Whether no pattern is set (everything selected).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

impl Pattern {
    /// Parses one pattern (leading `!` negates; `/`, `./` and empty components ignored).
    fn parse(text: &str) -> Result<Self, FsError> {
        let (negated, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let parts = body
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(|c| {
                if c == "**" {
                    Ok(None)
                } else {
                    Glob::new(c).map(Some)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Pattern { parts, negated })
    }

    /// Whether the pattern matches `path` or one of its ancestors.
    fn matches(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|n| match_parts(&self.parts, &path[..n]))
    }

    /// Whether the pattern could match something strictly under `path`.
    fn may_match_below(&self, path: &[&str]) -> bool {
        prefix_parts(&self.parts, path)
    }
}

/// Whether pattern components `parts` match all of `path`.
fn match_parts(parts: &[Option<Glob>], path: &[&str]) -> bool {
    match parts.split_first() {
        None => path.is_empty(),
        Some((None, rest)) => (0..=path.len()).any(|skip| match_parts(rest, &path[skip..])),
        Some((Some(glob), rest)) => {
            path.first().is_some_and(|c| glob.matches(c)) && match_parts(rest, &path[1..])
        }
    }
}

/// Whether `path` can be extended into something `parts` matches.
fn prefix_parts(parts: &[Option<Glob>], path: &[&str]) -> bool {
    match (parts.split_first(), path.split_first()) {
        (_, None) => !parts.is_empty(),
        (None, Some(_)) => false,
        (Some((None, _)), Some(_)) => true,
        (Some((Some(glob), rest)), Some((first, tail))) => {
            glob.matches(first) && prefix_parts(rest, tail)
        }
    }
}

impl PathFilter for PatternFilter {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        let path: Vec<&str> = rel_path.split('/').filter(|c| !c.is_empty()).collect();
        let mut excluded = false;
        for pattern in &self.exclude {
            if pattern.matches(&path) {
                excluded = !pattern.negated;
            }
        }
        let included = self.include.is_empty() || self.include.iter().any(|p| p.matches(&path));
        if included && !excluded {
            return Filter::Include;
        }
        let reinclude_below = !excluded
            || self
                .exclude
                .iter()
                .any(|p| p.negated && p.may_match_below(&path));
        let include_below = included || self.include.iter().any(|p| p.may_match_below(&path));
        if is_dir && reinclude_below && include_below {
            Filter::ExcludeButDescend
        } else {
            Filter::Exclude
        }
    }
}

/// Threads listing directories at most in [`walk_selected`].
pub const MAX_WALK_THREADS: usize = 4;

/// Lists the entries of directory `root` that `filter` selects, parents before children, names
/// in byte order. A directory kept only for a selected descendant is listed before it; symlinks
/// are listed, never followed. Directories are read on up to [`MAX_WALK_THREADS`] threads.
pub fn walk_selected(root: &Path, filter: &dyn PathFilter) -> Result<Vec<WalkEntry>, FsError> {
    let mut listed = list_dirs(root, filter)?;
    let mut out = Vec::new();
    assemble(&mut listed, Path::new(""), &mut out);
    Ok(out)
}

/// A selected child of a directory: its relative path, the filter's verdict, its metadata.
type Child = (PathBuf, Filter, fs::Metadata);

/// Shared state of the threads of [`list_dirs`].
struct Listing {
    /// Directories (relative) waiting to be read.
    queue: Vec<PathBuf>,
    /// Directories queued or being read.
    pending: usize,
    /// The selected children of each directory read.
    listed: HashMap<PathBuf, Vec<Child>>,
    /// The first failure; stops every thread.
    error: Option<FsError>,
}

/// Reads every directory the filter lets the walk enter, on a few threads: the selected
/// children of each, by relative directory path.
fn list_dirs(
    root: &Path,
    filter: &dyn PathFilter,
) -> Result<HashMap<PathBuf, Vec<Child>>, FsError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WALK_THREADS);
    let state = Mutex::new(Listing {
        queue: vec![PathBuf::new()],
        pending: 1,
        listed: HashMap::new(),
        error: None,
    });
    let wake = Condvar::new();
    let work = || list_worker(root, filter, &state, &wake);
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        work();
        for helper in helpers {
            // Workers catch panics themselves; a failed join leaves `pending` set, reported below.
            let _ = helper.join();
        }
    });
    let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    match state.error {
        Some(error) => Err(error),
        None if state.pending > 0 => Err(FsError::io(
            root,
            io::Error::other("directory walk thread failed"),
        )),
        None => Ok(state.listed),
    }
}

/// One thread of [`list_dirs`]: takes directories from the queue until all are read.
fn list_worker(root: &Path, filter: &dyn PathFilter, state: &Mutex<Listing>, wake: &Condvar) {
    loop {
        let rel = {
            let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if guard.error.is_some() || (guard.queue.is_empty() && guard.pending == 0) {
                    return;
                }
                if let Some(rel) = guard.queue.pop() {
                    break rel;
                }
                guard = wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A panic (a bug in a filter) must not leave the other threads waiting for this directory.
        let result = panic::catch_unwind(AssertUnwindSafe(|| read_children(root, &rel, filter)))
            .unwrap_or_else(|_| {
                Err(FsError::io(
                    root.join(&rel),
                    io::Error::other("walk panicked"),
                ))
            });
        let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(children) => {
                for (child, _, meta) in &children {
                    if meta.is_dir() {
                        guard.queue.push(child.clone());
                        guard.pending += 1;
                    }
                }
                guard.listed.insert(rel, children);
            }
            Err(e) => guard.error = Some(e),
        }
        guard.pending -= 1;
        wake.notify_all();
    }
}

/// The children of directory `rel` the filter keeps, names in byte order, with their verdict
/// and metadata. The directory is closed when this returns.
fn read_children(root: &Path, rel: &Path, filter: &dyn PathFilter) -> Result<Vec<Child>, FsError> {
    let dir = root.join(rel);
    let mut children = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| FsError::io(&dir, e))? {
        let entry = entry.map_err(|e| FsError::io(&dir, e))?;
        children.push((entry.file_name(), entry));
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    let mut selected = Vec::with_capacity(children.len());
    for (name, entry) in children {
        let child = rel.join(&name);
        let io_err = |e| FsError::io(root.join(&child), e);
        let is_dir = entry.file_type().map_err(io_err)?.is_dir();
        let verdict = filter.matches(&child.to_string_lossy(), is_dir);
        match verdict {
            Filter::Exclude => continue,
            Filter::ExcludeButDescend if !is_dir => continue,
            Filter::Include | Filter::ExcludeButDescend => {}
        }
        // `DirEntry::metadata` is an `fstatat` on the open directory, not following links.
        let meta = entry.metadata().map_err(io_err)?;
        selected.push((child, verdict, meta));
    }
    Ok(selected)
}

/// Appends the listed entries under `rel` to `out` depth first, dropping a directory kept only
/// for descendants when none was selected.
fn assemble(listed: &mut HashMap<PathBuf, Vec<Child>>, rel: &Path, out: &mut Vec<WalkEntry>) {
    let Some(children) = listed.remove(rel) else {
        return;
    };
    for (child, verdict, meta) in children {
        let is_dir = meta.is_dir();
        let mark = out.len();
        out.push(WalkEntry { rel: child, meta });
        if is_dir {
            let child = out[mark].rel.clone();
            assemble(listed, &child, out);
        }
        if verdict == Filter::ExcludeButDescend && out.len() == mark + 1 {
            out.pop();
        }
    }
}

/// What [`sync_local`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Regular files written (a hardlink to one already written is not counted).
    pub files: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

/// Error syncing or checksumming a local context, naming the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The destination is not an existing directory.
    #[error("{}: sync destination is not a directory", path.display())]
    BadDestination {
        /// The destination given.
        path: PathBuf,
    },
    /// The checksum cache database failed.
    #[error("checksum cache: {0}")]
    Cache(#[source] sled::Error),
    /// Reading the context or writing the copy failed.
    #[error("syncing local context {}: {source}", context.display())]
    Fs {
        /// The context directory.
        context: PathBuf,
        /// The failure, with its path.
        #[source]
        source: FsError,
    },
}

impl ContextError {
    /// Whether the error is a missing file or directory.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ContextError::Fs { source, .. } if source.is_not_found())
    }
}

/// Copies what `filter` selects of context directory `src` into the (empty) directory `dest`:
/// modes, times, xattrs, symlinks (as links, never followed) and hardlinks preserved, owners 0:0.
pub fn sync_local(
    src: &Path,
    dest: &Path,
    filter: &dyn PathFilter,
) -> Result<SyncStats, ContextError> {
    if !fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(ContextError::BadDestination {
            path: dest.to_owned(),
        });
    }
    let fs_err = |source| ContextError::Fs {
        context: src.to_owned(),
        source,
    };
    let entries = walk_selected(src, filter).map_err(fs_err)?;
    let options = CopyOptions {
        dest_root: dest,
        owner: Some((0, 0)),
        mode: None,
        timestamp: None,
    };
    let mut copier = TreeCopier::new(options);
    copier.copy_entries(src, &entries, dest).map_err(fs_err)?;
    let stats = copier.finish().map_err(fs_err)?;
    Ok(SyncStats {
        files: stats.files,
        bytes: stats.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        fs::create_dir_all(p.join("src/deep")).unwrap();
        fs::create_dir_all(p.join("node_modules/pkg")).unwrap();
        fs::write(p.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(p.join("src/deep/lib.rs"), "// lib").unwrap();
        fs::write(p.join("node_modules/pkg/index.js"), "x").unwrap();
        fs::write(p.join("debug.log"), "log").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(p.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::lchown(p.join("run.sh"), Some(1234), Some(5678)).unwrap();
        symlink("/etc/passwd", p.join("outside")).unwrap();
        fs::hard_link(p.join("src/main.rs"), p.join("main-link.rs")).unwrap();
        dir
    }

    fn rels(entries: &[WalkEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.rel.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn pattern_filter_excludes_and_reincludes() {
        let f = PatternFilter::new::<&str>(
            &[],
            &["node_modules", "*.log", "!node_modules/pkg/keep.js"],
        )
        .unwrap();
        assert_eq!(f.matches("debug.log", false), Filter::Exclude);
        assert_eq!(f.matches("node_modules", true), Filter::ExcludeButDescend);
        assert_eq!(
            f.matches("node_modules/pkg/keep.js", false),
            Filter::Include
        );
        assert_eq!(
            f.matches("node_modules/pkg/other.js", false),
            Filter::Exclude
        );
        assert_eq!(f.matches("src/a.rs", false), Filter::Include);
        let f = PatternFilter::new(&["src/**/*.rs"], &[]).unwrap();
        assert_eq!(f.matches("src", true), Filter::ExcludeButDescend);
        assert_eq!(f.matches("src/deep/lib.rs", false), Filter::Include);
        assert_eq!(f.matches("docs", true), Filter::Exclude);
    }

    #[test]
    fn prefix_filter_selects_paths_and_their_parents() {
        let f = PrefixFilter::new(&["/src/deep/"]);
        assert_eq!(f.matches("src", true), Filter::ExcludeButDescend);
        assert_eq!(f.matches("src/deep/lib.rs", false), Filter::Include);
        assert_eq!(f.matches("src/main.rs", false), Filter::Exclude);
        assert_eq!(f.matches("src/deeper", true), Filter::Exclude);
    }

    #[test]
    fn walk_lists_selected_parents_before_children() {
        let t = tree();
        let got = rels(&walk_selected(t.path(), &PrefixFilter::new(&["src/deep"])).unwrap());
        assert_eq!(got, vec!["src", "src/deep", "src/deep/lib.rs"]);
        let none = walk_selected(t.path(), &PrefixFilter::new(&["nothing/here"])).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn sync_local_copies_selection_with_metadata() {
        let t = tree();
        let dest = tempfile::tempdir().unwrap();
        let filter = PatternFilter::new::<&str>(&[], &["node_modules", "*.log"]).unwrap();
        let stats = sync_local(t.path(), dest.path(), &filter).unwrap();
        let d = dest.path();
        assert!(!d.join("node_modules").exists());
        assert!(!d.join("debug.log").exists());
        assert_eq!(
            fs::read_to_string(d.join("src/deep/lib.rs")).unwrap(),
            "// lib"
        );
        let run = fs::symlink_metadata(d.join("run.sh")).unwrap();
        assert_eq!(run.mode() & 0o7777, 0o755);
        assert_eq!((run.uid(), run.gid()), (0, 0));
        let src_mtime = fs::metadata(t.path().join("run.sh")).unwrap().mtime_nsec();
        assert_eq!(run.mtime_nsec(), src_mtime);
        assert_eq!(
            fs::read_link(d.join("outside")).unwrap(),
            Path::new("/etc/passwd")
        );
        let a = fs::metadata(d.join("src/main.rs")).unwrap();
        let b = fs::metadata(d.join("main-link.rs")).unwrap();
        assert_eq!(a.ino(), b.ino(), "hardlink preserved");
        assert_eq!(
            stats,
            SyncStats {
                files: 3,
                bytes: 12 + 6 + 9
            }
        );
    }

    #[test]
    fn sync_local_refuses_missing_destination() {
        let t = tree();
        let err = sync_local(t.path(), &t.path().join("nope"), &IncludeAll).unwrap_err();
        assert!(matches!(err, ContextError::BadDestination { .. }), "{err}");
    }
}
