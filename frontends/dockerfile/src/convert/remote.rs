//! `ADD` sources that are not in the build context: HTTP(S) URLs and git repositories.
//!
//! Which string is which follows BuildKit: a git reference is a `git://`, `ssh://` or scp-like
//! (`user@host:path`) remote, or an `http(s)://` URL whose path ends in `.git`; its fragment is
//! `#REF[:SUBDIR]`. Any other `http(s)://` URL is a file download. A bare `github.com/…` path is
//! indistinguishable from a local path and stays local, as in BuildKit.
//!
//! The states made here are plain source ops with BuildKit's attribute names (`http.checksum`,
//! `git.fullurl`, `git.keepgitdir`, `git.checksum`); the engine fetches them.

use hoist_frontend_sdk::llb::{self, State};

/// What one `ADD` source string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AddSource {
    /// A path in the build context (or a `--from` state).
    Local,
    /// A file downloaded over HTTP(S): the URL.
    Http(String),
    /// A git repository.
    Git(GitRef),
}

/// A parsed git reference (`https://host/repo.git#v1.0:docs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GitRef {
    /// The URL to fetch from, without the fragment.
    pub full_url: String,
    /// The remote as host and path, without scheme or user (`host/repo.git`).
    pub remote: String,
    /// Branch, tag or commit; `None` is the remote's HEAD.
    pub reference: Option<String>,
    /// Directory inside the repository to add, if any (relative, no leading `/`).
    pub subdir: Option<String>,
}

/// Classifies an `ADD` source string.
pub(super) fn classify(src: &str) -> AddSource {
    if let Some(git) = parse_git(src) {
        return AddSource::Git(git);
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        return AddSource::Http(src.to_string());
    }
    AddSource::Local
}

/// Parses a git reference as BuildKit's `gitutil.ParseGitRef` does; `None` when `src` is not one.
fn parse_git(src: &str) -> Option<GitRef> {
    let (url, fragment) = match src.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (src, None),
    };
    let remote = if let Some((scheme, rest)) = url.split_once("://") {
        match scheme {
            "git" | "ssh" => {}
            "http" | "https" if url_path(rest).ends_with(".git") => {}
            _ => return None,
        }
        // `user@` is part of the URL to fetch, not of the remote's name.
        let rest = rest.split_once('@').map_or(
            rest,
            |(user, host)| {
                if user.contains('/') {
                    rest
                } else {
                    host
                }
            },
        );
        rest.to_string()
    } else {
        let (user_host, path) = url.split_once(':')?;
        let (user, host) = user_host.split_once('@')?;
        let plain = |s: &str, extra: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c))
        };
        if !plain(user, "") || !plain(host, ".") || path.is_empty() {
            return None;
        }
        format!("{host}/{}", path.trim_start_matches('/'))
    };
    if remote.is_empty() {
        return None;
    }
    let (reference, subdir) = match fragment {
        Some(f) => match f.split_once(':') {
            Some((r, s)) => (r, s),
            None => (f, ""),
        },
        None => ("", ""),
    };
    let subdir = subdir.trim_matches('/');
    Some(GitRef {
        full_url: url.to_string(),
        remote,
        reference: Some(reference.to_string()).filter(|r| !r.is_empty()),
        subdir: Some(subdir.to_string()).filter(|s| !s.is_empty() && s != "."),
    })
}

/// The path part of `host/path?query` (no query).
fn url_path(rest: &str) -> &str {
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?']).next().unwrap_or(path)
}

/// Checks an `ADD --checksum` value: `ALGO:HEX` with a known algorithm and the right length.
pub(super) fn check_http_checksum(checksum: &str) -> Result<(), String> {
    let (algorithm, hex) = checksum.split_once(':').unwrap_or(("", checksum));
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "invalid checksum {checksum:?}: expected sha256:, sha384: or sha512: and a hex \
                 digest"
            ))
        }
    };
    if hex.len() != length || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid checksum {checksum:?}: a {algorithm} digest is {length} hex digits"
        ));
    }
    Ok(())
}

/// Checks a git `ADD --checksum` value: a commit id (or a prefix of one, at least 7 digits).
pub(super) fn check_git_checksum(checksum: &str) -> Result<(), String> {
    let ok = (7..=64).contains(&checksum.len()) && checksum.chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid checksum {checksum:?} for a git source: expected a commit id"
        ))
    }
}

/// Where in the Dockerfile a remote source is used (its errors point there).
pub(super) struct SourceAt<'a> {
    /// The Dockerfile's name.
    pub file: &'a str,
    /// The instruction's (start, end) lines.
    pub lines: (u32, u32),
}

/// The source state of an HTTP(S) download; the engine names the file (Content-Disposition,
/// else the URL's last path component, else `index`), so copies take `/*` from it.
pub(super) fn http_state(url: &str, checksum: Option<&str>, at: &SourceAt<'_>) -> State {
    let mut source = llb::source(url)
        .description(url.to_string())
        .location(at.file, &[at.lines]);
    if let Some(checksum) = checksum {
        source = source.attr("http.checksum", checksum);
    }
    source.state()
}

/// The source state of a git checkout.
pub(super) fn git_state(
    git: &GitRef,
    keep_git_dir: bool,
    checksum: Option<&str>,
    at: &SourceAt<'_>,
) -> State {
    let identifier = match &git.reference {
        Some(r) => format!("git://{}#{r}", git.remote),
        None => format!("git://{}", git.remote),
    };
    let mut source = llb::source(identifier)
        .attr("git.fullurl", git.full_url.clone())
        .description(match &git.reference {
            Some(r) => format!("{}#{r}", git.full_url),
            None => git.full_url.clone(),
        })
        .location(at.file, &[at.lines]);
    if keep_git_dir {
        source = source.attr("git.keepgitdir", "true");
    }
    if let Some(checksum) = checksum {
        source = source.attr("git.checksum", checksum);
    }
    source.state()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(src: &str) -> GitRef {
        match classify(src) {
            AddSource::Git(g) => g,
            other => panic!("{src} is not git: {other:?}"),
        }
    }

    #[test]
    fn git_references_like_buildkit() {
        let g = git("https://example.com/team/repo.git#v1.2:docs/api");
        assert_eq!(g.full_url, "https://example.com/team/repo.git");
        assert_eq!(g.remote, "example.com/team/repo.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir.as_deref(), Some("docs/api"));
        let g = git("git://127.0.0.1:9418/repo.git");
        assert_eq!(g.remote, "127.0.0.1:9418/repo.git");
        assert_eq!((g.reference, g.subdir), (None, None));
        let g = git("git@github.com:moby/buildkit.git#:frontend");
        assert_eq!(g.full_url, "git@github.com:moby/buildkit.git");
        assert_eq!(g.remote, "github.com/moby/buildkit.git");
        assert_eq!(g.reference, None);
        assert_eq!(g.subdir.as_deref(), Some("frontend"));
        let g = git("ssh://git@host.example/x/y#main");
        assert_eq!(g.remote, "host.example/x/y");
        assert_eq!(g.full_url, "ssh://git@host.example/x/y");
    }

    #[test]
    fn urls_and_local_paths() {
        assert_eq!(
            classify("https://example.com/a/file.tar.gz"),
            AddSource::Http("https://example.com/a/file.tar.gz".into())
        );
        // An http URL is git only with a `.git` path.
        assert_eq!(
            classify("http://example.com/repo#main"),
            AddSource::Http("http://example.com/repo#main".into())
        );
        assert_eq!(classify("github.com/moby/buildkit"), AddSource::Local);
        assert_eq!(classify("src/app.tar"), AddSource::Local);
        assert_eq!(classify("a:b"), AddSource::Local);
        assert_eq!(classify("ftp://x/y"), AddSource::Local);
    }

    #[test]
    fn checksums_are_checked() {
        let hex = "ab".repeat(32);
        assert!(check_http_checksum(&format!("sha256:{hex}")).is_ok());
        assert!(check_http_checksum(&format!("sha512:{hex}{hex}")).is_ok());
        assert!(check_http_checksum(&hex)
            .unwrap_err()
            .contains("expected sha256:"));
        assert!(check_http_checksum("sha256:abc")
            .unwrap_err()
            .contains("64 hex digits"));
        assert!(check_git_checksum("0123abc").is_ok());
        assert!(check_git_checksum("main").is_err());
    }
}
