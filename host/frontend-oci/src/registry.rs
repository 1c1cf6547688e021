//! Registry traffic for frontends: push an artifact, resolve a reference to its checked
//! manifest and config, fetch the component into the content store.

use std::io::Write as _;

use futures::StreamExt as _;
use hoist_frontend_host::WorldInfo;
use hoist_source::image::{
    parse_reference, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use hoist_source::RegistryOptions;
use hoist_store::{ContentStore, Digest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::artifact::{self, Manifest, WasmConfig, MANIFEST_MEDIA_TYPE, TITLE_ANNOTATION};
use crate::{Error, MAX_COMPONENT_BYTES, MAX_CONFIG_BYTES};

/// Talks to registries about frontends.
#[derive(Debug, Clone, Default)]
pub struct FrontendRegistry {
    opts: RegistryOptions,
}

/// What a push wrote.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pushed to, normalised and pinned (`host/repo:tag@sha256:…`).
    pub reference: String,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The component's digest.
    pub component_digest: Digest,
    /// The component's size.
    pub size: u64,
    /// The `hoist:frontend` version it targets.
    pub world_version: String,
}

/// The component layer of a resolved artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The component's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its file name (the title annotation), if any.
    pub title: Option<String>,
}

/// A reference resolved to a checked artifact; the component is not downloaded yet.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference as normalised (`docker.io/…` added to short names).
    pub reference: String,
    /// Pinned: the reference with the manifest digest.
    pub pinned: String,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The digest of what the reference itself names: the manifest, or the index listing it.
    pub named_digest: Digest,
    /// The manifest body as fetched.
    pub manifest: Vec<u8>,
    /// The config.
    pub config: WasmConfig,
    /// The component layer.
    pub layer: LayerInfo,
    /// The world from the config, when it lists one.
    pub world: Option<WorldInfo>,
}

impl FrontendRegistry {
    /// A registry client using `opts` (plain-HTTP hosts, credentials).
    pub fn new(opts: RegistryOptions) -> FrontendRegistry {
        FrontendRegistry { opts }
    }

    /// The registry settings.
    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    fn client(&self, reference: &str) -> Result<(Reference, Client, RegistryAuth, String), Error> {
        let parsed = parse_reference(reference)?;
        let (client, auth) = self.opts.client_for(&parsed)?;
        let host = parsed.resolve_registry().to_string();
        Ok((parsed, client, auth, host))
    }

    /// Publishes component `bytes` (file name `title`) as a Wasm OCI artifact at `reference`.
    pub async fn push(&self, reference: &str, bytes: &[u8], title: &str) -> Result<Pushed, Error> {
        let built = artifact::build(bytes, title, chrono::Utc::now())?;
        let (parsed, client, auth, host) = self.client(reference)?;
        let name = parsed.whole();
        let registry_err = |e| Error::Registry(hoist_source::Error::from_registry(&name, &host, e));
        client
            .auth(&parsed, &auth, RegistryOperation::Push)
            .await
            .map_err(registry_err)?;
        client
            .push_blob(&parsed, bytes.to_vec(), built.layer_digest.as_str())
            .await
            .map_err(registry_err)?;
        client
            .push_blob(&parsed, built.config.clone(), built.config_digest.as_str())
            .await
            .map_err(registry_err)?;
        let content_type = http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE);
        client
            .push_manifest_raw(&parsed, built.manifest.clone(), content_type)
            .await
            .map_err(registry_err)?;
        Ok(Pushed {
            reference: pinned(&parsed, &built.manifest_digest),
            manifest_digest: built.manifest_digest,
            component_digest: built.layer_digest,
            size: bytes.len() as u64,
            world_version: built.world.version,
        })
    }

    /// The digest `reference` names now (one HEAD request): the manifest, or the index listing
    /// it, as [`Resolved::named_digest`] records it.
    pub async fn named_digest(&self, reference: &str) -> Result<Digest, Error> {
        let (parsed, client, auth, host) = self.client(reference)?;
        let name = parsed.whole();
        let digest = client
            .fetch_manifest_digest(&parsed, &auth)
            .await
            .map_err(|e| Error::Registry(hoist_source::Error::from_registry(&name, &host, e)))?;
        digest.parse().map_err(|e| Error::InvalidArtifact {
            reference: name,
            reason: format!("manifest digest {digest:?}: {e}"),
        })
    }

    /// Resolves `reference` to its manifest and config, checking both; the component itself is
    /// not downloaded (see [`FrontendRegistry::fetch`]).
    pub async fn resolve(&self, reference: &str) -> Result<Resolved, Error> {
        let (parsed, client, auth, host) = self.client(reference)?;
        let name = parsed.whole();
        let registry_err = |e| Error::Registry(hoist_source::Error::from_registry(&name, &host, e));
        let accept = [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ];
        let mut current = parsed.clone();
        let mut named_digest = None;
        // An index may list the component for `wasm/wasip2`; one level is all a publisher uses.
        for _ in 0..2 {
            let (body, digest) = client
                .pull_manifest_raw(&current, &auth, &accept)
                .await
                .map_err(registry_err)?;
            let actual = Digest::of(&body);
            if digest != actual.as_str() {
                return Err(Error::Registry(hoist_source::Error::DigestMismatch {
                    reference: current.whole(),
                    expected: digest,
                    actual: actual.to_string(),
                }));
            }
            let named_digest = named_digest.get_or_insert_with(|| actual.clone()).clone();
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidArtifact {
                    reference: name.clone(),
                    reason: format!("manifest: {e}"),
                })?;
            if value.get("manifests").is_some() {
                let chosen = wasm_entry(&name, &value)?;
                current = parsed.clone_with_digest(chosen);
                continue;
            }
            let manifest = Manifest::parse(&name, &body)?;
            let layer = manifest.wasm_layer(&name)?.clone();
            let config_bytes = fetch_small(
                &client,
                &current,
                &name,
                &host,
                &manifest.config.digest,
                manifest.config.size,
            )
            .await?;
            let config = WasmConfig::parse(&name, &config_bytes)?;
            let world = config.check(&name)?;
            let layer_digest: Digest =
                layer.digest.parse().map_err(|e| Error::InvalidArtifact {
                    reference: name.clone(),
                    reason: format!("layer digest: {e}"),
                })?;
            if layer.size > MAX_COMPONENT_BYTES {
                return Err(Error::TooLarge {
                    reference: name,
                    what: "component",
                    size: layer.size,
                    limit: MAX_COMPONENT_BYTES,
                });
            }
            return Ok(Resolved {
                pinned: pinned(&parsed, &actual),
                reference: name,
                manifest_digest: actual,
                named_digest,
                manifest: body.to_vec(),
                config,
                layer: LayerInfo {
                    digest: layer_digest,
                    size: layer.size,
                    title: layer.annotations.get(TITLE_ANNOTATION).cloned(),
                },
                world,
            });
        }
        Err(Error::InvalidArtifact {
            reference: name,
            reason: "indexes nested too deeply".into(),
        })
    }

    /// Downloads the component of `resolved` into `content` unless it is there already;
    /// returns its digest. Bytes that do not match the manifest store nothing.
    pub async fn fetch(
        &self,
        resolved: &Resolved,
        content: &ContentStore,
    ) -> Result<Digest, Error> {
        let layer = &resolved.layer;
        if content.has(&layer.digest) {
            return Ok(layer.digest.clone());
        }
        let (parsed, client, auth, host) = self.client(&resolved.pinned)?;
        let name = resolved.reference.clone();
        client.store_auth_if_needed(&host, &auth).await;
        let mut stream = client
            .pull_blob_stream(&parsed, layer.digest.as_str())
            .await
            .map_err(|e| Error::Registry(hoist_source::Error::from_registry(&name, &host, e)))?;
        let store_err = |source| Error::Store {
            reference: name.clone(),
            source,
        };
        let mut writer = content.writer().map_err(store_err)?;
        let mut received: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::Registry(hoist_source::Error::from_registry(
                    &name,
                    &host,
                    oci_client::errors::OciDistributionError::IoError(e),
                ))
            })?;
            received += chunk.len() as u64;
            if received > layer.size {
                return Err(size_mismatch(&name, layer, received));
            }
            writer.write_all(&chunk).map_err(|e| {
                store_err(hoist_store::Error::Io {
                    op: "write",
                    path: content.root().join("ingest"),
                    source: e,
                })
            })?;
        }
        if received != layer.size {
            return Err(size_mismatch(&name, layer, received));
        }
        writer.commit(Some(&layer.digest)).map_err(|e| match e {
            hoist_store::Error::DigestMismatch { expected, actual } => {
                Error::Registry(hoist_source::Error::DigestMismatch {
                    reference: name.clone(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                })
            }
            other => store_err(other),
        })?;
        Ok(layer.digest.clone())
    }
}

fn size_mismatch(reference: &str, layer: &LayerInfo, actual: u64) -> Error {
    Error::Registry(hoist_source::Error::SizeMismatch {
        reference: reference.to_string(),
        digest: layer.digest.clone(),
        expected: layer.size,
        actual,
    })
}

/// `host/repo:tag@digest` for a parsed reference and the manifest digest it resolved to.
fn pinned(parsed: &Reference, digest: &Digest) -> String {
    match parsed.tag() {
        Some(tag) => format!(
            "{}/{}:{tag}@{digest}",
            parsed.registry(),
            parsed.repository()
        ),
        None => format!("{}/{}@{digest}", parsed.registry(), parsed.repository()),
    }
}

/// The index entry for `wasm/wasip2` (or the only entry of an index without platforms).
fn wasm_entry(reference: &str, index: &serde_json::Value) -> Result<String, Error> {
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let platform_of = |e: &serde_json::Value| {
        (
            e["platform"]["os"].as_str().unwrap_or("").to_string(),
            e["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    let chosen = entries
        .iter()
        .find(|e| platform_of(e) == ("wasip2".into(), "wasm".into()))
        .or_else(|| match entries.as_slice() {
            [only] if only.get("platform").is_none() => Some(only),
            _ => None,
        });
    match chosen.and_then(|e| e["digest"].as_str()) {
        Some(d) => Ok(d.to_string()),
        None => {
            let platforms: Vec<String> = entries
                .iter()
                .map(|e| {
                    let (os, arch) = platform_of(e);
                    format!("{os}/{arch}")
                })
                .collect();
            Err(Error::NotAFrontend {
                reference: reference.into(),
                reason: format!(
                    "it is an index of {} (a multi-platform container image?), with no wasm/wasip2 entry",
                    platforms.join(", ")
                ),
            })
        }
    }
}

/// Fetches a small blob (the config) into memory, checking its size and digest.
async fn fetch_small(
    client: &Client,
    reference: &Reference,
    name: &str,
    host: &str,
    digest: &str,
    size: u64,
) -> Result<Vec<u8>, Error> {
    if size > MAX_CONFIG_BYTES {
        return Err(Error::TooLarge {
            reference: name.into(),
            what: "config",
            size,
            limit: MAX_CONFIG_BYTES,
        });
    }
    let map = |e| Error::Registry(hoist_source::Error::from_registry(name, host, e));
    let mut stream = client
        .pull_blob_stream(reference, digest)
        .await
        .map_err(map)?;
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| map(oci_client::errors::OciDistributionError::IoError(e)))?;
        data.extend_from_slice(&chunk);
        if data.len() as u64 > MAX_CONFIG_BYTES {
            return Err(Error::TooLarge {
                reference: name.into(),
                what: "config",
                size: data.len() as u64,
                limit: MAX_CONFIG_BYTES,
            });
        }
    }
    let actual = Digest::of(&data);
    if actual.as_str() != digest {
        return Err(Error::Registry(hoist_source::Error::DigestMismatch {
            reference: name.into(),
            expected: digest.into(),
            actual: actual.to_string(),
        }));
    }
    Ok(data)
}
