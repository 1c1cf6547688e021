//! The providers: each recognizes one kind of app from its files and drafts its build.
//!
//! A provider only looks at the [`SourceTree`]; the order they are tried in, the Procfile, the
//! start command and the user's settings are applied around it (`crate::make_plan`).

mod go;
mod node;
mod procfile;
mod python;
mod static_site;

use std::collections::BTreeMap;

use crate::plan::{Decision, Layer, Step};
use crate::tree::SourceTree;
use crate::Error;

/// A kind of app this frontend can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    /// Python: pip, uv or poetry into a virtual environment.
    Python,
    /// Node.js: npm, pnpm or yarn.
    Node,
    /// Go: one static binary.
    Go,
    /// Static files served by busybox httpd.
    Static,
    /// Any app a Procfile (or start.sh) starts, copied as is.
    Procfile,
}

/// The order providers are tried in when nothing overrides it: first match wins.
pub const DEFAULT_ORDER: [ProviderId; 5] = [
    ProviderId::Python,
    ProviderId::Node,
    ProviderId::Go,
    ProviderId::Static,
    ProviderId::Procfile,
];

/// Every context path detection and planning read: the component transfers only these.
pub const DETECTION_FILES: &[&str] = &[
    "project.toml",
    "Procfile",
    "start.sh",
    // Python
    "requirements.txt",
    "requirements.lock",
    "pyproject.toml",
    "uv.lock",
    "poetry.lock",
    ".python-version",
    "runtime.txt",
    "app.py",
    "main.py",
    "manage.py",
    // Node.js
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    ".nvmrc",
    ".node-version",
    "server.js",
    "index.js",
    "app.js",
    // Go
    "go.mod",
    "go.sum",
    "main.go",
    // Static sites
    "index.html",
    "public/index.html",
];

impl ProviderId {
    /// The provider's id in plans and settings.
    pub fn name(self) -> &'static str {
        match self {
            ProviderId::Python => "python",
            ProviderId::Node => "node",
            ProviderId::Go => "go",
            ProviderId::Static => "static",
            ProviderId::Procfile => "procfile",
        }
    }

    /// Parses an id as `project.toml` or `BP_PROVIDERS` write it: `python`, `hoist/python`,
    /// or a buildpack id whose last segment names the language (`heroku/nodejs`).
    pub fn parse(id: &str) -> Option<ProviderId> {
        let last = id.rsplit('/').next().unwrap_or(id).to_ascii_lowercase();
        Some(match last.as_str() {
            "python" => ProviderId::Python,
            "node" | "nodejs" | "node.js" => ProviderId::Node,
            "go" | "golang" => ProviderId::Go,
            "static" | "staticfile" | "static-site" => ProviderId::Static,
            "procfile" | "shell" => ProviderId::Procfile,
            _ => return None,
        })
    }

    /// The ids [`ProviderId::parse`] knows, for error messages.
    pub fn known() -> String {
        DEFAULT_ORDER.map(ProviderId::name).join(", ")
    }

    /// The files whose presence makes this provider match, for error messages.
    pub fn looked_for(self) -> &'static str {
        match self {
            ProviderId::Python => python::LOOKED_FOR,
            ProviderId::Node => node::LOOKED_FOR,
            ProviderId::Go => go::LOOKED_FOR,
            ProviderId::Static => static_site::LOOKED_FOR,
            ProviderId::Procfile => procfile::LOOKED_FOR,
        }
    }

    /// Whether the tree is an app of this kind; `Some` names the files that say so.
    pub fn detect(self, tree: &dyn SourceTree) -> Option<String> {
        match self {
            ProviderId::Python => python::detect(tree),
            ProviderId::Node => node::detect(tree),
            ProviderId::Go => go::detect(tree),
            ProviderId::Static => static_site::detect(tree),
            ProviderId::Procfile => procfile::detect(tree),
        }
    }

    /// Drafts the build of a tree this provider detected.
    pub fn draft(self, tree: &dyn SourceTree) -> Result<Draft, Error> {
        match self {
            ProviderId::Python => python::draft(tree),
            ProviderId::Node => node::draft(tree),
            ProviderId::Go => go::draft(tree),
            ProviderId::Static => static_site::draft(tree),
            ProviderId::Procfile => procfile::draft(tree),
        }
    }
}

/// What a provider contributes to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Choices made (versions, package manager), with reasons.
    pub decisions: Vec<Decision>,
    /// The default builder image; `None` when there is nothing to build.
    pub builder_image: Option<String>,
    /// The default run base image.
    pub run_image: String,
    /// Build steps.
    pub steps: Vec<Step>,
    /// Dependency layers of the run image.
    pub layers: Vec<Layer>,
    /// Context paths that are never part of the app (besides version-control directories).
    pub source_excludes: Vec<String>,
    /// The app layer.
    pub app: Layer,
    /// Runtime environment.
    pub env: BTreeMap<String, String>,
    /// Runtime `PATH` additions.
    pub path: Vec<String>,
    /// Ports.
    pub ports: Vec<u16>,
    /// The start command when no Procfile or setting gives one, with its reason.
    pub default_start: Option<(String, String)>,
    /// Where a start command was looked for, for the error when there is none.
    pub start_looked_for: &'static str,
    /// An example start command for this kind of app.
    pub start_example: &'static str,
}

/// The whole context (as filtered by the plan's `source`) as the app layer.
pub(crate) fn context_app_layer() -> Layer {
    Layer {
        from: "context".into(),
        src: "/".into(),
        dest: crate::plan::APP_DIR.into(),
    }
}

/// Context paths that never belong in an image.
pub const ALWAYS_EXCLUDED: &[&str] = &[".git", ".hg", ".svn"];

/// `patterns` as owned strings.
pub(crate) fn strings(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|s| s.to_string()).collect()
}

/// The files among `candidates` that exist, comma-joined, or `None`.
pub(crate) fn present(tree: &dyn SourceTree, candidates: &[&str]) -> Option<String> {
    let found: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|f| tree.has_file(f))
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}

/// `major.minor` of a version such as `3.12.1`, `v20.1.0` or `1.22`; `None` if it has no
/// leading number.
pub(crate) fn major_minor(version: &str) -> Option<String> {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts
        .next()
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))?;
    match parts.next() {
        Some(minor) if !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()) => {
            Some(format!("{major}.{minor}"))
        }
        _ => Some(major.to_string()),
    }
}

/// A string map from pairs.
pub(crate) fn env<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_buildpack_ids_too() {
        assert_eq!(ProviderId::parse("python"), Some(ProviderId::Python));
        assert_eq!(ProviderId::parse("heroku/nodejs"), Some(ProviderId::Node));
        assert_eq!(
            ProviderId::parse("paketo-buildpacks/go"),
            Some(ProviderId::Go)
        );
        assert_eq!(
            ProviderId::parse("hoist/Procfile"),
            Some(ProviderId::Procfile)
        );
        assert_eq!(ProviderId::parse("ruby"), None);
    }

    #[test]
    fn versions_shorten_to_major_minor() {
        assert_eq!(major_minor("3.12.1").as_deref(), Some("3.12"));
        assert_eq!(major_minor("v20").as_deref(), Some("20"));
        assert_eq!(major_minor("1.22").as_deref(), Some("1.22"));
        assert_eq!(major_minor("lts/*"), None);
    }
}
