//! Images from OCI/Docker v2 registries: resolve a reference to one platform's manifest and
//! config, then pull its layers into the content store.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::{auth, ContentStore, Digest, Error, Platform, Result};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest (schema 2) media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// How many layers are downloaded at once.
const PARALLEL_PULLS: usize = 3;

/// How hoist talks to registries: which hosts are plain HTTP and where credentials live.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`host` or `host:port`) spoken to over plain HTTP; `localhost`, `127.0.0.1`
    /// and `[::1]` (any port) always are.
    pub insecure_hosts: Vec<String>,
    /// A docker `config.json` (or a directory holding one) whose `auths` give credentials;
    /// `None` reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Clients made so far, shared by every clone of these options.
    clients: ClientCache,
}

/// Registry clients by host, protocol and credentials. A client keeps its connections and
/// tokens, and making one (loading TLS roots) costs milliseconds, so every resolve of a build,
/// and every build of a daemon, reuses it. Credentials are part of the key: an edited
/// `config.json` takes effect at the next build.
#[derive(Clone, Default)]
struct ClientCache(Arc<Mutex<HashMap<String, Client>>>);

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "ClientCache({n} clients)")
    }
}

impl ClientCache {
    fn get_or_make(
        &self,
        key: String,
        make: impl FnOnce() -> Result<Client>,
    ) -> Result<Client> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts).
        let mut clients = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = make()?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// What distinguishes credentials, without keeping a secret in a map key.
fn auth_key(auth: &RegistryAuth) -> String {
    match auth {
        RegistryAuth::Anonymous => "anonymous".into(),
        RegistryAuth::Basic(user, password) => {
            format!("basic:{}", Digest::of(format!("{user}\0{password}").as_bytes()))
        }
        RegistryAuth::Bearer(token) => format!("bearer:{}", Digest::of(token.as_bytes())),
    }
}

impl RegistryOptions {
    /// True when `host` (as in a reference, `host[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => host.split(':').next().unwrap_or(host),
        };
        matches!(name, "localhost" | "127.0.0.1" | "::1")
            || self.insecure_hosts.iter().any(|h| h == host || h == name)
    }

    /// A client for `reference`'s registry and the credentials to use with it; clients are
    /// made once per registry, protocol and credentials, and shared by clones of `self`.
    pub fn client_for(&self, reference: &Reference) -> Result<(Client, RegistryAuth)> {
        let host = reference.resolve_registry();
        let insecure = self.is_insecure(host);
        let path = auth::config_path(self.docker_config.as_deref());
        let creds = auth::lookup(path.as_deref(), reference.registry())?;
        let key = format!(
            "{}://{host} {}",
            if insecure { "http" } else { "https" },
            auth_key(&creds)
        );
        let client = self.clients.get_or_make(key, || {
            let config = ClientConfig {
                protocol: if insecure {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                platform_resolver: None,
                connect_timeout: Some(Duration::from_secs(30)),
                user_agent: concat!("hoist/", env!("CARGO_PKG_VERSION")),
                ..ClientConfig::default()
            };
            Client::try_from(config).map_err(|e| Error::Registry {
                reference: reference.whole(),
                host: host.to_string(),
                message: format!("cannot create HTTP client: {e}"),
            })
        })?;
        Ok((client, creds))
    }
}

/// Parses an image reference, normalising Docker Hub short names
/// (`busybox` → `docker.io/library/busybox:latest`).
pub fn parse_reference(reference: &str) -> Result<Reference> {
    reference
        .parse::<Reference>()
        .map_err(|e| Error::InvalidReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })
}

/// One platform's image, resolved: its manifest and config are in the content store.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Fully qualified and pinned: `docker.io/library/busybox:latest@sha256:...`.
    pub canonical_ref: String,
    /// Digest of the platform-specific manifest (not of the index).
    pub manifest_digest: Digest,
    /// The platform-specific manifest (OCI or Docker schema 2).
    pub manifest: ImageManifest,
    /// Digest of the image config blob.
    pub config_digest: Digest,
    /// The image config, raw JSON as stored.
    pub config: Vec<u8>,
    /// The layer descriptors, base layer first.
    pub layers: Vec<Descriptor>,
}

/// Progress of one layer download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer's digest.
    pub digest: Digest,
    /// Bytes received so far.
    pub downloaded: u64,
    /// The layer's size from its descriptor.
    pub total: u64,
    /// True when the layer was already in the content store and nothing was downloaded.
    pub cached: bool,
    /// True on the last event for this layer.
    pub done: bool,
}

/// Resolves and pulls images from registries into a content store.
pub struct ImageSource {
    content: ContentStore,
    opts: RegistryOptions,
}

impl ImageSource {
    /// A source storing into `content`, talking to registries as `opts` says.
    pub fn new(content: ContentStore, opts: RegistryOptions) -> Self {
        ImageSource { content, opts }
    }

    /// The client (shared per registry, so connections and tokens are reused) for `reference`.
    fn client(&self, reference: &Reference) -> Result<(Client, RegistryAuth)> {
        self.opts.client_for(reference)
    }

    /// Resolves `reference` to the manifest for `platform` (descending through an index or
    /// manifest list), fetches and stores the manifest and config; layers are not pulled.
    pub async fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage> {
        let parsed = parse_reference(reference)?;
        let name = parsed.whole();
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client(&parsed)?;
        let accept = [
            OCI_MANIFEST,
            DOCKER_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
        ];

        let mut current = parsed.clone();
        // An index may point at another index; two levels is more than any registry uses.
        for _ in 0..3 {
            let (body, digest) = client
                .pull_manifest_raw(&current, &auth, &accept)
                .await
                .map_err(|e| map_registry_error(&current.whole(), &host, e))?;
            let digest = parse_digest(&name, &digest)?;
            let actual = Digest::of(&body);
            if actual != digest {
                return Err(Error::DigestMismatch {
                    reference: current.whole(),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            match manifest_kind(&name, &body)? {
                Kind::Index => {
                    let index: ImageIndex = parse_json(&name, &body)?;
                    let chosen = select_platform(&name, &index, platform)?;
                    current = parsed.clone_with_digest(chosen.digest().to_string());
                }
                Kind::Manifest => {
                    let manifest: ImageManifest = parse_json(&name, &body)?;
                    self.content
                        .write_blob(&body)
                        .map_err(|e| Error::store(&name, e))?;
                    let config_desc = manifest.config().clone();
                    let config_digest = parse_digest(&name, config_desc.digest().as_ref())?;
                    if !self.content.has(&config_digest) {
                        fetch_blob(
                            &self.content,
                            &client,
                            &parsed,
                            &host,
                            &config_digest,
                            config_desc.size(),
                            &|_, _| {},
                        )
                        .await?;
                    }
                    let config = self
                        .content
                        .read(&config_digest)
                        .map_err(|e| Error::store(&name, e))?;
                    let pinned = match parsed.tag() {
                        Some(tag) => Reference::with_tag_and_digest(
                            parsed.registry().to_string(),
                            parsed.repository().to_string(),
                            tag.to_string(),
                            digest.to_string(),
                        ),
                        None => parsed.clone_with_digest(digest.to_string()),
                    };
                    return Ok(ResolvedImage {
                        canonical_ref: pinned.whole(),
                        manifest_digest: digest,
                        layers: manifest.layers().clone(),
                        manifest,
                        config_digest,
                        config,
                    });
                }
            }
        }
        Err(Error::InvalidManifest {
            reference: name,
            reason: "indexes nested too deeply".into(),
        })
    }

    /// Pulls every layer of `img` not yet in the content store, verifying each digest and
    /// size; reports progress per layer. A blob that does not match stores nothing.
    pub async fn pull_layers(
        &self,
        img: &ResolvedImage,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<()> {
        let parsed = parse_reference(&img.canonical_ref)?;
        let host = parsed.resolve_registry().to_string();
        let (client, auth) = self.client(&parsed)?;
        client.store_auth_if_needed(&host, &auth).await;
        let mut wanted = Vec::new();
        for layer in &img.layers {
            let digest = parse_digest(&img.canonical_ref, layer.digest().as_ref())?;
            if self.content.has(&digest) {
                let total = layer.size();
                progress(PullProgress {
                    digest,
                    downloaded: total,
                    total,
                    cached: true,
                    done: true,
                });
            } else if !wanted.iter().any(|(d, _)| d == &digest) {
                wanted.push((digest, layer.size()));
            }
        }
        futures::stream::iter(wanted)
            .map(|(digest, size)| {
                let (client, parsed, host) = (&client, &parsed, &host);
                async move {
                    let report = |downloaded, done| {
                        progress(PullProgress {
                            digest: digest.clone(),
                            downloaded,
                            total: size,
                            cached: false,
                            done,
                        })
                    };
                    report(0, false);
                    fetch_blob(&self.content, client, parsed, host, &digest, size, &report).await?;
                    report(size, true);
                    Ok::<(), Error>(())
                }
            })
            .buffer_unordered(PARALLEL_PULLS)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// Streams blob `digest` of `reference`'s repository into the store, checking size and digest.
async fn fetch_blob(
    content: &ContentStore,
    client: &Client,
    reference: &Reference,
    host: &str,
    digest: &Digest,
    size: u64,
    progress: &(dyn Fn(u64, bool) + Send + Sync),
) -> Result<()> {
    let name = reference.whole();
    let mut stream = client
        .pull_blob_stream(reference, digest.as_str())
        .await
        .map_err(|e| map_registry_error(&format!("{name} (blob {digest})"), host, e))?;
    let mut writer = content.writer().map_err(|e| Error::store(&name, e))?;
    let mut received: u64 = 0;
    let mut reported: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| map_registry_error(&name, host, OciDistributionError::IoError(e)))?;
        received += chunk.len() as u64;
        if received > size {
            return Err(Error::SizeMismatch {
                reference: name,
                digest: digest.clone(),
                expected: size,
                actual: received,
            });
        }
        writer.write_all(&chunk).map_err(|source| Error::Io {
            path: content.root().join("ingest"),
            source,
        })?;
        if received - reported >= 1 << 20 {
            reported = received;
            progress(received, false);
        }
    }
    if received != size {
        return Err(Error::SizeMismatch {
            reference: name,
            digest: digest.clone(),
            expected: size,
            actual: received,
        });
    }
    writer
        .commit(Some(digest))
        .map_err(|e| Error::store(&name, e))?;
    Ok(())
}

/// Whether a manifest body is an index (or manifest list) or a single image manifest.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Index,
    Manifest,
}

/// Classifies a manifest body by its `mediaType`, or by its shape when that is absent.
pub(crate) fn manifest_kind(reference: &str, body: &[u8]) -> Result<Kind> {
    let value: serde_json::Value = parse_json(reference, body)?;
    match value.get("mediaType").and_then(|m| m.as_str()) {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => Ok(Kind::Index),
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Ok(Kind::Manifest),
        Some(other) => Err(Error::Unsupported {
            reference: reference.to_string(),
            what: format!("manifest media type {other}"),
        }),
        None if value.get("manifests").is_some() => Ok(Kind::Index),
        None if value.get("config").is_some() && value.get("layers").is_some() => {
            Ok(Kind::Manifest)
        }
        None => Err(Error::InvalidManifest {
            reference: reference.to_string(),
            reason: "neither an image manifest nor an index".into(),
        }),
    }
}

/// Parses JSON, naming `reference` on failure.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    reference: &str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidManifest {
        reference: reference.to_string(),
        reason: e.to_string(),
    })
}

/// Parses a digest as hoist-store's (sha256 only).
pub(crate) fn parse_digest(reference: &str, digest: &str) -> Result<Digest> {
    digest.parse::<Digest>().map_err(|e| Error::Unsupported {
        reference: reference.to_string(),
        what: format!("digest: {e}"),
    })
}

/// Picks `platform`'s entry from an index, preferring an exact variant match; attestation and
/// platform-less entries are never chosen.
pub(crate) fn select_platform(
    reference: &str,
    index: &ImageIndex,
    platform: &Platform,
) -> Result<Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| platform.matches_oci(p))
        })
        .collect();
    let exact = candidates
        .iter()
        .find(|d| d.platform().as_ref().and_then(|p| p.variant().clone()) == platform.variant);
    if let Some(d) = exact.or(candidates.first()) {
        return Ok((*d).clone());
    }
    let available = index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s = format!("{s}/{v}");
            }
            s
        })
        .filter(|s| s != "unknown/unknown")
        .collect();
    Err(Error::NoMatchingPlatform {
        reference: reference.to_string(),
        platform: platform.clone(),
        available,
    })
}

/// Maps an oci-client error to hoist-source's typed error.
pub(crate) fn map_registry_error(reference: &str, host: &str, err: OciDistributionError) -> Error {
    use OciDistributionError as E;
    let reference = reference.to_string();
    let host = host.to_string();
    match err {
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                Error::NotFound {
                    reference,
                    detail: format!(" ({message})"),
                }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Error::Unauthorized {
                    reference,
                    host,
                    message,
                }
            } else {
                Error::Registry {
                    reference,
                    host,
                    message,
                }
            }
        }
        E::ServerError { code: 404, .. } | E::ImageManifestNotFoundError(_) => Error::NotFound {
            reference,
            detail: String::new(),
        },
        E::ServerError {
            code: 401 | 403,
            message,
            ..
        } => Error::Unauthorized {
            reference,
            host,
            message,
        },
        E::UnauthorizedError { url } => Error::Unauthorized {
            reference,
            host,
            message: format!("{url} returned 401"),
        },
        E::AuthenticationFailure(message) => Error::Unauthorized {
            reference,
            host,
            message,
        },
        E::DigestError(DigestError::VerificationError { expected, actual }) => {
            Error::DigestMismatch {
                reference,
                expected,
                actual,
            }
        }
        E::IoError(e) => {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<DigestError>())
            {
                Some(DigestError::VerificationError { expected, actual }) => {
                    Error::DigestMismatch {
                        reference,
                        expected: expected.clone(),
                        actual: actual.clone(),
                    }
                }
                _ if is_connect_error(&e) => Error::Unreachable {
                    host,
                    reason: chain(&e),
                },
                _ => Error::Registry {
                    reference,
                    host,
                    message: chain(&e),
                },
            }
        }
        E::RequestError(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => {
            Error::Unauthorized {
                reference,
                host,
                message: chain(&e),
            }
        }
        E::RequestError(e) if e.status().is_some_and(|s| s.as_u16() == 404) => Error::NotFound {
            reference,
            detail: String::new(),
        },
        E::RequestError(e) if e.is_connect() || e.is_timeout() => Error::Unreachable {
            host,
            reason: chain(&e),
        },
        other => Error::Registry {
            reference,
            host,
            message: chain(&other),
        },
    }
}

/// True when an I/O error during a blob stream came from the connection.
fn is_connect_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | TimedOut
    )
}

/// An error and its sources, joined with ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let next = src.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_normalised() {
        assert_eq!(
            parse_reference("busybox").unwrap().whole(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            parse_reference("127.0.0.1:5000/a/b:1").unwrap().whole(),
            "127.0.0.1:5000/a/b:1"
        );
        assert!(parse_reference("bad name").is_err());
        assert!(parse_reference("a/B:1").is_err());
    }

    #[test]
    fn clients_are_shared_by_clones_and_remade_when_credentials_change() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let write_auth = |user_pass: &str| {
            use base64::Engine as _;
            let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
            std::fs::write(&config, format!(r#"{{"auths":{{"reg.lan:5000":{{"auth":"{auth}"}}}}}}"#)).unwrap();
        };
        write_auth("hoist:one");
        let opts = RegistryOptions {
            docker_config: Some(config.clone()),
            ..Default::default()
        };
        let count = |o: &RegistryOptions| o.clients.0.lock().unwrap().len();
        let reference = parse_reference("reg.lan:5000/team/fe:1").unwrap();
        let other_repo = parse_reference("reg.lan:5000/other/thing:2").unwrap();
        let (_, auth) = opts.client_for(&reference).unwrap();
        assert!(matches!(&auth, RegistryAuth::Basic(u, p) if u == "hoist" && p == "one"));
        opts.clone().client_for(&other_repo).unwrap();
        assert_eq!(count(&opts), 1, "one registry, one set of credentials: one client");
        write_auth("hoist:two");
        let (_, auth) = opts.client_for(&reference).unwrap();
        assert!(matches!(&auth, RegistryAuth::Basic(_, p) if p == "two"));
        assert_eq!(count(&opts), 2, "new credentials get their own client");
        let keys: Vec<String> = opts.clients.0.lock().unwrap().keys().cloned().collect();
        assert!(keys.iter().all(|k| !k.contains("one") && !k.contains("two")), "{keys:?}");
        opts.client_for(&parse_reference("127.0.0.1:5000/fe:1").unwrap()).unwrap();
        assert_eq!(count(&opts), 3, "another registry, another client");
    }

    #[test]
    fn insecure_hosts() {
        let opts = RegistryOptions {
            insecure_hosts: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        assert!(opts.is_insecure("localhost:5000"));
        assert!(opts.is_insecure("127.0.0.1:41234"));
        assert!(opts.is_insecure("[::1]:80"));
        assert!(opts.is_insecure("reg.lan:5000"));
        assert!(!opts.is_insecure("reg.lan:5001"));
        assert!(!opts.is_insecure("index.docker.io"));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            manifest_kind(
                "r",
                br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#
            )
            .unwrap(),
            Kind::Index
        );
        assert_eq!(
            manifest_kind("r", br#"{"manifests":[]}"#).unwrap(),
            Kind::Index
        );
        assert!(manifest_kind(
            "r",
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#
        )
        .is_err());
    }
}
