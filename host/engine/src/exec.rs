//! Exec ops: prepares the root and the other mounts of an LLB exec, runs it through the worker,
//! and commits every writable mount that the op publishes as an output.
//!
//! This module decides *what* is mounted where; mounting is the snapshotter's job and running the
//! process the worker's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hoist_llb::{CacheSharing, ExecOp, MountKind, NetworkMode, SecurityMode};
use hoist_store::snapshot::{Mutable, Snapshotter, View};
use hoist_worker::{CancelToken, ExecMount, ExecRequest, Network, RuncExecutor, Stream};

use crate::chain::Chain;
use crate::{Error, Secrets, SshSockets};

/// Where a mount's filesystem comes from while the process runs.
enum Prepared {
    /// A writable overlay whose upper dir may be committed afterwards.
    Writable(Mutable),
    /// A read-only view of a chain.
    ReadOnly(View),
    /// A directory that outlives the op (cache mounts) or is discarded with it.
    Dir(PathBuf),
    /// A tmpfs of this size.
    Tmpfs(u64),
}

/// Persistent directories of cache mounts, with a lock per id for `sharing=locked`.
pub struct CacheMounts {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl CacheMounts {
    /// Cache mount directories live under `root`, one per id.
    pub fn new(root: PathBuf) -> CacheMounts {
        CacheMounts { root, locks: Mutex::new(HashMap::new()) }
    }

    /// The directory of cache mount `id` (named by a digest of the id: ids are free text).
    fn dir(&self, id: &str) -> Result<PathBuf, Error> {
        let name = hoist_store::Digest::of(id.as_bytes());
        let dir = self.root.join(name.hex());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    /// The lock serialising `sharing=locked` users of `id`.
    fn lock(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }
}

/// Everything an exec needs from the engine.
pub struct ExecEnv<'a> {
    /// The snapshotter holding every layer.
    pub snapshots: &'a Snapshotter,
    /// The OCI runtime.
    pub runtime: &'a RuncExecutor,
    /// Cache mount directories.
    pub caches: &'a CacheMounts,
    /// Secrets of the job that runs this exec (never stored).
    pub secrets: &'a Secrets,
    /// SSH agent sockets of the job that runs this exec, by id.
    pub ssh: &'a SshSockets,
    /// A scratch directory for this exec, removed afterwards.
    pub scratch: &'a Path,
}

/// Runs `op` with `inputs[i]` the chain of the op's i-th referenced input and returns one chain
/// per output index.
pub fn run_exec(
    env: &ExecEnv<'_>,
    op: &ExecOp,
    input_chain: &dyn Fn(usize) -> Chain,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    cancel: &CancelToken,
) -> Result<Vec<(u32, Chain)>, Error> {
    let mut prepared = Vec::with_capacity(op.mounts.len());
    let mut cache_locks = Vec::new();
    let mut _cache_guards = Vec::new();
    for (index, mount) in op.mounts.iter().enumerate() {
        let chain = mount.input.map(|_| input_chain(index)).unwrap_or_default();
        let p = match &mount.kind {
            MountKind::Bind if mount.dest == "/" || !mount.readonly => {
                Prepared::Writable(env.snapshots.prepare(chain.layers())?)
            }
            MountKind::Bind => Prepared::ReadOnly(env.snapshots.view(chain.layers())?),
            MountKind::Cache(cache) => {
                if cache.sharing == CacheSharing::Locked {
                    cache_locks.push(env.caches.lock(&cache.id));
                }
                Prepared::Dir(env.caches.dir(&cache.id)?)
            }
            MountKind::Tmpfs(t) => Prepared::Tmpfs(t.size),
            MountKind::Secret(secret) => match env.secrets.get(&secret.id) {
                Some(value) => Prepared::Dir(write_secret(env.scratch, index, value, secret)?),
                None if secret.optional => continue,
                None => return Err(Error::MissingSecret(secret.id.clone())),
            },
            // The agent socket is bound as it is; without one for this id the mount is left
            // out, as BuildKit does for an ssh mount that is not `required`.
            MountKind::Ssh(id) => match env.ssh.get(id) {
                Some(socket) => Prepared::Dir(socket.clone()),
                None => {
                    tracing::debug!(id = %id, "no ssh socket forwarded for this id; mount skipped");
                    continue;
                }
            },
        };
        prepared.push((index, p));
    }
    for lock in &cache_locks {
        _cache_guards.push(lock.lock().unwrap_or_else(|p| p.into_inner()));
    }

    let request = exec_request(env, op, &prepared)?;
    env.runtime.run(&request, on_output, cancel)?;
    drop(_cache_guards);

    let mut outputs = Vec::new();
    for (index, p) in prepared {
        let mount = &op.mounts[index];
        if let (Some(output), Prepared::Writable(m)) = (mount.output, p) {
            let base = mount.input.map(|_| input_chain(index)).unwrap_or_default();
            outputs.push((output, base.with_layer(m.commit()?)));
        }
    }
    Ok(outputs)
}

/// Builds the worker's request from the prepared mounts.
fn exec_request(env: &ExecEnv<'_>, op: &ExecOp, prepared: &[(usize, Prepared)]) -> Result<ExecRequest, Error> {
    let mut rootfs = None;
    let mut mounts = Vec::new();
    for (index, p) in prepared {
        let mount = &op.mounts[*index];
        let source = match p {
            Prepared::Writable(m) => m.mountpoint().to_path_buf(),
            Prepared::ReadOnly(v) => v.path().to_path_buf(),
            Prepared::Dir(d) => d.clone(),
            Prepared::Tmpfs(size) => {
                mounts.push(ExecMount { dest: mount.dest.clone(), kind: hoist_worker::MountKind::Tmpfs { size: *size } });
                continue;
            }
        };
        if mount.dest == "/" {
            rootfs = Some(source);
            continue;
        }
        let source = select(&source, &mount.selector)?;
        let readonly = mount.readonly || matches!(mount.kind, MountKind::Secret(_));
        mounts.push(ExecMount { dest: mount.dest.clone(), kind: hoist_worker::MountKind::Bind { source, readonly } });
    }
    let rootfs = rootfs.ok_or_else(|| Error::Internal("exec op without a root mount".into()))?;
    let _ = env;
    Ok(ExecRequest {
        rootfs,
        args: op.args.clone(),
        env: op.env.clone(),
        cwd: if op.cwd.is_empty() { "/".into() } else { op.cwd.clone() },
        user: op.user.clone(),
        hostname: op.hostname.clone(),
        network: match op.network {
            NetworkMode::None => Network::None,
            NetworkMode::Host => Network::Host,
        },
        insecure: op.security == SecurityMode::Insecure,
        mounts,
    })
}

/// The path of `selector` inside a mounted filesystem, never leaving it.
fn select(root: &Path, selector: &str) -> Result<PathBuf, Error> {
    let selector = selector.trim_start_matches('/');
    if selector.is_empty() {
        return Ok(root.to_path_buf());
    }
    Ok(crate::fsutil::resolve_in_root(root, selector, true)?)
}

/// Writes a secret into a private directory of the exec's scratch space; the directory is bound
/// read-only at the mount's destination as a single file.
fn write_secret(scratch: &Path, index: usize, value: &[u8], secret: &hoist_llb::SecretMount) -> Result<PathBuf, Error> {
    use std::os::unix::fs::{chown, PermissionsExt};
    let path = scratch.join(format!("secret-{index}"));
    std::fs::write(&path, value).map_err(|e| Error::io(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(secret.mode & 0o7777))
        .map_err(|e| Error::io(&path, e))?;
    chown(&path, Some(secret.uid), Some(secret.gid)).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}
