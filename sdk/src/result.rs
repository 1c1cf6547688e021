//! What a frontend returns: results per platform, image config, metadata.

use serde_json::{json, Map, Value};

use crate::bindings::exports::hoist::frontend::builder;
use crate::client::Ref;
use crate::options::format_platform;
use crate::types::Platform;
use crate::Error;

/// The result of a build: one filesystem (and image config) per platform plus metadata.
#[derive(Debug, Default)]
pub struct BuildResult {
    platforms: Vec<(Option<Platform>, Ref, Option<String>)>,
    metadata: Vec<(String, Vec<u8>)>,
}

impl BuildResult {
    /// An empty result (add platforms with [`BuildResult::with_platform`]).
    pub fn new() -> BuildResult {
        BuildResult::default()
    }

    /// A result for the host's platform: `reference` and its image config JSON.
    pub fn single(reference: Ref, image_config: Option<String>) -> BuildResult {
        BuildResult::new().with_platform(None, reference, image_config)
    }

    /// Adds the result for `platform`.
    pub fn with_platform(
        mut self,
        platform: Option<Platform>,
        reference: Ref,
        image_config: Option<String>,
    ) -> BuildResult {
        self.platforms.push((platform, reference, image_config));
        self
    }

    /// Adds a metadata entry (e.g. `result.json` for a subrequest's answer).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    pub(crate) fn into_wit(self) -> builder::BuildResult {
        builder::BuildResult {
            platforms: self
                .platforms
                .into_iter()
                .map(|(platform, r, image_config)| builder::PlatformResult {
                    platform,
                    reference: r.into_inner(),
                    image_config,
                })
                .collect(),
            metadata: self.metadata,
        }
    }
}

/// An OCI image config (the `config` object plus platform and history), edited as JSON so
/// fields this type does not know survive a round trip from a base image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    /// Everything but `config`.
    doc: Map<String, Value>,
    /// The `config` object (`Env`, `Cmd`, …).
    config: Map<String, Value>,
}

impl ImageConfig {
    /// An empty config for `platform` (`linux/amd64` when `None`).
    pub fn new(platform: Option<&Platform>) -> ImageConfig {
        let p = platform.cloned().unwrap_or(Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        });
        let mut doc = Map::new();
        doc.insert("architecture".into(), json!(p.architecture));
        doc.insert("os".into(), json!(p.os));
        if let Some(v) = p.variant {
            doc.insert("variant".into(), json!(v));
        }
        doc.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
        ImageConfig {
            doc,
            config: Map::new(),
        }
    }

    /// Parses a base image's config JSON (as `resolve_image_config` returns it).
    pub fn parse(config_json: &str) -> Result<ImageConfig, Error> {
        match serde_json::from_str::<Value>(config_json) {
            Ok(Value::Object(mut doc)) => {
                let config = match doc.remove("config") {
                    Some(Value::Object(c)) => c,
                    _ => Map::new(),
                };
                Ok(ImageConfig { doc, config })
            }
            Ok(_) => Err(Error::new("image config is not a JSON object")),
            Err(e) => Err(Error::new(format!("invalid image config JSON: {e}"))),
        }
    }

    fn config(&mut self) -> &mut Map<String, Value> {
        &mut self.config
    }

    /// The `KEY=VALUE` environment.
    pub fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets `key=value` in the environment, replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        let mut env: Vec<String> = self.env();
        let prefix = format!("{key}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{key}={value}"));
        self.config().insert("Env".into(), json!(env));
        self
    }

    /// Sets `Cmd`.
    pub fn set_cmd<S: AsRef<str>>(&mut self, cmd: &[S]) -> &mut Self {
        let cmd: Vec<&str> = cmd.iter().map(AsRef::as_ref).collect();
        self.config().insert("Cmd".into(), json!(cmd));
        self
    }

    /// Sets `Entrypoint`.
    pub fn set_entrypoint<S: AsRef<str>>(&mut self, ep: &[S]) -> &mut Self {
        let ep: Vec<&str> = ep.iter().map(AsRef::as_ref).collect();
        self.config().insert("Entrypoint".into(), json!(ep));
        self
    }

    /// Sets `WorkingDir`.
    pub fn set_working_dir(&mut self, dir: &str) -> &mut Self {
        self.config().insert("WorkingDir".into(), json!(dir));
        self
    }

    /// Sets `User`.
    pub fn set_user(&mut self, user: &str) -> &mut Self {
        self.config().insert("User".into(), json!(user));
        self
    }

    /// Sets one label.
    pub fn set_label(&mut self, key: &str, value: &str) -> &mut Self {
        let labels = self.config().entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Value::Object(m) = labels {
            m.insert(key.into(), json!(value));
        }
        self
    }

    /// Declares an exposed port, e.g. `8080/tcp`.
    pub fn add_exposed_port(&mut self, port: &str) -> &mut Self {
        let ports = self
            .config()
            .entry("ExposedPorts")
            .or_insert_with(|| json!({}));
        if !ports.is_object() {
            *ports = json!({});
        }
        if let Value::Object(m) = ports {
            m.insert(port.into(), json!({}));
        }
        self
    }

    /// The platform the config is for, `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        let s = |k: &str| {
            self.doc
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let variant = self
            .doc
            .get("variant")
            .and_then(Value::as_str)
            .map(str::to_string);
        format_platform(&Platform {
            os: s("os"),
            architecture: s("architecture"),
            variant,
        })
    }

    /// The config as OCI image config JSON.
    pub fn to_json(&self) -> String {
        let mut doc = self.doc.clone();
        doc.insert("config".into(), Value::Object(self.config.clone()));
        Value::Object(doc).to_string()
    }
}
