//! Which frontend a build runs, and getting it: the Dockerfile's `# syntax=` line and its
//! overrides, names that mean the built-in Dockerfile frontend, frontends from registries
//! (resolved, checked against the policy, pulled once and kept by digest), named contexts that
//! replace a frontend, and frontends run by other frontends (chaining).
//!
//! Precedence, as in BuildKit: an explicit frontend (`--frontend REF`, or `--opt source=REF`)
//! beats the build args `HOIST_SYNTAX` / `BUILDKIT_SYNTAX`, which beat the Dockerfile's own
//! `# syntax=` directive. A reference naming Docker's Dockerfile frontend
//! (`docker/dockerfile:1`, the most common first line) is answered by the built-in one with no
//! network access: hoist cannot run container-image frontends, and the built-in one speaks the
//! same language.
//!
//! Tags are resolved against the registry on every build (like `--pull`), so moving a tag takes
//! effect on the next build; digests never are. With [`FrontendSettings::offline`] a tag keeps
//! the resolution recorded by the last build that made one. The component lands in the content
//! store by digest and is compiled once (the frontend host's compile cache).

use std::path::Path;
use std::sync::Arc;

use hoist_frontend_oci::{FrontendRegistry, Resolved};
use hoist_llb::Definition;
use hoist_store::Digest;

use crate::gateway::JobGateway;
use crate::job::{BuildRequest, ContextSource, FrontendChoice};
use crate::state::{Engine, Event};
use crate::Error;

/// Most frontends running one another at once (the build's own counts as the first); one more
/// is refused, which turns a frontend forwarding to itself into a clear error.
pub const MAX_FRONTEND_DEPTH: usize = 8;

/// Largest prefix of a Dockerfile read to find its `# syntax=` directive.
const MAX_SYNTAX_SCAN_BYTES: u64 = 1 << 20;

/// The sled tree recording tag and manifest resolutions of frontend references.
const REFS_TREE: &str = "frontend-refs";

/// Frontend settings of an engine (a daemon option; `hoist build` flags for the embedded one).
#[derive(Debug, Clone, Default)]
pub struct FrontendSettings {
    /// Which frontends may run.
    pub policy: FrontendPolicy,
    /// Never ask a registry about a frontend: tags keep their last resolution, and a frontend
    /// never pulled before is an error.
    pub offline: bool,
}

impl FrontendSettings {
    /// The stricter of these settings and `other` (a daemon's own and a client's for one build):
    /// a frontend must be allowed by both policies, and either being offline makes it offline.
    pub fn and(&self, other: &FrontendSettings) -> FrontendSettings {
        FrontendSettings {
            policy: self.policy.clone().and(other.policy.clone()),
            offline: self.offline || other.offline,
        }
    }
}

/// One rule of a [`FrontendPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRule {
    /// Any repository on this registry (`host[:port]`).
    Registry(String),
    /// This repository, or any under it (`host/path`, written `host/path` or `host/path/*`).
    Repository(String),
    /// Exactly this digest: the artifact's manifest digest or the component's digest.
    Digest(String),
}

impl std::fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyRule::Registry(r) => write!(f, "registry {r}"),
            PolicyRule::Repository(r) => write!(f, "repository {r}/*"),
            PolicyRule::Digest(d) => write!(f, "digest {d}"),
        }
    }
}

/// Which frontends may run: every one (no rules, the default), or only those a rule allows.
/// Built-in frontends always may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontendPolicy {
    /// The rules; empty allows everything.
    pub rules: Vec<PolicyRule>,
    /// Where the rules were set, named in a refusal (default: the client's flag and variable).
    set_by: Option<String>,
    /// Further policies a frontend must also satisfy ([`FrontendPolicy::and`]); none nest.
    also: Vec<FrontendPolicy>,
}

impl FrontendPolicy {
    /// Parses rules: `sha256:HEX` is a digest, `host/path[/*]` a repository, `host[:port]` a
    /// registry. Short Docker Hub names are normalised (`team/fe` → `docker.io/team/fe`).
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<FrontendPolicy, String> {
        let mut parsed = Vec::new();
        for rule in rules {
            let rule = rule.as_ref().trim();
            if rule.is_empty() {
                continue;
            }
            // `HOST/*`, like `HOST/PATH/*`, means everything under it: here the whole registry.
            let name = rule.trim_end_matches("/*").trim_end_matches('/');
            if let Some(hex) = rule.strip_prefix("sha256:") {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "frontend policy rule {rule:?}: a digest is sha256: and 64 hex digits"
                    ));
                }
                parsed.push(PolicyRule::Digest(rule.to_ascii_lowercase()));
            } else if let Some((host, path)) = name.split_once('/') {
                if path.is_empty() || path.contains("//") || rule.contains(['@', ' ']) {
                    return Err(format!(
                        "frontend policy rule {rule:?}: expected HOST/REPOSITORY[/*]"
                    ));
                }
                let host = if host.contains(['.', ':']) || host == "localhost" {
                    host.to_string()
                } else {
                    format!("docker.io/{host}")
                };
                parsed.push(PolicyRule::Repository(format!("{host}/{path}")));
            } else if name.contains([':', '@', ' '])
                && !name
                    .split(':')
                    .nth(1)
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!("frontend policy rule {rule:?}: expected a registry HOST[:PORT], HOST/REPOSITORY[/*] or sha256:DIGEST"));
            } else {
                parsed.push(PolicyRule::Registry(name.to_string()));
            }
        }
        Ok(FrontendPolicy {
            rules: parsed,
            ..FrontendPolicy::default()
        })
    }

    /// Names where the rules were set, for refusals (e.g. `hoistd --allow-frontend`).
    pub fn set_by(mut self, origin: impl Into<String>) -> FrontendPolicy {
        self.set_by = Some(origin.into());
        self
    }

    /// The policy allowing only what both `self` and `other` allow; a refusal names the policy
    /// (and where it was set) that refused.
    pub fn and(mut self, other: FrontendPolicy) -> FrontendPolicy {
        let FrontendPolicy {
            rules,
            set_by,
            also,
        } = other;
        let head = FrontendPolicy {
            rules,
            set_by,
            also: Vec::new(),
        };
        for layer in std::iter::once(head).chain(also) {
            if layer.rules.is_empty() {
                continue;
            }
            if self.rules.is_empty() && self.also.is_empty() {
                self.rules = layer.rules;
                self.set_by = layer.set_by;
            } else {
                self.also.push(layer);
            }
        }
        self
    }

    /// Whether any rule restricts frontends.
    pub fn is_restricted(&self) -> bool {
        self.layers().any(|layer| !layer.rules.is_empty())
    }

    /// This policy's own rules, then each policy joined by [`FrontendPolicy::and`].
    fn layers(&self) -> impl Iterator<Item = &FrontendPolicy> {
        std::iter::once(self).chain(self.also.iter())
    }

    /// Before resolving `registry/repository`: refused if some policy allows it neither by name
    /// nor possibly by a digest rule. Returns whether every policy allows it by name.
    fn check_name(&self, reference: &str, registry: &str, repository: &str) -> Result<bool, Error> {
        let mut all_by_name = true;
        for layer in self.layers() {
            if layer.rules.is_empty() || layer.allows_name(registry, repository).is_some() {
                continue;
            }
            if !layer.has_digest_rules() {
                return Err(layer.refusal(reference));
            }
            all_by_name = false;
        }
        Ok(all_by_name)
    }

    /// After resolving: refused if some policy allows neither the name nor one of `digests`.
    fn check_resolved(
        &self,
        reference: &str,
        registry: &str,
        repository: &str,
        digests: &[&str],
    ) -> Result<(), Error> {
        for layer in self.layers() {
            if layer.rules.is_empty()
                || layer.allows_name(registry, repository).is_some()
                || layer.allows_digest(digests).is_some()
            {
                continue;
            }
            return Err(layer.refusal(reference));
        }
        Ok(())
    }

    /// The rule allowing repository `registry/repository` by name, if any.
    fn allows_name(&self, registry: &str, repository: &str) -> Option<&PolicyRule> {
        let full = format!("{registry}/{repository}");
        self.rules.iter().find(|rule| match rule {
            PolicyRule::Registry(r) => r == registry,
            PolicyRule::Repository(r) => full == *r || full.starts_with(&format!("{r}/")),
            PolicyRule::Digest(_) => false,
        })
    }

    /// The rule allowing one of `digests`, if any.
    fn allows_digest(&self, digests: &[&str]) -> Option<&PolicyRule> {
        self.rules
            .iter()
            .find(|rule| matches!(rule, PolicyRule::Digest(d) if digests.contains(&d.as_str())))
    }

    /// Whether only digest rules could still allow something not allowed by name.
    fn has_digest_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, PolicyRule::Digest(_)))
    }

    /// The refusal for `reference`.
    fn refusal(&self, reference: &str) -> Error {
        let rules: Vec<String> = self.rules.iter().map(|r| r.to_string()).collect();
        Error::FrontendRef {
            reference: reference.to_string(),
            message: format!(
                "refused by the frontend policy: no rule allows it (allowed: {}; set with {})",
                rules.join(", "),
                self.set_by
                    .as_deref()
                    .unwrap_or("--allow-frontend or HOIST_ALLOW_FRONTENDS")
            ),
        }
    }
}

/// True when `reference` names the built-in Dockerfile frontend: `builtin:dockerfile`,
/// `dockerfile`, `dockerfile.v0`, or Docker's `docker/dockerfile[-upstream]` at any tag/digest.
pub fn is_builtin_dockerfile(reference: &str) -> bool {
    let r = reference.trim();
    if matches!(r, "builtin:dockerfile" | "dockerfile" | "dockerfile.v0") {
        return true;
    }
    let name = r.split('@').next().unwrap_or(r);
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream")
}

/// The frontend a request asks for after `# syntax=` and its overrides, with the options to add.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// The frontend to run.
    pub(crate) choice: FrontendChoice,
    /// Options to add for it (`source`, `cmdline`, as BuildKit forwards them).
    pub(crate) extra_options: Vec<(String, String)>,
    /// Where the choice came from, for error messages.
    pub(crate) origin: String,
}

/// Applies the `# syntax=` rules to a request whose frontend is the built-in Dockerfile one.
pub(crate) fn select(request: &BuildRequest) -> Selection {
    let keep = |origin: &str| Selection {
        choice: request.frontend.clone(),
        extra_options: Vec::new(),
        origin: origin.into(),
    };
    let choice = match &request.frontend {
        FrontendChoice::Builtin(name) if is_builtin_dockerfile(name) => name,
        FrontendChoice::Reference(r) => {
            return Selection {
                choice: reference_choice(r),
                extra_options: Vec::new(),
                origin: "--frontend".into(),
            }
        }
        _ => return keep("--frontend"),
    };
    let option = |key: &str| {
        request
            .options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(source) = option("source").filter(|s| !s.is_empty()) {
        return Selection {
            choice: reference_choice(&source),
            extra_options: Vec::new(),
            origin: "--opt source=".into(),
        };
    }
    // A frontend forwarded to already (BuildKit's `cmdline` option) does not forward again.
    if option("cmdline").is_some() {
        return keep("the built-in Dockerfile frontend");
    }
    let found = [
        ("build-arg:HOIST_SYNTAX", "build arg HOIST_SYNTAX"),
        ("build-arg:BUILDKIT_SYNTAX", "build arg BUILDKIT_SYNTAX"),
    ]
    .into_iter()
    .find_map(|(key, origin)| {
        option(key)
            .filter(|v| !v.is_empty())
            .map(|v| (v, origin.to_string()))
    })
    .or_else(|| syntax_directive(request));
    let Some((cmdline, origin)) = found else {
        return Selection {
            choice: FrontendChoice::Builtin(choice.clone()),
            extra_options: Vec::new(),
            origin: "default".into(),
        };
    };
    let reference = cmdline
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let choice = reference_choice(&reference);
    let extra_options = match &choice {
        FrontendChoice::Reference(_) => vec![
            ("source".to_string(), reference),
            ("cmdline".to_string(), cmdline),
        ],
        _ => Vec::new(),
    };
    Selection {
        choice,
        extra_options,
        origin,
    }
}

/// A reference, or the built-in Dockerfile frontend when it names that.
fn reference_choice(reference: &str) -> FrontendChoice {
    if is_builtin_dockerfile(reference) {
        FrontendChoice::Builtin("dockerfile".into())
    } else {
        FrontendChoice::Reference(reference.to_string())
    }
}

/// The `# syntax=` directive of the request's Dockerfile (whole value, and where it is).
fn syntax_directive(request: &BuildRequest) -> Option<(String, String)> {
    let dir = request
        .contexts
        .iter()
        .find_map(|(name, source)| match source {
            ContextSource::Local(dir) if name == "dockerfile" => Some(dir.clone()),
            _ => None,
        })?;
    let filename = request
        .options
        .iter()
        .rev()
        .find(|(k, _)| k == "filename")
        .map(|(_, v)| v.as_str())
        .unwrap_or("Dockerfile");
    let path = dir.join(filename.trim_start_matches('/'));
    let text = read_prefix(&path)?;
    let found = hoist_dockerfile::parser::detect_syntax(&text)?;
    Some((
        found.cmdline,
        format!(
            "the syntax directive on line {} of {filename}",
            found.location.start_line.max(1)
        ),
    ))
}

/// Up to [`MAX_SYNTAX_SCAN_BYTES`] of a file, as text; `None` if it cannot be read.
fn read_prefix(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SYNTAX_SCAN_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// A frontend ready to run, and how to name it in progress and metadata.
pub(crate) struct Loaded {
    /// The loaded component.
    pub(crate) frontend: hoist_frontend_host::Frontend,
    /// What ran: `builtin:dockerfile`, or the reference pinned to its manifest digest.
    pub(crate) reference: String,
}

impl Engine {
    /// The frontend settings this engine's builds run under.
    pub fn frontend_settings(&self) -> &FrontendSettings {
        &self.frontend_settings
    }

    /// This engine running builds under `settings` instead (a daemon narrowing its own by a
    /// client's, see [`FrontendSettings::and`]); cache, stores and solver stay shared.
    pub fn with_frontend_settings(&self, settings: FrontendSettings) -> Engine {
        Engine {
            frontend_settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// Loads the frontend of `choice`; a registry reference is resolved, checked and pulled.
    pub(crate) async fn load_frontend(
        &self,
        choice: &FrontendChoice,
        contexts: &[(String, ContextSource)],
        origin: &str,
    ) -> Result<Loaded, Error> {
        let (reference, component) = match choice {
            FrontendChoice::Reference(r) if is_builtin_dockerfile(r) => {
                self.builtin_bytes("dockerfile")?
            }
            FrontendChoice::Builtin(name) => self.builtin_bytes(name)?,
            FrontendChoice::Bytes(bytes) => ("file".to_string(), Component::Bytes(bytes.clone())),
            FrontendChoice::Reference(r) => match named_context(contexts, r) {
                Some((name, source)) => self.context_frontend(r, &name, &source).await?,
                None => self
                    .registry_frontend(r)
                    .await
                    .map_err(|e| with_origin(e, origin))?,
            },
        };
        let loaded = match component {
            Component::Builtin(builtin) => self.frontends.load_known(builtin.sha256, builtin.bytes),
            Component::Bytes(bytes) => self.frontends.load(&bytes),
            Component::Stored(digest) => match self.frontends.loaded(digest.as_str()) {
                Some(frontend) => Ok(frontend),
                None => {
                    let bytes = self.shared.content.read(&digest).map_err(|e| Error::FrontendRef {
                        reference: reference.clone(),
                        message: format!("reading the pulled component: {e}"),
                    })?;
                    self.frontends.load_known(digest.as_str(), &bytes)
                }
            },
        };
        let frontend = loaded.map_err(|e| match choice {
            FrontendChoice::Reference(r) => Error::FrontendRef {
                reference: r.clone(),
                message: e.to_string(),
            },
            _ => Error::Frontend(e),
        })?;
        Ok(Loaded {
            frontend,
            reference,
        })
    }

    /// A built-in frontend's bytes.
    fn builtin_bytes(&self, name: &str) -> Result<(String, Component), Error> {
        let name = name.strip_prefix("builtin:").unwrap_or(name);
        let name = if is_builtin_dockerfile(name) {
            "dockerfile"
        } else {
            name
        };
        hoist_builtin_frontends::lookup(name)
            .map(|b| (format!("builtin:{name}"), Component::Builtin(b)))
            .ok_or_else(|| Error::FrontendRef {
                reference: name.to_string(),
                message: "no such built-in frontend".into(),
            })
    }

    /// A frontend replaced by a named build context: a directory holding one `.wasm`
    /// component, or another image reference.
    async fn context_frontend(
        &self,
        reference: &str,
        name: &str,
        source: &ContextSource,
    ) -> Result<(String, Component), Error> {
        let refuse = |message: String| Error::FrontendRef {
            reference: reference.to_string(),
            message,
        };
        match source {
            ContextSource::Local(dir) => {
                let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
                let mut wasm: Vec<_> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                    .collect();
                wasm.sort();
                match wasm.as_slice() {
                    [one] => {
                        let bytes = std::fs::read(one).map_err(|e| Error::io(one, e))?;
                        Ok((format!("context:{name} ({})", one.display()), Component::Bytes(bytes)))
                    }
                    [] => Err(refuse(format!("build context {name:?} ({}) replaces this frontend but holds no .wasm file", dir.display()))),
                    _ => Err(refuse(format!("build context {name:?} ({}) holds several .wasm files; keep exactly one", dir.display()))),
                }
            }
            ContextSource::Image(other) => self.registry_frontend(other).await,
            ContextSource::OciLayout(value) => self.layout_frontend(name, value).map_err(|e| refuse(e.to_string())),
        }
    }

    /// A frontend from an OCI layout (`oci-layout://PATH[:TAG|@DIGEST]`, as `hoist frontend pull`
    /// or `skopeo copy` write one): the Wasm artifact is checked as a registry one is (config
    /// media type, world version, exactly one component layer), its blobs verified on copy.
    fn layout_frontend(&self, name: &str, value: &str) -> Result<(String, Component), Box<dyn std::error::Error>> {
        use hoist_frontend_oci::artifact::Manifest;
        let (path, selector) = hoist_source::layout::parse_layout_ref(value);
        let wasm = hoist_source::Platform {
            os: "wasip2".into(),
            architecture: "wasm".into(),
            variant: None,
        };
        let content = &self.shared.content;
        let resolved = hoist_source::layout::resolve_layout(&path, selector.as_deref(), &wasm, content)?;
        let shown = format!("context:{name} (oci-layout://{}@{})", path.display(), resolved.manifest_digest);
        let manifest = Manifest::parse(&shown, &content.read(&resolved.manifest_digest)?)?;
        let layer = manifest.wasm_layer(&shown)?;
        hoist_frontend_oci::WasmConfig::parse(&shown, &resolved.config)?.check(&shown)?;
        let digest: Digest = layer.digest.parse()?;
        if !content.has(&digest) {
            return Err(format!("{shown}: the component blob {digest} is missing").into());
        }
        Ok((shown, Component::Stored(digest)))
    }

    /// Resolves, checks and pulls a frontend from its registry; returns the pinned reference
    /// and the component's digest in the content store.
    async fn registry_frontend(&self, reference: &str) -> Result<(String, Component), Error> {
        let refuse = |message: String| Error::FrontendRef {
            reference: reference.to_string(),
            message,
        };
        let parsed = hoist_source::image::parse_reference(reference)?;
        let policy = &self.frontend_settings.policy;
        let allowed_by_name =
            policy.check_name(reference, parsed.registry(), parsed.repository())?;
        let tree = self
            .shared
            .db
            .open_tree(REFS_TREE)
            .map_err(|e| refuse(format!("frontend index: {e}")))?;
        let recorded = |key: String| -> Option<Digest> {
            tree.get(key.as_bytes())
                .ok()
                .flatten()
                .and_then(|v| String::from_utf8(v.to_vec()).ok())
                .and_then(|s| s.parse().ok())
        };
        let content = &self.shared.content;
        let registry = FrontendRegistry::new(self.shared.registry.clone());

        // A digest is resolved once; a tag on every build, unless offline. A tag that still
        // names what it named last time costs one HEAD request; any other answer (or none)
        // resolves it in full, which also gives the clearer error.
        let tag_key = format!("tag:{}", parsed.whole());
        let named_key = format!("named:{}", parsed.whole());
        let manifest_digest = match parsed.digest() {
            Some(d) => Some(d.parse::<Digest>().map_err(|e| refuse(format!("digest: {e}")))?),
            None if self.frontend_settings.offline => Some(recorded(tag_key.clone()).ok_or_else(|| {
                refuse("offline, and this tag was never resolved before; build once without --frontend-offline".into())
            })?),
            None => match (recorded(named_key.clone()), recorded(tag_key.clone())) {
                (Some(named), Some(manifest)) => registry
                    .named_digest(reference)
                    .await
                    .ok()
                    .filter(|now| *now == named)
                    .map(|_| manifest),
                _ => None,
            },
        };
        let local = manifest_digest
            .as_ref()
            .and_then(|m| recorded(format!("manifest:{m}")).map(|layer| (m.clone(), layer)));
        let (manifest_digest, layer, resolved) = match local {
            Some((m, layer)) if content.has(&layer) => (m, layer, None),
            _ if self.frontend_settings.offline => {
                return Err(refuse(
                    "offline, and this frontend is not in the content store".into(),
                ));
            }
            _ => {
                let resolved = registry
                    .resolve(reference)
                    .await
                    .map_err(|e| refuse(e.to_string()))?;
                let _ = tree.insert(
                    tag_key.as_bytes(),
                    resolved.manifest_digest.as_str().as_bytes(),
                );
                let _ = tree.insert(
                    named_key.as_bytes(),
                    resolved.named_digest.as_str().as_bytes(),
                );
                let _ = tree.insert(
                    format!("manifest:{}", resolved.manifest_digest).as_bytes(),
                    resolved.layer.digest.as_str().as_bytes(),
                );
                (
                    resolved.manifest_digest.clone(),
                    resolved.layer.digest.clone(),
                    Some(resolved),
                )
            }
        };
        if !allowed_by_name {
            policy.check_resolved(
                reference,
                parsed.registry(),
                parsed.repository(),
                &[manifest_digest.as_str(), layer.as_str()],
            )?;
        }
        if let Some(resolved) = &resolved {
            fetch(&registry, resolved, content)
                .await
                .map_err(|e| refuse(e.to_string()))?;
        }
        let pinned = match parsed.tag() {
            Some(tag) if parsed.digest().is_none() => format!(
                "{}/{}:{tag}@{manifest_digest}",
                parsed.registry(),
                parsed.repository()
            ),
            _ => format!(
                "{}/{}@{manifest_digest}",
                parsed.registry(),
                parsed.repository()
            ),
        };
        Ok((pinned, Component::Stored(layer)))
    }

    /// Runs frontend `source` for a frontend at `parent` (chaining): same job, same references.
    pub(crate) async fn run_chained(
        &self,
        parent: &JobGateway,
        source: String,
        options: Vec<(String, String)>,
        inputs: Vec<(String, Definition)>,
    ) -> Result<hoist_frontend_host::FrontendSolved, Error> {
        let child = parent.child(&source, inputs)?;
        let choice = match source.strip_prefix("builtin:") {
            Some(name) => FrontendChoice::Builtin(name.to_string()),
            None => reference_choice(&source),
        };
        let loaded = self
            .load_frontend(&choice, child.contexts(), "a frontend's solve request")
            .await?;
        child.progress().send(Event::Frontend {
            reference: loaded.reference.clone(),
            digest: loaded.frontend.digest().to_string(),
        });
        let child = Arc::new(child);
        let output = loaded.frontend.build(options, child.clone()).await?;
        let first = output.platforms.into_iter().next();
        Ok(hoist_frontend_host::FrontendSolved {
            reference: first.as_ref().and_then(|p| p.reference.clone()),
            image_config: first.and_then(|p| p.image_config),
        })
    }
}

/// A frontend component as its source hands it over.
pub(crate) enum Component {
    /// Compiled into hoist.
    Builtin(hoist_builtin_frontends::Builtin),
    /// Read from a file.
    Bytes(Vec<u8>),
    /// A blob of the content store (verified on the way in), by digest.
    Stored(Digest),
}

/// Downloads the component, logging the pull.
async fn fetch(
    registry: &FrontendRegistry,
    resolved: &Resolved,
    content: &hoist_store::ContentStore,
) -> Result<Digest, hoist_frontend_oci::Error> {
    tracing::debug!(reference = %resolved.pinned, size = resolved.layer.size, "pulling frontend");
    registry.fetch(resolved, content).await
}

/// The named context replacing frontend `reference`, matched by the name as written or normalised.
fn named_context(
    contexts: &[(String, ContextSource)],
    reference: &str,
) -> Option<(String, ContextSource)> {
    let normal = |r: &str| {
        hoist_source::image::parse_reference(r)
            .map(|p| p.whole())
            .ok()
    };
    let wanted = normal(reference);
    contexts
        .iter()
        .find(|(name, _)| name == reference || (wanted.is_some() && normal(name) == wanted))
        .map(|(n, s)| (n.clone(), s.clone()))
}

/// Adds where a frontend choice came from to a refusal.
fn with_origin(e: Error, origin: &str) -> Error {
    match e {
        Error::FrontendRef { reference, message }
            if !origin.is_empty() && origin != "--frontend" =>
        {
            Error::FrontendRef {
                reference,
                message: format!("{message} (selected by {origin})"),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_names_are_the_builtin() {
        for r in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1",
            "docker/dockerfile",
            "docker/dockerfile-upstream:master",
            "docker/dockerfile:1@sha256:abcd",
            "builtin:dockerfile",
            "dockerfile.v0",
        ] {
            assert!(is_builtin_dockerfile(r), "{r}");
        }
        for r in [
            "127.0.0.1:5000/docker/dockerfile:1",
            "team/dockerfile:1",
            "docker/dockerfiles:1",
            "busybox",
        ] {
            assert!(!is_builtin_dockerfile(r), "{r}");
        }
    }

    #[test]
    fn policy_rules_parse_and_match() {
        let p = FrontendPolicy::parse(&[
            "127.0.0.1:5000",
            "reg.example/team/*",
            "team/fe",
            format!("sha256:{}", "a".repeat(64)).as_str(),
        ])
        .unwrap();
        assert_eq!(p.rules[0], PolicyRule::Registry("127.0.0.1:5000".into()));
        assert_eq!(
            p.rules[1],
            PolicyRule::Repository("reg.example/team".into())
        );
        assert_eq!(
            p.rules[2],
            PolicyRule::Repository("docker.io/team/fe".into())
        );
        assert!(p.allows_name("127.0.0.1:5000", "any/thing").is_some());
        assert!(p.allows_name("reg.example", "team/x").is_some());
        assert!(p.allows_name("reg.example", "team").is_some());
        assert!(p.allows_name("reg.example", "teams/x").is_none());
        assert!(p.allows_name("docker.io", "team/fe").is_some());
        assert!(p
            .allows_digest(&[&format!("sha256:{}", "a".repeat(64))])
            .is_some());
        assert!(p
            .allows_digest(&[&format!("sha256:{}", "b".repeat(64))])
            .is_none());
        let err = p.refusal("x/y:1").to_string();
        assert!(
            err.contains("refused by the frontend policy")
                && err.contains("registry 127.0.0.1:5000"),
            "{err}"
        );
        let any_repo = FrontendPolicy::parse(&["reg.example/*", "127.0.0.1:5000/*"]).unwrap();
        assert_eq!(
            any_repo.rules,
            [
                PolicyRule::Registry("reg.example".into()),
                PolicyRule::Registry("127.0.0.1:5000".into())
            ]
        );
        assert!(any_repo.allows_name("reg.example", "team/fe").is_some());
        assert!(FrontendPolicy::parse(&["sha256:12"]).is_err());
        assert!(FrontendPolicy::parse(&["host:port"]).is_err());
        assert!(!FrontendPolicy::parse::<&str>(&[]).unwrap().is_restricted());
    }

    #[test]
    fn joined_policies_allow_only_what_both_allow_and_name_the_one_refusing() {
        let daemon = FrontendPolicy::parse(&["reg.example"])
            .unwrap()
            .set_by("hoistd --allow-frontend");
        let client = FrontendPolicy::parse(&["reg.example/team"]).unwrap();
        let both = daemon.clone().and(client.clone());
        assert!(both.is_restricted());
        assert_eq!(
            both.check_name("r", "reg.example", "team/fe").ok(),
            Some(true)
        );
        let err = both
            .check_name("reg.example/other:1", "reg.example", "other")
            .unwrap_err()
            .to_string();
        assert!(err.contains("set with --allow-frontend"), "{err}");
        let err = both
            .check_name(
                "elsewhere.example/team/fe:1",
                "elsewhere.example",
                "team/fe",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("set with hoistd --allow-frontend"), "{err}");

        // A digest rule of one policy still needs the other's consent.
        let digest = format!("sha256:{}", "c".repeat(64));
        let pinned = daemon
            .clone()
            .and(FrontendPolicy::parse(&[digest.as_str()]).unwrap());
        assert_eq!(pinned.check_name("r", "reg.example", "x").ok(), Some(false));
        assert!(pinned
            .check_resolved("r", "reg.example", "x", &[digest.as_str()])
            .is_ok());
        assert!(pinned
            .check_resolved(
                "r",
                "reg.example",
                "x",
                &[&format!("sha256:{}", "d".repeat(64))]
            )
            .is_err());
        assert!(pinned.check_name("r", "other.example", "x").is_err());

        // An unrestricted side adds nothing.
        let open = FrontendPolicy::default().and(client.clone());
        assert_eq!(open, client);
        let settings = FrontendSettings::default().and(&FrontendSettings {
            policy: FrontendPolicy::default(),
            offline: true,
        });
        assert!(settings.offline && !settings.policy.is_restricted());
    }

    fn request_with(
        dockerfile: &str,
        options: &[(&str, &str)],
    ) -> (tempfile::TempDir, BuildRequest) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let mut request = BuildRequest::dockerfile(dir.path().to_path_buf());
        request.options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (dir, request)
    }

    #[test]
    fn syntax_selection_and_its_overrides() {
        let (_d, r) = request_with("# syntax=reg.example/fe:1 --x\nFROM busybox\n", &[]);
        let s = select(&r);
        assert!(
            matches!(&s.choice, FrontendChoice::Reference(x) if x == "reg.example/fe:1"),
            "{s:?}"
        );
        assert_eq!(
            s.extra_options,
            [
                ("source".to_string(), "reg.example/fe:1".to_string()),
                ("cmdline".to_string(), "reg.example/fe:1 --x".to_string())
            ]
        );
        assert!(s.origin.contains("line 1 of Dockerfile"), "{}", s.origin);

        let (_d, r) = request_with(
            "# syntax=reg.example/fe:1\n",
            &[("build-arg:BUILDKIT_SYNTAX", "reg.example/other:2")],
        );
        assert!(
            matches!(select(&r).choice, FrontendChoice::Reference(x) if x == "reg.example/other:2")
        );
        let (_d, r) = request_with(
            "# syntax=reg.example/fe:1\n",
            &[
                ("build-arg:BUILDKIT_SYNTAX", "a.example/b:1"),
                ("build-arg:HOIST_SYNTAX", "c.example/d:1"),
            ],
        );
        assert!(matches!(select(&r).choice, FrontendChoice::Reference(x) if x == "c.example/d:1"));
        let (_d, r) = request_with(
            "# syntax=reg.example/fe:1\n",
            &[
                ("source", "e.example/f:1"),
                ("build-arg:HOIST_SYNTAX", "c.example/d:1"),
            ],
        );
        assert!(matches!(select(&r).choice, FrontendChoice::Reference(x) if x == "e.example/f:1"));

        for text in [
            "FROM busybox\n",
            "# syntax=docker/dockerfile:1\nFROM busybox\n",
            "//syntax=docker.io/docker/dockerfile:1.7\n",
        ] {
            let (_d, r) = request_with(text, &[]);
            assert!(
                matches!(select(&r).choice, FrontendChoice::Builtin(ref n) if n == "dockerfile"),
                "{text}"
            );
        }
        let (_d, r) = request_with(
            "# syntax=reg.example/fe:1\n",
            &[("cmdline", "reg.example/fe:1")],
        );
        assert!(
            matches!(select(&r).choice, FrontendChoice::Builtin(_)),
            "a forwarded build does not forward again"
        );
        let (_d, r) = request_with("{\"syntax\": \"reg.example/json:1\"}", &[]);
        assert!(
            matches!(select(&r).choice, FrontendChoice::Reference(x) if x == "reg.example/json:1")
        );
    }
}
