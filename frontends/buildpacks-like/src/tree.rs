//! A read-only view of the build context: the only thing detection and planning see.
//!
//! In the component the view is backed by the host (a solved `local://context` filtered to the
//! files detection reads); in tests by [`MemTree`], filled from a fixture directory or by hand.

use std::collections::BTreeMap;
use std::path::Path;

/// The files of a source tree, by path relative to its root (`requirements.txt`, `public/x`).
pub trait SourceTree {
    /// The bytes of the regular file at `path`, or `None` if there is none.
    fn read(&self, path: &str) -> Option<Vec<u8>>;

    /// Whether `path` is a directory.
    fn is_dir(&self, path: &str) -> bool;

    /// The file at `path` as text (invalid UTF-8 replaced), or `None` if there is none.
    fn read_text(&self, path: &str) -> Option<String> {
        self.read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Whether a regular file exists at `path`.
    fn has_file(&self, path: &str) -> bool {
        self.read(path).is_some()
    }

    /// The names at the top of the whole tree (directories with a trailing `/`), sorted; only
    /// asked for to explain why nothing was recognized.
    fn top_level(&self) -> Vec<String>;
}

/// A source tree held in memory: file paths and contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemTree {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemTree {
    /// An empty tree.
    pub fn new() -> MemTree {
        MemTree::default()
    }

    /// The tree with `path` holding `contents` (parents are implied).
    pub fn with(mut self, path: &str, contents: impl Into<Vec<u8>>) -> MemTree {
        self.files
            .insert(path.trim_start_matches('/').to_string(), contents.into());
        self
    }

    /// Loads every regular file under `root` (for tests and tools; there is no file system in
    /// the component).
    pub fn from_dir(root: &Path) -> std::io::Result<MemTree> {
        let mut tree = MemTree::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    let rel = path
                        .strip_prefix(root)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    tree.files.insert(rel, std::fs::read(&path)?);
                }
            }
        }
        Ok(tree)
    }

    /// The paths of all files, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

impl SourceTree for MemTree {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.files.get(path.trim_start_matches('/')).cloned()
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_matches('/'));
        self.files.keys().any(|p| p.starts_with(&prefix))
    }

    fn top_level(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .keys()
            .map(|p| match p.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => p.clone(),
            })
            .collect();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_implied_by_their_files() {
        let tree = MemTree::new().with("public/index.html", "<h1>hi</h1>");
        assert!(tree.is_dir("public"));
        assert!(tree.is_dir("public/"));
        assert!(!tree.is_dir("pub"));
        assert!(!tree.has_file("public"));
        assert_eq!(
            tree.read_text("public/index.html").as_deref(),
            Some("<h1>hi</h1>")
        );
    }
}
