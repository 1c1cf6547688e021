//! The solver's op executor: each LLB op kind turned into store, worker and source calls.
//!
//! Every op's result is a [`Chain`]; blocking work (mounts, copying, running containers) runs on
//! tokio's blocking pool. A dropped (cancelled) execution sets the worker's cancel token so the
//! container is killed and nothing half-done is committed: a layer is only committed after its
//! step succeeded, and the solver records the result only after `execute` returned.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use hoist_llb::{Op, OpKind, OpRef, Source, SourceOp};
use hoist_solver::{ExecError, ExecJob, OpExecutor, ResultId, SelectedContent, VertexInfo};
use hoist_source::ResolvedImage;
use hoist_store::snapshot::LayerId;
use hoist_worker::{CancelToken, Stream};

use crate::chain::Chain;
use crate::exec::{run_exec, ExecEnv};
use crate::selection::{LocalFilter, PathSelector};
use crate::state::Shared;
use crate::Error;

/// Attribute the job adds to `local://NAME` sources: the client directory it stands for.
pub(crate) const LOCAL_DIR_ATTR: &str = "hoist.local.dir";

/// The engine's [`OpExecutor`].
pub(crate) struct Ops {
    shared: Arc<Shared>,
    /// Images resolved during content-key computation, reused by the execution that follows.
    resolved: Mutex<HashMap<String, ResolvedImage>>,
}

impl Ops {
    /// An executor over the engine's shared parts.
    pub(crate) fn new(shared: Arc<Shared>) -> Ops {
        Ops { shared, resolved: Mutex::new(HashMap::new()) }
    }
}

impl OpExecutor for Ops {
    fn content_key<'a>(&'a self, _vertex: &'a VertexInfo, op: &'a Op) -> BoxFuture<'a, Result<Option<String>, ExecError>> {
        Box::pin(async move {
            let OpKind::Source(source) = &op.kind else { return Ok(None) };
            self.source_key(source, op).await.map_err(ExecError::new)
        })
    }

    fn selected_content<'a>(
        &'a self,
        _vertex: &'a VertexInfo,
        op: &'a Op,
        inputs: &'a [&'a Op],
    ) -> BoxFuture<'a, Result<Vec<Option<SelectedContent>>, ExecError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(inputs.len());
            for (selectors, input) in input_selectors(op).into_iter().zip(inputs) {
                let selected = match (selectors, &input.kind) {
                    (Some(selectors), OpKind::Source(source)) => self.local_selection(source, selectors).await,
                    _ => None,
                };
                out.push(selected);
            }
            Ok(out)
        })
    }

    fn explain_facets(&self, _vertex: &VertexInfo, op: &Op) -> Vec<(String, String)> {
        crate::explain::secret_facets(&self.shared, op)
    }

    fn content_files<'a>(
        &'a self,
        _vertex: &'a VertexInfo,
        op: &'a Op,
    ) -> BoxFuture<'a, Result<Option<Vec<hoist_solver::FileFact>>, ExecError>> {
        Box::pin(async move {
            let OpKind::Source(source) = &op.kind else { return Ok(None) };
            let (shared, source) = (self.shared.clone(), source.clone());
            blocking(move || crate::explain::local_files(&shared, &source)).await.map_err(ExecError::new)
        })
    }

    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async move {
            let _in_use = self.shared.gc.hold(&job.inputs);
            let chains = self.run(job).await.map_err(ExecError::new)?;
            Ok(chains.iter().map(|c| ResultId::new(c.encode())).collect())
        })
    }
}

impl Ops {
    /// The content part of a source's cache key.
    async fn source_key(&self, source: &SourceOp, op: &Op) -> Result<Option<String>, Error> {
        match source.parse()? {
            Source::Image { reference } if reference.contains("@sha256:") => Ok(None),
            Source::Image { reference } => {
                let image = self.resolve_image(&reference, op).await?;
                Ok(Some(image.manifest_digest.to_string()))
            }
            Source::Local { name } => {
                let dir = local_dir(source, &name)?;
                let filter = local_filter(&dir, source)?;
                let shared = self.shared.clone();
                let sum = blocking(move || {
                    let tree = shared.db.open_tree("checksums").map_err(|e| Error::Internal(format!("sled: {e}")))?;
                    let cache = crate::checksum::ChecksumCache::new(tree);
                    Ok(crate::checksum::tree_checksum(&dir, &filter, &cache)?.digest)
                })
                .await?;
                Ok(Some(sum))
            }
            Source::OciLayout { .. } => Ok(None),
            Source::Http { url } => Ok(Some(crate::remote_sources::http_key(&self.shared, source, &url).await?)),
            Source::Git { remote, reference } => {
                Ok(Some(crate::remote_sources::git_key(source, &remote, reference.as_deref()).await?))
            }
        }
    }

    /// The content of exactly what `selectors` read of a `local://` source; `None` when the
    /// source is not local or the selection cannot be resolved (the step is then keyed on the
    /// whole source, and running it reports the problem).
    async fn local_selection(&self, source: &SourceOp, selectors: Vec<PathSelector>) -> Option<SelectedContent> {
        let Ok(Source::Local { name }) = source.parse() else { return None };
        let dir = local_dir(source, &name).ok()?;
        let filter = local_filter(&dir, source).ok()?;
        let shared = self.shared.clone();
        let paths = selectors.iter().map(|s| s.path.clone()).collect();
        let result = blocking(move || {
            let tree = shared.db.open_tree("checksums").map_err(|e| Error::Internal(format!("sled: {e}")))?;
            let cache = crate::checksum::ChecksumCache::new(tree);
            Ok(crate::checksum::selection_checksum(&dir, &filter, &selectors, &cache)?)
        })
        .await;
        match result {
            Ok((sum, _resolved)) => Some(SelectedContent { paths, checksum: sum.digest }),
            Err(e) => {
                tracing::debug!("keying on the whole local source {name}: {e}");
                None
            }
        }
    }

    /// Resolves an image reference for the op's platform, remembering the answer.
    async fn resolve_image(&self, reference: &str, op: &Op) -> Result<ResolvedImage, Error> {
        let platform = platform_of(op);
        let key = format!("{reference} {platform}");
        if let Some(found) = self.resolved.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(found.clone());
        }
        let image = self.shared.images.resolve(reference, &platform).await?;
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).insert(key, image.clone());
        Ok(image)
    }

    /// Runs one op and returns its outputs' chains by output index.
    async fn run(&self, job: ExecJob) -> Result<Vec<Chain>, Error> {
        let inputs: Vec<(OpRef, Chain)> = job
            .op
            .inputs()
            .into_iter()
            .zip(job.inputs.iter())
            .map(|(r, id)| Chain::decode(id.as_str()).map(|c| (r, c)))
            .collect::<Result<_, _>>()?;
        let chain_of = move |r: &OpRef| -> Chain {
            inputs.iter().find(|(i, _)| i == r).map(|(_, c)| c.clone()).unwrap_or_default()
        };
        match &job.op.kind {
            OpKind::Source(source) => Ok(vec![self.run_source(source, &job.op).await?]),
            OpKind::Exec(_) => self.run_exec(job, chain_of).await,
            OpKind::File(file) => {
                let shared = self.shared.clone();
                let file = file.clone();
                let chain = blocking(move || run_file(&shared, &file, &chain_of)).await?;
                Ok(vec![chain])
            }
            OpKind::Merge(merge) => {
                let layers = merge.inputs.iter().flat_map(|r| chain_of(r).0).collect();
                Ok(vec![Chain(layers)])
            }
            OpKind::Diff(diff) => {
                let lower = diff.lower.map(|r| chain_of(&r)).unwrap_or_default();
                let upper = chain_of(&diff.upper);
                match upper.layers().strip_prefix(lower.layers()) {
                    Some(rest) => Ok(vec![Chain(rest.to_vec())]),
                    None => Err(Error::Unsupported("diff of two results that do not share a base".into())),
                }
            }
        }
    }

    /// Materialises a source as a chain.
    async fn run_source(&self, source: &SourceOp, op: &Op) -> Result<Chain, Error> {
        match source.parse()? {
            Source::Image { reference } => {
                let image = self.resolve_image(&reference, op).await?;
                self.import_image(image).await
            }
            Source::OciLayout { path, digest } => {
                let shared = self.shared.clone();
                let platform = platform_of(op);
                let image = blocking(move || {
                    Ok(hoist_source::layout::resolve_layout(
                        std::path::Path::new(&path),
                        Some(&digest.to_string()),
                        &platform,
                        &shared.content,
                    )?)
                })
                .await?;
                self.import_image(image).await
            }
            Source::Local { name } => {
                let dir = local_dir(source, &name)?;
                let filter = local_filter(&dir, source)?;
                let shared = self.shared.clone();
                blocking(move || {
                    let layer = shared.snapshots.prepare(&[])?;
                    crate::context::sync_local(&dir, layer.mountpoint(), &filter)?;
                    Ok(Chain::scratch().with_layer(layer.commit()?))
                })
                .await
            }
            Source::Http { url } => crate::remote_sources::http_chain(&self.shared, source, &url).await,
            Source::Git { remote, reference } => {
                crate::remote_sources::git_chain(&self.shared, source, &remote, reference.as_deref()).await
            }
        }
    }

    /// Pulls an image's layers (if needed) and imports each into the snapshotter once.
    async fn import_image(&self, image: ResolvedImage) -> Result<Chain, Error> {
        // An OCI layout's blobs were copied into the content store when it was resolved; its
        // `oci-layout://` name is no registry reference to pull from.
        if !image.canonical_ref.starts_with("oci-layout://") {
            self.shared.images.pull_layers(&image, &|_| {}).await?;
        }
        let shared = self.shared.clone();
        blocking(move || {
            let tree = shared.db.open_tree("imported-layers").map_err(|e| Error::Internal(format!("sled: {e}")))?;
            let mut chain = Chain::scratch();
            for layer in &image.layers {
                let key = layer.digest().to_string();
                let known = tree.get(&key).map_err(|e| Error::Internal(format!("sled: {e}")))?;
                let id = match known.and_then(|v| String::from_utf8_lossy(&v).parse::<LayerId>().ok()) {
                    Some(id) if shared.snapshots.layer_dir(&id).is_dir() => id,
                    _ => {
                        let digest: hoist_store::Digest = key.parse()?;
                        let blob = shared.content.open_blob(&digest)?;
                        let id = shared.snapshots.import_layer(std::io::BufReader::new(blob))?;
                        tree.insert(&key, id.as_str().as_bytes()).map_err(|e| Error::Internal(format!("sled: {e}")))?;
                        id
                    }
                };
                chain = chain.with_layer(id);
            }
            tree.flush().map_err(|e| Error::Internal(format!("sled: {e}")))?;
            Ok(chain)
        })
        .await
    }

    /// Runs an exec op in a container.
    async fn run_exec(&self, job: ExecJob, chain_of: impl Fn(&OpRef) -> Chain + Send + 'static) -> Result<Vec<Chain>, Error> {
        let cancel = CancelToken::default();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let shared = self.shared.clone();
        let outputs = blocking(move || {
            let OpKind::Exec(exec) = &job.op.kind else { return Err(Error::Internal("not an exec op".into())) };
            let scratch = shared.scratch_dir()?;
            let secrets = shared.secrets.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let ssh = shared.ssh.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let env = ExecEnv {
                snapshots: &shared.snapshots,
                runtime: &shared.runtime,
                caches: &shared.caches,
                secrets: &secrets,
                ssh: &ssh,
                scratch: scratch.path(),
            };
            let log = &job.log;
            let mut on_output = |stream: Stream, data: &[u8]| match stream {
                Stream::Stdout => log.stdout(data),
                Stream::Stderr => log.stderr(data),
            };
            let input_chain = |mount: usize| exec.mounts[mount].input.map(|r| chain_of(&r)).unwrap_or_default();
            run_exec(&env, exec, &input_chain, &mut on_output, &cancel)
        })
        .await?;
        let count = outputs.iter().map(|(i, _)| *i as usize + 1).max().unwrap_or(0);
        let mut chains = vec![Chain::scratch(); count];
        for (index, chain) in outputs {
            chains[index as usize] = chain;
        }
        Ok(chains)
    }
}

/// Applies a file op on top of its base.
fn run_file(shared: &Shared, file: &hoist_llb::FileOp, chain_of: &dyn Fn(&OpRef) -> Chain) -> Result<Chain, Error> {
    let base = file.base.map(|r| chain_of(&r)).unwrap_or_default();
    let layer = shared.snapshots.prepare(base.layers())?;
    let mut views = HashMap::new();
    for action in &file.actions {
        if let hoist_llb::FileAction::Copy(copy) = action {
            if !views.contains_key(&copy.src) {
                views.insert(copy.src, shared.snapshots.view(chain_of(&copy.src).layers())?);
            }
        }
    }
    let src_root = |r: &OpRef| -> Option<PathBuf> { views.get(r).map(|v| v.path().to_path_buf()) };
    crate::fileop::apply_actions(layer.mountpoint(), &file.actions, &src_root)?;
    drop(views);
    Ok(base.with_layer(layer.commit()?))
}

/// Per `Op::inputs()` position, the paths the op reads of that input when it reads only part of
/// it, as BuildKit keys on content for selectors: a file op's copy sources, and read-only bind
/// mounts other than the root. `None`: the op reads the whole input (a file op's base, an exec's
/// root or writable mounts).
fn input_selectors(op: &Op) -> Vec<Option<Vec<PathSelector>>> {
    match &op.kind {
        OpKind::File(file) => {
            let mut out = Vec::new();
            if file.base.is_some() {
                out.push(None);
            }
            for action in &file.actions {
                if let hoist_llb::FileAction::Copy(copy) = action {
                    out.push(Some(vec![PathSelector {
                        path: copy.src_path.clone(),
                        follow_symlinks: copy.follow_symlinks,
                        allow_wildcard: copy.allow_wildcard,
                        include_patterns: copy.include_patterns.clone(),
                        exclude_patterns: copy.exclude_patterns.clone(),
                    }]));
                }
            }
            out
        }
        OpKind::Exec(exec) => exec
            .mounts
            .iter()
            .filter(|m| m.input.is_some())
            .map(|m| {
                let partial = m.readonly && m.dest != "/" && matches!(m.kind, hoist_llb::MountKind::Bind);
                let path = if m.selector.is_empty() { "/" } else { m.selector.as_str() };
                partial.then(|| vec![PathSelector::subtree(path)])
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What a `local://` source op selects of its directory.
fn local_filter(dir: &std::path::Path, source: &SourceOp) -> Result<LocalFilter, Error> {
    Ok(LocalFilter::new(dir, &source.include_patterns, &source.exclude_patterns, &source.follow_paths)?)
}

/// The client directory a rewritten `local://NAME` source stands for.
fn local_dir(source: &SourceOp, name: &str) -> Result<PathBuf, Error> {
    source
        .attrs
        .iter()
        .find(|(k, _)| k == LOCAL_DIR_ATTR)
        .map(|(_, v)| PathBuf::from(v))
        .ok_or_else(|| Error::MissingContext(name.to_string()))
}

/// The platform an op asks for, or the host's.
fn platform_of(op: &Op) -> hoist_source::Platform {
    source_platform(op.platform.as_ref())
}

/// An LLB platform in the sources' terms; none means the host's.
pub(crate) fn source_platform(platform: Option<&hoist_llb::Platform>) -> hoist_source::Platform {
    match platform {
        Some(p) => hoist_source::Platform::new(&p.os, &p.architecture, p.variant.as_deref()),
        None => hoist_source::Platform::host(),
    }
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

/// Sets a cancel token when dropped, so a cancelled execution kills its container.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
