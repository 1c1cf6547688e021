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
use hoist_solver::{ExecError, ExecJob, OpExecutor, ResultId, VertexInfo};
use hoist_source::ResolvedImage;
use hoist_store::snapshot::LayerId;
use hoist_worker::{CancelToken, Stream};

use crate::chain::Chain;
use crate::exec::{run_exec, ExecEnv};
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

    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async move {
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
                let filter = crate::context::PatternFilter::new(&source.include_patterns, &source.exclude_patterns)?;
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
            other => Err(Error::Unsupported(format!("source {other:?}"))),
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
                let filter = crate::context::PatternFilter::new(&source.include_patterns, &source.exclude_patterns)?;
                let shared = self.shared.clone();
                blocking(move || {
                    let layer = shared.snapshots.prepare(&[])?;
                    crate::context::sync_local(&dir, layer.mountpoint(), &filter)?;
                    Ok(Chain::scratch().with_layer(layer.commit()?))
                })
                .await
            }
            other => Err(Error::Unsupported(format!("source {other:?}"))),
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
            let env = ExecEnv {
                snapshots: &shared.snapshots,
                runtime: &shared.runtime,
                caches: &shared.caches,
                secrets: &secrets,
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
