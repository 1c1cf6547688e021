//! Parsed view of source identifiers (`docker-image://`, `local://`, `oci-layout://`, git, http).

use serde::{Deserialize, Serialize};

use crate::types::SourceOp;
use crate::{Error, Reason};

/// The schemes a source identifier may use.
pub const SOURCE_SCHEMES: &[&str] = &[
    "docker-image",
    "local",
    "oci-layout",
    "git",
    "http",
    "https",
];

/// A source identifier, parsed by scheme. Nothing here touches the network or disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `docker-image://REF`: an image reference, not yet normalised.
    Image {
        /// The reference as written, e.g. `docker.io/library/alpine:3.20`.
        reference: String,
    },
    /// `local://NAME`: a named local context sent by the client.
    Local {
        /// Context name, e.g. `context` or `dockerfile`.
        name: String,
    },
    /// `oci-layout://PATH@sha256:DIGEST`: an image in an OCI layout directory.
    OciLayout {
        /// Layout path (or store id) before the `@`.
        path: String,
        /// Manifest digest after the `@`, `sha256:<hex>`.
        digest: crate::Digest,
    },
    /// `git://REMOTE[#REF]`: a git repository.
    Git {
        /// Remote, without the `git://` scheme.
        remote: String,
        /// Ref (branch, tag, commit) after `#`, if any.
        reference: Option<String>,
    },
    /// `http://…` or `https://…`: a file downloaded over HTTP(S).
    Http {
        /// The whole URL including its scheme.
        url: String,
    },
}

impl SourceOp {
    /// The scheme of `identifier` (text before `://`), if it has one.
    pub fn scheme(&self) -> Option<&str> {
        self.identifier.split_once("://").map(|(s, _)| s)
    }

    /// Parses `identifier` by scheme; an unknown scheme or an empty body is an error.
    pub fn parse(&self) -> Result<Source, Error> {
        let id = &self.identifier;
        let bad = |detail: &str| Error::Source {
            reason: Reason::BadIdentifier {
                identifier: truncate(id),
                detail: detail.to_string(),
            },
        };
        let Some((scheme, rest)) = id.split_once("://") else {
            return Err(bad("missing scheme (expected e.g. docker-image://REF)"));
        };
        if rest.is_empty() {
            return Err(bad("nothing after the scheme"));
        }
        match scheme {
            "docker-image" => Ok(Source::Image {
                reference: rest.to_string(),
            }),
            "local" => Ok(Source::Local {
                name: rest.to_string(),
            }),
            "oci-layout" => {
                let (path, digest) = rest
                    .rsplit_once('@')
                    .ok_or_else(|| bad("expected PATH@sha256:DIGEST"))?;
                if path.is_empty() {
                    return Err(bad("empty layout path"));
                }
                let digest = digest
                    .parse()
                    .map_err(|_| bad("invalid digest after '@'"))?;
                Ok(Source::OciLayout {
                    path: path.to_string(),
                    digest,
                })
            }
            "git" => {
                let (remote, reference) = match rest.split_once('#') {
                    Some((r, f)) => (r, Some(f.to_string()).filter(|f| !f.is_empty())),
                    None => (rest, None),
                };
                if remote.is_empty() {
                    return Err(bad("empty git remote"));
                }
                Ok(Source::Git {
                    remote: remote.to_string(),
                    reference,
                })
            }
            "http" | "https" => Ok(Source::Http { url: id.clone() }),
            other => Err(Error::Source {
                reason: Reason::UnknownScheme {
                    identifier: truncate(id),
                    scheme: truncate(other),
                },
            }),
        }
    }
}

/// Identifiers in errors are cut to a readable length (they are frontend-controlled).
fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
