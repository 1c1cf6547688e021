//! Which paths of a local context a source or a step reads, as [`PathFilter`]s.
//!
//! A `local://NAME` source selects its context through include and exclude patterns and follow
//! paths ([`LocalFilter`]); a step reading that source (a `COPY`'s source paths with wildcards,
//! follow-symlinks and include/exclude patterns, or a read-only bind mount's selector) reads only
//! some of it ([`PathSelector`], resolved into a [`SelectionFilter`]). [`Both`] intersects two
//! filters. [`checksum::selection_checksum`](crate::checksum::selection_checksum) hashes what the
//! intersection selects: the content-based cache key of a step that reads part of a context.
//!
//! Resolution happens on the client's directory, not on the synced snapshot the step will read:
//! the snapshot is the directory through the source's filter, so hashing the resolved paths
//! through that same filter covers everything the step can read (a path the filter drops is
//! absent from both). A symlink met while resolving is hashed as a link, its target as resolved.

use std::path::Path;

use crate::context::{Filter, PathFilter, PatternFilter};
use crate::fsutil::{glob_in_root, has_wildcard, resolve_in_root_traced, FsError};

/// What a `local://` source op selects of its directory: its include patterns plus its follow
/// paths (and the targets of symlinks on them), minus its exclude patterns (`!` re-includes).
#[derive(Debug, Clone)]
pub struct LocalFilter {
    patterns: PatternFilter,
}

impl LocalFilter {
    /// The filter of a source op reading `dir`; a follow path's symlinks are resolved in `dir`
    /// and their targets selected too (so a followed link never dangles in the snapshot).
    pub fn new<S: AsRef<str>>(
        dir: &Path,
        include: &[S],
        exclude: &[S],
        follow_paths: &[S],
    ) -> Result<LocalFilter, FsError> {
        let mut includes: Vec<String> = include.iter().map(|p| p.as_ref().to_owned()).collect();
        for follow in follow_paths {
            let follow = follow.as_ref();
            includes.push(follow.to_owned());
            let mut links = Vec::new();
            let resolved = resolve_in_root_traced(dir, follow, true, &mut links)?;
            if let Ok(rel) = resolved.strip_prefix(dir) {
                if !rel.as_os_str().is_empty() {
                    includes.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let excludes: Vec<String> = exclude.iter().map(|p| p.as_ref().to_owned()).collect();
        Ok(LocalFilter {
            patterns: PatternFilter::new(&includes, &excludes)?,
        })
    }
}

impl PathFilter for LocalFilter {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        self.patterns.matches(rel_path, is_dir)
    }
}

/// Selects what both filters select.
pub struct Both<'a>(pub &'a dyn PathFilter, pub &'a dyn PathFilter);

impl PathFilter for Both<'_> {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        let rank = |f: Filter| match f {
            Filter::Exclude => 0,
            Filter::ExcludeButDescend => 1,
            Filter::Include => 2,
        };
        let (a, b) = (
            self.0.matches(rel_path, is_dir),
            self.1.matches(rel_path, is_dir),
        );
        let least = if rank(a) <= rank(b) { a } else { b };
        match least {
            Filter::ExcludeButDescend if !is_dir => Filter::Exclude,
            other => other,
        }
    }
}

/// One path a step reads from an input: a `COPY` source or a read-only bind mount's selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSelector {
    /// The path in the input as written (`/a.txt`, `src/*.rs`, `/` for all of it).
    pub path: String,
    /// Whether a symlink as the final component is followed.
    pub follow_symlinks: bool,
    /// Whether `path` may contain wildcards.
    pub allow_wildcard: bool,
    /// Patterns under a selected directory that are copied (empty: everything).
    pub include_patterns: Vec<String>,
    /// Patterns under a selected directory that are left out.
    pub exclude_patterns: Vec<String>,
}

impl PathSelector {
    /// The selector of a whole subtree at `path`, symlinks on the way followed.
    pub fn subtree(path: &str) -> PathSelector {
        PathSelector {
            path: path.to_owned(),
            follow_symlinks: true,
            allow_wildcard: false,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
        }
    }
}

/// The entries a set of [`PathSelector`]s reads in one directory: each resolved root with the
/// whole subtree below it (through that selector's patterns), and each symlink met on the way.
#[derive(Debug, Clone, Default)]
pub struct SelectionFilter {
    /// Resolved roots relative to the directory (`""` for all of it), with their patterns.
    roots: Vec<(String, PatternFilter)>,
    /// Symlinks followed while resolving, relative to the directory.
    links: Vec<String>,
}

impl SelectionFilter {
    /// Resolves `selectors` in directory `dir` as a copy would (wildcards expanded, symlinks
    /// scoped to `dir`). A path that does not exist selects nothing.
    pub fn resolve(dir: &Path, selectors: &[PathSelector]) -> Result<SelectionFilter, FsError> {
        let mut filter = SelectionFilter::default();
        for selector in selectors {
            let patterns =
                PatternFilter::new(&selector.include_patterns, &selector.exclude_patterns)?;
            let paths = if selector.allow_wildcard && has_wildcard(&selector.path) {
                glob_in_root(dir, &selector.path)?
            } else {
                vec![selector.path.clone()]
            };
            for path in paths {
                let mut links = Vec::new();
                let host =
                    resolve_in_root_traced(dir, &path, selector.follow_symlinks, &mut links)?;
                filter.links.extend(links.iter().map(|l| relative(l)));
                let rel = host.strip_prefix(dir).unwrap_or(Path::new(""));
                filter.roots.push((relative(rel), patterns.clone()));
            }
        }
        Ok(filter)
    }

    /// The resolved roots, as `/`-prefixed paths (for messages).
    pub fn roots(&self) -> Vec<String> {
        self.roots.iter().map(|(r, _)| format!("/{r}")).collect()
    }
}

/// A relative path as the `/`-separated string filters are asked about.
fn relative(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `path` is `ancestor` or below it (`""` is everyone's ancestor).
fn is_under(path: &str, ancestor: &str) -> bool {
    ancestor.is_empty()
        || path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl PathFilter for SelectionFilter {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        if self.links.iter().any(|l| l == rel_path) {
            return Filter::Include;
        }
        let mut verdict = Filter::Exclude;
        for (root, patterns) in &self.roots {
            if rel_path == root {
                return Filter::Include;
            }
            if is_under(rel_path, root) {
                let below = rel_path
                    .get(root.len()..)
                    .unwrap_or_default()
                    .trim_start_matches('/');
                match patterns.matches(below, is_dir) {
                    Filter::Include => return Filter::Include,
                    Filter::ExcludeButDescend => verdict = Filter::ExcludeButDescend,
                    Filter::Exclude => {}
                }
            } else if is_dir && is_under(root, rel_path) {
                verdict = Filter::ExcludeButDescend;
            }
        }
        if is_dir && self.links.iter().any(|l| is_under(l, rel_path)) {
            verdict = Filter::ExcludeButDescend;
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::walk_selected;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("src/deep")).unwrap();
        fs::create_dir_all(p.join("docs")).unwrap();
        fs::write(p.join("a.txt"), "a").unwrap();
        fs::write(p.join("b.txt"), "b").unwrap();
        fs::write(p.join("src/main.rs"), "m").unwrap();
        fs::write(p.join("src/notes.md"), "n").unwrap();
        fs::write(p.join("src/deep/lib.rs"), "l").unwrap();
        fs::write(p.join("docs/guide.md"), "g").unwrap();
        symlink("src/deep", p.join("deep-link")).unwrap();
        dir
    }

    fn walk(dir: &Path, filter: &dyn PathFilter) -> Vec<String> {
        walk_selected(dir, filter)
            .unwrap()
            .into_iter()
            .map(|e| e.rel.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_file_selects_only_itself() {
        let t = tree();
        let f = SelectionFilter::resolve(t.path(), &[PathSelector::subtree("/a.txt")]).unwrap();
        assert_eq!(walk(t.path(), &f), vec!["a.txt"]);
    }

    #[test]
    fn wildcards_and_patterns_select_matches_and_their_subtrees() {
        let t = tree();
        let selector = PathSelector {
            path: "/s*".into(),
            allow_wildcard: true,
            exclude_patterns: vec!["*.md".into()],
            ..PathSelector::subtree("")
        };
        let f = SelectionFilter::resolve(t.path(), &[selector]).unwrap();
        assert_eq!(
            walk(t.path(), &f),
            vec!["src", "src/deep", "src/deep/lib.rs", "src/main.rs"]
        );
    }

    #[test]
    fn a_followed_symlink_selects_the_link_and_its_target() {
        let t = tree();
        let f = SelectionFilter::resolve(t.path(), &[PathSelector::subtree("deep-link")]).unwrap();
        assert_eq!(f.roots(), vec!["/src/deep"]);
        assert_eq!(
            walk(t.path(), &f),
            vec!["deep-link", "src", "src/deep", "src/deep/lib.rs"]
        );
        let nofollow = PathSelector {
            follow_symlinks: false,
            ..PathSelector::subtree("deep-link")
        };
        let f = SelectionFilter::resolve(t.path(), &[nofollow]).unwrap();
        assert_eq!(walk(t.path(), &f), vec!["deep-link"]);
    }

    #[test]
    fn the_root_selects_everything_and_both_intersects() {
        let t = tree();
        let all = SelectionFilter::resolve(t.path(), &[PathSelector::subtree("/")]).unwrap();
        assert_eq!(walk(t.path(), &all).len(), 10);
        let local = LocalFilter::new::<&str>(t.path(), &[], &["src"], &[]).unwrap();
        assert_eq!(
            walk(t.path(), &Both(&local, &all)),
            vec!["a.txt", "b.txt", "deep-link", "docs", "docs/guide.md"]
        );
        let missing =
            SelectionFilter::resolve(t.path(), &[PathSelector::subtree("/nope")]).unwrap();
        assert!(walk(t.path(), &missing).is_empty());
    }

    #[test]
    fn follow_paths_select_their_symlink_targets() {
        let t = tree();
        let local = LocalFilter::new::<&str>(t.path(), &[], &[], &["deep-link"]).unwrap();
        assert_eq!(
            walk(t.path(), &local),
            vec!["deep-link", "src", "src/deep", "src/deep/lib.rs"]
        );
    }
}
