//! Build options as BuildKit names them, parsed once for the frontend.

use std::collections::BTreeMap;

use crate::types::Platform;
use crate::Error;

/// The options a build was started with (`build-arg:NAME`, `target`, `platform`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    raw: Vec<(String, String)>,
}

impl Options {
    /// Wraps the raw `(key, value)` pairs the host passed to `build`.
    pub fn new(raw: Vec<(String, String)>) -> Options {
        Options { raw }
    }

    /// The raw pairs, in the order given.
    pub fn raw(&self) -> &[(String, String)] {
        &self.raw
    }

    /// The value of `key` (the last one when given twice).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn prefixed(&self, prefix: &str) -> BTreeMap<String, String> {
        self.raw
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect()
    }

    /// Build arguments (`build-arg:NAME`), by name.
    pub fn build_args(&self) -> BTreeMap<String, String> {
        self.prefixed("build-arg:")
    }

    /// One build argument.
    pub fn build_arg(&self, name: &str) -> Option<&str> {
        self.get(&format!("build-arg:{name}"))
    }

    /// Labels to add to the image (`label:NAME`).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.prefixed("label:")
    }

    /// Named contexts (`context:NAME`), by name, e.g. `alpine` → `docker-image://alpine:3`.
    pub fn named_contexts(&self) -> BTreeMap<String, String> {
        self.prefixed("context:")
    }

    /// The stage to build (`target`), if not the last.
    pub fn target(&self) -> Option<&str> {
        self.get("target").filter(|t| !t.is_empty())
    }

    /// The build file name (`filename`), `Dockerfile` by default.
    pub fn filename(&self) -> &str {
        self.get("filename")
            .filter(|f| !f.is_empty())
            .unwrap_or("Dockerfile")
    }

    /// Whether caching is disabled for every op (`no-cache` given with an empty value).
    pub fn no_cache(&self) -> bool {
        self.get("no-cache")
            .is_some_and(|v| v.is_empty() || v == "true")
    }

    /// A subrequest such as `frontend.outline` (`requestid`).
    pub fn request_id(&self) -> Option<&str> {
        self.get("requestid").filter(|r| !r.is_empty())
    }

    /// Target platforms (`platform`, comma-separated); empty means the host's.
    pub fn platforms(&self) -> Result<Vec<Platform>, Error> {
        match self.get("platform") {
            None => Ok(Vec::new()),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(parse_platform)
                .collect(),
        }
    }
}

impl From<Vec<(String, String)>> for Options {
    fn from(raw: Vec<(String, String)>) -> Options {
        Options::new(raw)
    }
}

/// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
pub fn parse_platform(spec: &str) -> Result<Platform, Error> {
    let parts: Vec<&str> = spec.split('/').collect();
    let bad = || Error::new(format!("invalid platform {spec:?}: want os/arch[/variant]"));
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
            Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            })
        }
        _ => Err(bad()),
    }
}

/// Formats a platform as `os/arch[/variant]`.
pub fn format_platform(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{}", p.os, p.architecture, v),
        None => format!("{}/{}", p.os, p.architecture),
    }
}
