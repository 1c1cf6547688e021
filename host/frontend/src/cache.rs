//! The on-disk cache of compiled components.
//!
//! A compiled component is stored as `<cache_dir>/<sha256 of the component>-<engine hash>.cwasm`,
//! where the engine hash covers wasmtime's version and every compilation setting
//! (`Engine::precompile_compatibility_hash`). Files are written to a temporary name, synced and
//! renamed, so a reader sees either nothing or a complete file, and never modified in place.

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::Error;

/// Feeds `Hash` output into sha256, so the engine hash is stable across processes and builds.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

/// Compiled components on disk, for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Cache {
        path: path.to_path_buf(),
        source,
    }
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for components compiled by `engine`.
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Result<CompileCache, Error> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut h = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let engine_hash = hex::encode(&h.0.finalize()[..8]);
        Ok(CompileCache { dir, engine_hash })
    }

    /// Where the compiled form of the component with `digest` (hex sha256) lives.
    pub(crate) fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", self.engine_hash))
    }

    /// The cached component, if there is a usable one; a stale or corrupt file is removed.
    #[allow(
        unsafe_code,
        reason = "deserializing files this cache wrote itself; see SAFETY"
    )]
    pub(crate) fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: `Component::deserialize_file` trusts the file to be compiled code produced by
        // `Component::serialize` for a compatible engine; it maps it and runs it. That holds
        // here: only `CompileCache::store` writes into this directory, which is hoist's own
        // state directory, under a name keyed by the component's sha256 and this engine's
        // compatibility hash (so a file from another wasmtime version or configuration is
        // never picked up; wasmtime re-checks its header and refuses a mismatch anyway), and
        // `store` publishes files only by an atomic rename of a fully written, synced file and
        // never modifies one afterwards, so the mapping cannot change under us.
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping unusable compiled frontend");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores the compiled form of `component` (atomically: temp file, fsync, rename).
    pub(crate) fn store(&self, digest: &str, component: &Component) -> Result<(), Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let bytes = component.serialize().map_err(|e| Error::Compile {
            digest: digest.to_string(),
            reason: format!("serializing: {e}"),
        })?;
        let path = self.path(digest);
        let tmp = self.dir.join(format!(
            ".{digest}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::Cache {
                path: path.clone(),
                source: e,
            }
        })
    }
}
