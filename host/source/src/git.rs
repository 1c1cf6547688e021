//! Git repositories (`ADD git://…#ref`), checked out with the `git` command-line tool.
//!
//! Two steps, as BuildKit's git source: [`resolve_commit`] asks the remote which commit a ref
//! names (`git ls-remote`; a full commit id needs no network), which is what a build's cache key
//! depends on; [`checkout`] then fetches just that commit (shallow) into a directory and, unless
//! the build keeps it, removes `.git`. git runs with no system or global configuration and no
//! terminal prompts, so a build never hangs on credentials nor depends on the host's git setup.
//!
//! These functions block (they wait for `git`); callers run them on a blocking pool.

use std::path::Path;
use std::process::{Command, Stdio};

/// What can go wrong fetching a repository.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("git {remote}: cannot run git: {source}")]
    Spawn {
        /// The remote concerned.
        remote: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A `git` command failed.
    #[error("git {remote}: `git {command}` failed: {stderr}")]
    Command {
        /// The remote concerned.
        remote: String,
        /// The git subcommand and its arguments.
        command: String,
        /// What git printed on stderr (last lines).
        stderr: String,
    },
    /// The remote has no such branch, tag or ref.
    #[error("git {remote}: no branch, tag or ref named {reference:?}")]
    RefNotFound {
        /// The remote concerned.
        remote: String,
        /// The ref asked for.
        reference: String,
    },
    /// The commit does not match `ADD --checksum`.
    #[error("git {remote}: checksum mismatch: expected commit {expected}, got {actual}")]
    ChecksumMismatch {
        /// The remote concerned.
        remote: String,
        /// The commit (or prefix) the build asked for.
        expected: String,
        /// The commit the ref resolved to.
        actual: String,
    },
    /// Cleaning the checkout failed.
    #[error("git {remote}: {path}: {source}")]
    Io {
        /// The remote concerned.
        remote: String,
        /// The path concerned.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A ref resolved on a remote: the commit, and the ref name to fetch it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// The commit id (hex).
    pub commit: String,
    /// What to fetch: a full ref name (`refs/tags/v1`), or the commit id itself.
    pub fetch: String,
}

/// Whether `text` is a full commit id (sha1 or sha256), which needs no lookup.
pub fn is_commit_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The commit `reference` (branch, tag, full ref or commit id; `None` is HEAD) names on `url`.
pub fn resolve_commit(url: &str, reference: Option<&str>) -> Result<ResolvedRef, GitError> {
    if let Some(commit) = reference.filter(|r| is_commit_id(r)) {
        return Ok(ResolvedRef {
            commit: commit.to_ascii_lowercase(),
            fetch: commit.to_ascii_lowercase(),
        });
    }
    let wanted = reference.unwrap_or("HEAD");
    if url.starts_with('-') {
        return Err(GitError::Command {
            remote: url.to_string(),
            command: "ls-remote".into(),
            stderr: "a remote may not start with '-'".into(),
        });
    }
    let listing = run_git(url, None, &["ls-remote", url])?;
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    // The order git itself uses to disambiguate a short name; an annotated tag's peeled commit
    // (`^{}`) wins over the tag object.
    let candidates = [
        wanted.to_string(),
        format!("refs/{wanted}"),
        format!("refs/tags/{wanted}"),
        format!("refs/heads/{wanted}"),
    ];
    for name in &candidates {
        let peeled = format!("{name}^{{}}");
        let found = refs
            .iter()
            .find(|(_, r)| *r == peeled)
            .or_else(|| refs.iter().find(|(_, r)| r == name));
        if let Some((commit, _)) = found {
            return Ok(ResolvedRef {
                commit: commit.to_string(),
                fetch: name.clone(),
            });
        }
    }
    Err(GitError::RefNotFound {
        remote: url.to_string(),
        reference: wanted.to_string(),
    })
}

/// Checks a resolved commit against an `ADD --checksum` (a commit id or a prefix of one).
pub fn verify_checksum(url: &str, commit: &str, checksum: &str) -> Result<(), GitError> {
    let expected = checksum.to_ascii_lowercase();
    if expected.len() >= 7 && commit.starts_with(&expected) {
        return Ok(());
    }
    Err(GitError::ChecksumMismatch {
        remote: url.to_string(),
        expected,
        actual: commit.to_string(),
    })
}

/// Checks out `resolved` from `url` into the empty directory `dest` (submodules included);
/// `.git` is removed unless `keep_git_dir`.
pub fn checkout(
    url: &str,
    resolved: &ResolvedRef,
    dest: &Path,
    keep_git_dir: bool,
) -> Result<(), GitError> {
    run_git(url, Some(dest), &["init", "-q"])?;
    run_git(url, Some(dest), &["remote", "add", "origin", url])?;
    let shallow = run_git(
        url,
        Some(dest),
        &[
            "fetch",
            "-q",
            "--depth=1",
            "--no-tags",
            "origin",
            &resolved.fetch,
        ],
    );
    if shallow.is_err() {
        // Servers that refuse to serve a commit by id still serve it as part of a full fetch.
        run_git(
            url,
            Some(dest),
            &[
                "fetch",
                "-q",
                "--no-tags",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ],
        )?;
    }
    run_git(
        url,
        Some(dest),
        &["checkout", "-q", "--detach", &resolved.commit],
    )?;
    if dest.join(".gitmodules").exists() {
        run_git(
            url,
            Some(dest),
            &[
                "submodule",
                "update",
                "-q",
                "--init",
                "--recursive",
                "--depth=1",
            ],
        )?;
    }
    if !keep_git_dir {
        let git_dir = dest.join(".git");
        std::fs::remove_dir_all(&git_dir).map_err(|source| GitError::Io {
            remote: url.to_string(),
            path: git_dir,
            source,
        })?;
    }
    Ok(())
}

/// Runs `git ARGS` (in `dir`, if given) isolated from the host's git configuration; returns
/// stdout.
fn run_git(url: &str, dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command
        .args([
            "-c",
            "advice.detachedHead=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ASKPASS", "true")
        .env("SSH_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    let output = command.output().map_err(|source| GitError::Spawn {
        remote: url.to_string(),
        source,
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.trim().lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
        return Err(GitError::Command {
            remote: url.to_string(),
            command: args.join(" "),
            stderr: tail,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with two commits, a branch `dev` and tags (light `v1`, annotated `v2`).
    fn repo() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(&path)
                .args(["-c", "user.name=t", "-c", "user.email=t@e"])
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(out.status.success(), "{:?}", out);
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("a.txt"), "one\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "one"]);
        let first = git(&["rev-parse", "HEAD"]);
        git(&["tag", "v1"]);
        git(&["branch", "dev"]);
        std::fs::write(dir.path().join("a.txt"), "two\n").unwrap();
        git(&["commit", "-q", "-am", "two"]);
        git(&["tag", "-a", "v2", "-m", "two"]);
        let second = git(&["rev-parse", "HEAD"]);
        (dir, first, second)
    }

    #[test]
    fn refs_resolve_like_git() {
        let (dir, first, second) = repo();
        let url = format!("file://{}", dir.path().display());
        assert_eq!(resolve_commit(&url, None).unwrap().commit, second);
        assert_eq!(resolve_commit(&url, Some("v1")).unwrap().commit, first);
        let v2 = resolve_commit(&url, Some("v2")).unwrap();
        assert_eq!(
            (v2.commit.as_str(), v2.fetch.as_str()),
            (second.as_str(), "refs/tags/v2")
        );
        assert_eq!(resolve_commit(&url, Some("dev")).unwrap().commit, first);
        assert_eq!(resolve_commit(&url, Some(&first)).unwrap().fetch, first);
        let e = resolve_commit(&url, Some("nope")).unwrap_err();
        assert!(matches!(e, GitError::RefNotFound { .. }), "{e}");
        assert!(verify_checksum(&url, &first, &first[..10]).is_ok());
        assert!(verify_checksum(&url, &first, &second[..10]).is_err());
    }

    #[test]
    fn checkout_by_tag_and_by_commit() {
        let (dir, first, _) = repo();
        let url = format!("file://{}", dir.path().display());
        let out = tempfile::tempdir().unwrap();
        checkout(
            &url,
            &resolve_commit(&url, Some("v2")).unwrap(),
            out.path(),
            false,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("a.txt")).unwrap(),
            "two\n"
        );
        assert!(!out.path().join(".git").exists());
        let out = tempfile::tempdir().unwrap();
        checkout(
            &url,
            &resolve_commit(&url, Some(&first)).unwrap(),
            out.path(),
            true,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("a.txt")).unwrap(),
            "one\n"
        );
        assert!(out.path().join(".git/HEAD").exists());
        let missing = "0".repeat(40);
        let resolved = ResolvedRef {
            commit: missing.clone(),
            fetch: missing,
        };
        let e = checkout(&url, &resolved, tempfile::tempdir().unwrap().path(), false).unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
    }
}
