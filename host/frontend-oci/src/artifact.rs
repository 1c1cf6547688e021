//! The CNCF Wasm OCI artifact layout: the config and manifest documents, built and checked.

use std::collections::BTreeMap;

use hoist_frontend_host::WorldInfo;
use hoist_store::Digest;

use crate::component::ComponentInfo;
use crate::Error;

/// The OCI image manifest media type the artifact uses.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of a Wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the one layer: the component itself.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The annotation naming the layer's file.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// `architecture` of a Wasm artifact.
pub const ARCHITECTURE: &str = "wasm";
/// `os` of a component artifact (`wasip1` is a core module).
pub const OS: &str = "wasip2";

/// The config blob of a Wasm artifact (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When the artifact was made (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    #[serde(default)]
    pub architecture: String,
    /// `wasip2` for a component.
    #[serde(default)]
    pub os: String,
    /// The digests of the layers, in order.
    #[serde(default)]
    pub layer_digests: Vec<String>,
    /// The component's world; other tools may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Annotations (the layer's title).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest, as far as a Wasm artifact uses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json` (optional in the wild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers; exactly one `application/wasm` for a frontend.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A built artifact: the documents to push with the component.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest JSON.
    pub manifest: Vec<u8>,
    /// Its digest.
    pub manifest_digest: Digest,
    /// The config JSON.
    pub config: Vec<u8>,
    /// Its digest.
    pub config_digest: Digest,
    /// The component's digest.
    pub layer_digest: Digest,
    /// The world the component targets.
    pub world: WorldInfo,
}

/// Builds the manifest and config for component `bytes`, titled `title`, made at `created`.
///
/// The component must target a contract version this hoist serves: publishing something no
/// hoist can run is refused here rather than at someone's build.
pub fn build(
    bytes: &[u8],
    title: &str,
    created: chrono::DateTime<chrono::Utc>,
) -> Result<Built, Error> {
    let info = crate::component::describe(bytes)?;
    let world = hoist_frontend_host::check_world_names(info.imports.clone(), info.exports.clone())
        .map_err(|source| Error::Unsupported {
            reference: title.to_string(),
            source,
        })?;
    let layer_digest = Digest::of(bytes);
    let config = WasmConfig {
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        author: None,
        architecture: ARCHITECTURE.into(),
        os: OS.into(),
        layer_digests: vec![layer_digest.to_string()],
        component: Some(ComponentInfo {
            target: Some(format!("hoist:frontend/frontend@{}", world.version)),
            ..info
        }),
    };
    let config = to_json(&config);
    let config_digest = Digest::of(&config);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: layer_digest.to_string(),
            size: bytes.len() as u64,
            annotations: BTreeMap::from([(TITLE_ANNOTATION.to_string(), title.to_string())]),
        }],
        annotations: BTreeMap::from([(
            "org.opencontainers.image.created".to_string(),
            created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )]),
    };
    let manifest = to_json(&manifest);
    Ok(Built {
        manifest_digest: Digest::of(&manifest),
        manifest,
        config,
        config_digest,
        layer_digest,
        world,
    })
}

/// Serialises a document (struct fields in declaration order, maps sorted: stable bytes).
fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail: no maps with non-string keys, no I/O.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Manifest {
    /// Parses a manifest body fetched for `reference`.
    pub fn parse(reference: &str, body: &[u8]) -> Result<Manifest, Error> {
        serde_json::from_slice(body).map_err(|e| Error::InvalidArtifact {
            reference: reference.into(),
            reason: format!("manifest: {e}"),
        })
    }

    /// The component layer, after checking this is a Wasm artifact with exactly one.
    pub fn wasm_layer(&self, reference: &str) -> Result<&Descriptor, Error> {
        let config_type = self.config.media_type.as_str();
        if config_type != CONFIG_MEDIA_TYPE {
            let what = if config_type.contains("image.config")
                || config_type.contains("container.image")
            {
                "it is a container image"
            } else {
                "it is an artifact of another kind"
            };
            return Err(Error::NotAFrontend {
                reference: reference.into(),
                reason: format!(
                    "{what} (config media type {config_type}); a frontend is a Wasm OCI artifact with config \
                     {CONFIG_MEDIA_TYPE}, published with `hoist frontend push`"
                ),
            });
        }
        let wasm: Vec<&Descriptor> = self
            .layers
            .iter()
            .filter(|l| l.media_type == LAYER_MEDIA_TYPE)
            .collect();
        match wasm.as_slice() {
            [one] => Ok(one),
            [] => Err(Error::InvalidArtifact {
                reference: reference.into(),
                reason: format!("no {LAYER_MEDIA_TYPE} layer"),
            }),
            many => Err(Error::InvalidArtifact {
                reference: reference.into(),
                reason: format!(
                    "{} {LAYER_MEDIA_TYPE} layers, a frontend has exactly one",
                    many.len()
                ),
            }),
        }
    }
}

impl WasmConfig {
    /// Parses a config blob fetched for `reference`.
    pub fn parse(reference: &str, body: &[u8]) -> Result<WasmConfig, Error> {
        serde_json::from_slice(body).map_err(|e| Error::InvalidArtifact {
            reference: reference.into(),
            reason: format!("config: {e}"),
        })
    }

    /// Checks the config describes a component for a contract version hoist serves; returns
    /// its world when the config lists it (tools may leave `component` out, then the host
    /// checks the bytes at load time).
    pub fn check(&self, reference: &str) -> Result<Option<WorldInfo>, Error> {
        if self.os == "wasip1" {
            return Err(Error::NotAFrontend {
                reference: reference.into(),
                reason: "it is a core module for wasip1; a frontend is a component (os wasip2)"
                    .into(),
            });
        }
        if !self.architecture.is_empty() && self.architecture != ARCHITECTURE {
            return Err(Error::InvalidArtifact {
                reference: reference.into(),
                reason: format!(
                    "architecture {:?}, expected {ARCHITECTURE:?}",
                    self.architecture
                ),
            });
        }
        let Some(component) = &self.component else {
            return Ok(None);
        };
        hoist_frontend_host::check_world_names(component.imports.clone(), component.exports.clone())
            .map(Some)
            .map_err(|source| Error::Unsupported {
                reference: reference.into(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(0, 0).unwrap()
    }

    #[test]
    fn built_artifact_has_the_cncf_layout() {
        let bytes = hoist_builtin_frontends::DOCKERFILE;
        let built = build(bytes, "dockerfile.wasm", epoch()).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&built.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], built.config_digest.as_str());
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(manifest["layers"][0]["size"], bytes.len());
        assert_eq!(manifest["layers"][0]["digest"], Digest::of(bytes).as_str());
        assert_eq!(
            manifest["layers"][0]["annotations"][TITLE_ANNOTATION],
            "dockerfile.wasm"
        );

        let config: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(
            config["layerDigests"],
            serde_json::json!([Digest::of(bytes).as_str()])
        );
        let exports = config["component"]["exports"].as_array().unwrap();
        assert!(
            exports
                .iter()
                .any(|e| e.as_str().unwrap().starts_with("hoist:frontend/builder@1.")),
            "{config}"
        );
        assert!(
            config["component"]["imports"].as_array().unwrap().len() > 3,
            "{config}"
        );
        assert_eq!(built.world.version, "1.0.0");
        // Same input, same bytes: pushes are reproducible.
        assert_eq!(
            build(bytes, "dockerfile.wasm", epoch())
                .unwrap()
                .manifest_digest,
            built.manifest_digest
        );
    }

    #[test]
    fn container_images_are_not_frontends() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":2},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:01","size":3}]}"#;
        let m = Manifest::parse("r/img:1", body).unwrap();
        let err = m.wasm_layer("r/img:1").unwrap_err().to_string();
        assert!(
            err.contains("r/img:1 is not a WebAssembly frontend: it is a container image"),
            "{err}"
        );
    }

    #[test]
    fn configs_from_other_tools_and_other_worlds() {
        // As `wkg oci push` writes it: no component section is fine (checked at load).
        let wkg = br#"{"created":"2024-05-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":["sha256:ab"]}"#;
        assert_eq!(
            WasmConfig::parse("r", wkg).unwrap().check("r").unwrap(),
            None
        );
        let future = br#"{"created":"x","architecture":"wasm","os":"wasip2","layerDigests":[],
            "component":{"exports":["hoist:frontend/builder@2.0.0"],"imports":["hoist:frontend/gateway@2.0.0"]}}"#;
        let err = WasmConfig::parse("r/f:2", future)
            .unwrap()
            .check("r/f:2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hoist:frontend@2.0.0") && err.contains("serves hoist:frontend@1.x"),
            "{err}"
        );
        let module = br#"{"architecture":"wasm","os":"wasip1"}"#;
        assert!(matches!(
            WasmConfig::parse("r", module).unwrap().check("r"),
            Err(Error::NotAFrontend { .. })
        ));
    }
}
