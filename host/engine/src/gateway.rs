//! The frontend's view of the engine for one job: solving definitions into references, reading
//! files of results, resolving images, and the job's named inputs.
//!
//! References are job-scoped ids of (definition, output); they are solved lazily, on the first
//! read or when the frontend returns them. Local sources are bound to the client directories of
//! this job here, so a frontend can only reach the directories the user named.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hoist_frontend_host::{FileStat, FrontendEvent, FrontendSolved, GatewayError, ResolveMode, ResolvedImageConfig};
use hoist_llb::{Definition, OpKind, Source, SourceOp};
use hoist_solver::SolveOptions;

use crate::chain::Chain;
use crate::job::{BuildRequest, ContextSource};
use crate::ops::LOCAL_DIR_ATTR;
use crate::state::{Engine, Event, Progress};
use crate::Error;

/// Largest file a frontend may read in one call: the frontend host's cap, enforced here too.
use hoist_frontend_host::limits::MAX_READ_BYTES;

/// A reference the frontend holds: a definition, lazily solved to a chain.
struct RefEntry {
    definition: Definition,
    chain: Option<Chain>,
}

/// One job's gateway.
pub struct JobGateway {
    engine: Engine,
    contexts: Vec<(String, ContextSource)>,
    no_cache: bool,
    progress: Progress,
    refs: Arc<tokio::sync::Mutex<HashMap<String, RefEntry>>>,
    next_ref: Arc<Mutex<u64>>,
    /// The frontends running one another in this job, outermost first (see `child`).
    frontends: Vec<String>,
    /// The inputs a chained frontend was given, replacing the job's contexts as `inputs()`.
    inputs_override: Option<Vec<(String, Definition)>>,
    /// Explains this job's cache misses against the last build of its scope, if on.
    explain: Option<Arc<hoist_solver::ExplainSession>>,
}

/// A file's metadata as the gateway reports it.
#[derive(Debug, Clone)]
pub struct Stat {
    /// Path relative to the result's root.
    pub path: String,
    /// Mode with file-type bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target.
    pub link_target: Option<String>,
}

impl JobGateway {
    /// A gateway for `request`, checking its local contexts exist.
    pub fn new(engine: Engine, request: &BuildRequest, progress: Progress) -> Result<JobGateway, Error> {
        let mut contexts = Vec::new();
        for (name, source) in &request.contexts {
            let source = match source {
                ContextSource::Local(dir) => {
                    let abs = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
                    if !abs.is_dir() {
                        return Err(Error::InvalidRequest(format!("context {name:?}: {} is not a directory", dir.display())));
                    }
                    ContextSource::Local(abs)
                }
                other => other.clone(),
            };
            contexts.push((name.clone(), source));
        }
        Ok(JobGateway {
            engine,
            contexts,
            no_cache: request.no_cache,
            progress,
            refs: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            next_ref: Arc::new(Mutex::new(0)),
            frontends: Vec::new(),
            inputs_override: None,
            explain: None,
        })
    }

    /// This gateway, explaining its solves in `session`.
    pub(crate) fn with_explain(mut self, session: Option<Arc<hoist_solver::ExplainSession>>) -> JobGateway {
        self.explain = session;
        self
    }

    /// Names the frontend this gateway serves (the outermost of the job's chain).
    pub fn with_frontend(mut self, reference: &str) -> JobGateway {
        self.frontends = vec![reference.to_string()];
        self
    }

    /// A gateway for frontend `source` run by this one: the same job and references, `inputs`
    /// as its inputs (this job's when empty). Refused past [`crate::MAX_FRONTEND_DEPTH`].
    pub(crate) fn child(&self, source: &str, inputs: Vec<(String, Definition)>) -> Result<JobGateway, Error> {
        let mut frontends = self.frontends.clone();
        frontends.push(source.to_string());
        if frontends.len() > crate::MAX_FRONTEND_DEPTH {
            return Err(Error::FrontendRef {
                reference: source.to_string(),
                message: format!(
                    "frontends call one another more than {} deep (MAX_FRONTEND_DEPTH): {}; does a frontend forward to itself?",
                    crate::MAX_FRONTEND_DEPTH,
                    frontends.join(" -> ")
                ),
            });
        }
        Ok(JobGateway {
            engine: self.engine.clone(),
            contexts: self.contexts.clone(),
            no_cache: self.no_cache,
            progress: self.progress.clone(),
            refs: self.refs.clone(),
            next_ref: self.next_ref.clone(),
            frontends,
            inputs_override: if inputs.is_empty() { self.inputs_override.clone() } else { Some(inputs) },
            explain: self.explain.clone(),
        })
    }

    /// The job's named contexts.
    pub(crate) fn contexts(&self) -> &[(String, ContextSource)] {
        &self.contexts
    }

    /// The job's progress channel.
    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Registers a definition as a reference; solves it now when `evaluate`.
    pub async fn solve(&self, definition: Definition, evaluate: bool) -> Result<Option<String>, Error> {
        if definition.output.is_none() {
            return Ok(None);
        }
        let definition = self.bind_locals(definition)?;
        definition.validate()?;
        let id = {
            let mut next = self.next_ref.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            format!("ref-{next}")
        };
        self.refs.lock().await.insert(id.clone(), RefEntry { definition, chain: None });
        if evaluate {
            self.chain_of(&id).await?;
        }
        Ok(Some(id))
    }

    /// The chain of a reference, solving it on first use.
    pub async fn chain_of(&self, id: &str) -> Result<Chain, Error> {
        let definition = {
            let refs = self.refs.lock().await;
            let entry = refs.get(id).ok_or_else(|| Error::InvalidRequest(format!("unknown reference {id:?}")))?;
            if let Some(chain) = &entry.chain {
                return Ok(chain.clone());
            }
            entry.definition.clone()
        };
        let options = SolveOptions { no_cache: self.no_cache, ..SolveOptions::default() };
        let solved = self
            .engine
            .solver
            .solve_explained(&definition, options, self.progress.solver_sender(), self.explain.as_deref())
            .await?;
        self.engine.shared.gc.touch(solved.cache_keys.iter().flatten());
        let chain = match solved.output {
            Some(result) => Chain::decode(result.as_str())?,
            None => Chain::scratch(),
        };
        if let Some(entry) = self.refs.lock().await.get_mut(id) {
            entry.chain = Some(chain.clone());
        }
        Ok(chain)
    }

    /// Reads (part of) a file of a reference.
    pub async fn read_file(&self, id: &str, path: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>, Error> {
        let path = path.to_string();
        self.with_root(id, move |root| {
            use std::io::{Read, Seek, SeekFrom};
            let full = crate::fsutil::resolve_in_root(root, &path, true)?;
            let mut file = std::fs::File::open(&full).map_err(|e| Error::io(Path::new(&path), e))?;
            let (offset, length) = range.unwrap_or((0, MAX_READ_BYTES));
            if length > MAX_READ_BYTES {
                return Err(Error::InvalidRequest(format!("read of {length} bytes exceeds the {MAX_READ_BYTES}-byte limit")));
            }
            file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(Path::new(&path), e))?;
            let mut data = Vec::new();
            file.take(length).read_to_end(&mut data).map_err(|e| Error::io(Path::new(&path), e))?;
            Ok(data)
        })
        .await
    }

    /// Lists a directory of a reference, optionally only names matching a glob pattern.
    pub async fn read_dir(&self, id: &str, path: &str, pattern: Option<String>) -> Result<Vec<Stat>, Error> {
        let path = path.to_string();
        self.with_root(id, move |root| {
            let dir = crate::fsutil::resolve_in_root(root, &path, true)?;
            let matcher = match &pattern {
                Some(p) => Some(
                    hoist_patternmatcher::PatternMatcher::new(&[p.clone()])
                        .map_err(|e| Error::InvalidRequest(format!("pattern {p:?}: {e}")))?,
                ),
                None => None,
            };
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(Path::new(&path), e))? {
                let entry = entry.map_err(|e| Error::io(Path::new(&path), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(m) = &matcher {
                    if !m.matches(&name).unwrap_or(false) {
                        continue;
                    }
                }
                out.push(stat_of(&entry.path(), name)?);
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
        .await
    }

    /// Describes one path of a reference (symlinks not followed).
    pub async fn stat(&self, id: &str, path: &str) -> Result<Stat, Error> {
        let path = path.to_string();
        self.with_root(id, move |root| {
            let full = crate::fsutil::resolve_in_root(root, &path, false)?;
            stat_of(&full, path.trim_start_matches('/').to_string())
        })
        .await
    }

    /// Resolves an image reference to its canonical name, manifest digest and config.
    pub async fn resolve_image_config(
        &self,
        reference: &str,
        platform: Option<&hoist_llb::Platform>,
    ) -> Result<(String, String, String), Error> {
        let platform = crate::ops::source_platform(platform);
        if let Some(layout) = reference.strip_prefix("oci-layout://") {
            let (path, tag) = hoist_source::layout::parse_layout_ref(layout);
            self.check_layout_allowed(&path)?;
            let shared = self.engine.shared.clone();
            let image = tokio::task::spawn_blocking(move || {
                hoist_source::resolve_layout(&path, tag.as_deref(), &platform, &shared.content).map(|i| (path, i))
            })
            .await
            .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?;
            let (path, image) = image?;
            let config = String::from_utf8_lossy(&image.config).into_owned();
            let pinned = format!("oci-layout://{}@{}", path.display(), image.manifest_digest);
            return Ok((pinned, image.manifest_digest.to_string(), config));
        }
        let image = self.engine.shared.images.resolve(reference, &platform).await?;
        let config = String::from_utf8_lossy(&image.config).into_owned();
        Ok((image.canonical_ref, image.manifest_digest.to_string(), config))
    }

    /// The job's named contexts as definitions.
    pub fn inputs(&self) -> Vec<(String, Definition)> {
        if let Some(inputs) = &self.inputs_override {
            return inputs.clone();
        }
        self.contexts
            .iter()
            .map(|(name, source)| {
                let identifier = match source {
                    ContextSource::Local(_) => format!("local://{name}"),
                    ContextSource::Image(r) => format!("docker-image://{r}"),
                    ContextSource::OciLayout(r) => format!("oci-layout://{r}"),
                };
                let op = hoist_llb::Op::new(OpKind::Source(SourceOp {
                    identifier,
                    include_patterns: Vec::new(),
                    exclude_patterns: Vec::new(),
                    follow_paths: Vec::new(),
                    attrs: Vec::new(),
                }));
                (name.clone(), Definition { ops: vec![op], output: Some(hoist_llb::OpRef { op: 0, output: 0 }) })
            })
            .collect()
    }

    /// Forwards a frontend warning.
    pub fn warn(&self, rule: Option<String>, message: String, location: Option<hoist_llb::SourceLocation>) {
        self.progress.send(Event::Warning { rule, message, location });
    }

    /// Forwards a frontend log line.
    pub fn log(&self, message: String) {
        self.progress.send(Event::FrontendLog { message });
    }

    /// Points every `local://NAME` source at this job's directory for NAME.
    fn bind_locals(&self, mut definition: Definition) -> Result<Definition, Error> {
        for op in &mut definition.ops {
            let OpKind::Source(source) = &mut op.kind else { continue };
            match source.parse() {
                Ok(Source::Local { name }) => {
                    let dir = self.local_dir(&name)?;
                    source.attrs.retain(|(k, _)| k != LOCAL_DIR_ATTR);
                    source.attrs.push((LOCAL_DIR_ATTR.into(), dir.to_string_lossy().into_owned()));
                }
                Ok(Source::OciLayout { path, .. }) => self.check_layout_allowed(Path::new(&path))?,
                _ => {}
            }
        }
        Ok(definition)
    }

    /// A frontend may only read OCI layouts the user named as build contexts.
    fn check_layout_allowed(&self, path: &Path) -> Result<(), Error> {
        let allowed = self.contexts.iter().any(|(_, s)| match s {
            ContextSource::OciLayout(value) => hoist_source::layout::parse_layout_ref(value).0 == path,
            _ => false,
        });
        if allowed {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "OCI layout {} was not given as a build context (use --build-context NAME=oci-layout://PATH)",
                path.display()
            )))
        }
    }

    /// The directory of a local context.
    fn local_dir(&self, name: &str) -> Result<PathBuf, Error> {
        self.contexts
            .iter()
            .find_map(|(n, s)| match s {
                ContextSource::Local(dir) if n == name => Some(dir.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::MissingContext(name.to_string()))
    }

    /// Runs blocking `f` with a directory holding the merged filesystem of reference `id`.
    async fn with_root<T: Send + 'static>(
        &self,
        id: &str,
        f: impl FnOnce(&Path) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let chain = self.chain_of(id).await?;
        let shared = self.engine.shared.clone();
        tokio::task::spawn_blocking(move || match chain.layers() {
            [] => {
                let empty = shared.scratch_dir()?;
                f(empty.path())
            }
            [single] => f(&shared.snapshots.layer_dir(single)),
            layers => {
                let view = shared.snapshots.view(layers)?;
                f(view.path())
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
    }
}

/// The gateway's description of one path.
fn stat_of(full: &Path, path: String) -> Result<Stat, Error> {
    let meta = std::fs::symlink_metadata(full).map_err(|e| Error::io(Path::new(&path), e))?;
    let link_target = if meta.file_type().is_symlink() {
        std::fs::read_link(full).ok().map(|t| t.to_string_lossy().into_owned())
    } else {
        None
    };
    Ok(Stat {
        path,
        mode: meta.mode(),
        size: meta.size(),
        mtime_ns: meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()),
        uid: meta.uid(),
        gid: meta.gid(),
        link_target,
    })
}

/// Converts an engine error into the message a frontend sees.
fn to_gateway(e: Error) -> GatewayError {
    let not_found = matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        || matches!(&e, Error::Path(p) if p.is_not_found());
    let mut err = GatewayError::new(e.to_string());
    err.not_found = not_found;
    err
}

/// Converts the gateway's file description.
fn to_file_stat(s: Stat) -> FileStat {
    FileStat {
        path: s.path,
        mode: s.mode,
        size: s.size,
        mtime_ns: s.mtime_ns,
        uid: s.uid,
        gid: s.gid,
        link_target: s.link_target,
    }
}

#[async_trait::async_trait]
impl hoist_frontend_host::Solver for JobGateway {
    async fn solve(&self, def: Definition, evaluate: bool) -> Result<Option<String>, GatewayError> {
        JobGateway::solve(self, def, evaluate).await.map_err(to_gateway)
    }

    async fn solve_frontend(
        &self,
        source: String,
        options: Vec<(String, String)>,
        inputs: Vec<(String, Definition)>,
    ) -> Result<FrontendSolved, GatewayError> {
        let engine = self.engine.clone();
        Box::pin(engine.run_chained(self, source, options, inputs)).await.map_err(to_gateway)
    }

    async fn resolve_image_config(
        &self,
        reference: String,
        platform: Option<hoist_llb::Platform>,
        _mode: ResolveMode,
    ) -> Result<ResolvedImageConfig, GatewayError> {
        let (canonical_ref, digest, config) =
            JobGateway::resolve_image_config(self, &reference, platform.as_ref()).await.map_err(to_gateway)?;
        Ok(ResolvedImageConfig { canonical_ref, digest, config })
    }
}

#[async_trait::async_trait]
impl hoist_frontend_host::RefReader for JobGateway {
    async fn read_file(&self, reference: &String, path: &str, offset: u64, length: u64) -> Result<Vec<u8>, GatewayError> {
        JobGateway::read_file(self, reference, path, Some((offset, length.min(MAX_READ_BYTES)))).await.map_err(to_gateway)
    }

    async fn read_dir(
        &self,
        reference: &String,
        path: &str,
        pattern: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FileStat>, GatewayError> {
        let mut entries = JobGateway::read_dir(self, reference, path, pattern.map(str::to_string)).await.map_err(to_gateway)?;
        entries.truncate(limit);
        Ok(entries.into_iter().map(to_file_stat).collect())
    }

    async fn stat(&self, reference: &String, path: &str) -> Result<FileStat, GatewayError> {
        JobGateway::stat(self, reference, path).await.map(to_file_stat).map_err(to_gateway)
    }
}

impl hoist_frontend_host::Gateway for JobGateway {
    fn inputs(&self) -> Vec<(String, Definition)> {
        JobGateway::inputs(self)
    }

    fn report(&self, event: FrontendEvent) {
        match event {
            FrontendEvent::Warn(w) => self.warn(w.rule, w.message, w.location),
            FrontendEvent::Log(_, message) => self.log(message),
        }
    }
}
