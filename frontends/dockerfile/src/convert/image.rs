//! The OCI image config a Dockerfile stage accumulates, with Docker's field names.
//!
//! Unknown fields of a base image's config survive the round trip (`extra`), so nothing a base
//! image declares is dropped on the way to the final image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An empty JSON object, the value type of `ExposedPorts` and `Volumes` entries.
pub type Empty = Map<String, Value>;

/// `config.Healthcheck` (durations in nanoseconds, as Docker stores them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    /// Time a check may take.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Grace period after start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    /// Failures before unhealthy.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `EXPOSE`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `ENV`, as `KEY=VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `ONBUILD` triggers, fired by a later `FROM` of this image.
    #[serde(default, rename = "OnBuild", skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
    /// Fields this type does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The instruction that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Who made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Whether the step left no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// Fields this type does not model (`created`, `author`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OCI image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `MAINTAINER`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The runtime config.
    #[serde(default)]
    pub config: ContainerConfig,
    /// What made each layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields this type does not model (`rootfs` is filled in by the exporter).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Image {
    /// An empty image for a platform (`FROM scratch`).
    pub fn scratch(os: &str, architecture: &str, variant: Option<&str>) -> Image {
        Image {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            config: ContainerConfig {
                env: vec![format!("PATH={DEFAULT_PATH}")],
                ..ContainerConfig::default()
            },
            ..Image::default()
        }
    }

    /// Parses a base image's config JSON.
    pub fn parse(json: &str) -> Result<Image, String> {
        let mut image: Image =
            serde_json::from_str(json).map_err(|e| format!("invalid image config: {e}"))?;
        image.extra.remove("rootfs");
        Ok(image)
    }

    /// The value of an environment variable.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.config
            .env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
    }

    /// Sets an environment variable, keeping its position if it was set.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .config
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e.as_str() == key)
        {
            Some(existing) => *existing = entry,
            None => self.config.env.push(entry),
        }
    }

    /// The environment as (key, value) pairs, in order.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// Records a history entry for an instruction.
    pub fn add_history(&mut self, created_by: String, empty_layer: bool) {
        self.history.push(History {
            created_by,
            comment: HISTORY_COMMENT.to_string(),
            empty_layer,
            extra: Map::new(),
        });
    }

    /// The config as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// The PATH an image without one gets, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The `comment` of history entries this frontend writes.
pub const HISTORY_COMMENT: &str = "hoist.dockerfile.v0";
