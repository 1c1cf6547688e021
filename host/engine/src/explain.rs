//! The engine's part in explaining cache misses (the solver's `explain` module does the
//! comparing): which scope a build's record belongs to, the file lists of local contexts, and
//! fingerprints of secrets that reveal nothing of their values.
//!
//! # Scope
//!
//! "The same target from the same context": the frontend asked for, the main context directory,
//! the build file's directory and name, and the target. Two builds with the same scope are
//! compared step by step.
//!
//! # Secret fingerprints
//!
//! A step using a secret gets a facet `secret:ID` whose value is the first 8 bytes of
//! SHA-256(key ‖ id ‖ 0 ‖ value), `key` being 32 random bytes made once per state directory
//! and kept in its database. The fingerprint tells "changed" from "unchanged" and nothing else:
//! without the key it cannot be checked against guesses, and with it a guess can only be
//! confirmed to 64 bits. The value itself never leaves the job's memory.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use hoist_llb::{MountKind, Op, OpKind, Source, SourceOp};
use hoist_solver::explain::{FileFact, FileKind};
use sha2::{Digest as _, Sha256};

use crate::job::{BuildRequest, ContextSource};
use crate::state::Shared;
use crate::Error;

/// Sled tree of the engine's explain data (the secret fingerprint key).
const TREE: &str = "hoist-engine/explain/v1";

/// Key under which the fingerprint key is stored.
const SECRET_KEY: &[u8] = b"secret-fingerprint-key";

/// The scope of a build's explain record (see the module doc).
pub(crate) fn scope_of(request: &BuildRequest, frontend: &str) -> String {
    let dir_of = |name: &str| {
        request
            .contexts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| match c {
                ContextSource::Local(dir) => std::fs::canonicalize(dir)
                    .unwrap_or_else(|_| dir.clone())
                    .display()
                    .to_string(),
                ContextSource::Image(r) => format!("docker-image://{r}"),
                ContextSource::OciLayout(r) => format!("oci-layout://{r}"),
            })
    };
    let option = |key: &str| {
        request
            .options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    format!(
        "frontend={frontend}\ncontext={}\ndockerfile={}\nfilename={}\ntarget={}\nrequestid={}",
        dir_of("context").unwrap_or_default(),
        dir_of("dockerfile").unwrap_or_default(),
        option("filename"),
        option("target"),
        option("requestid"),
    )
}

/// The names of the build args a request sets.
pub(crate) fn build_arg_names(request: &BuildRequest) -> BTreeSet<String> {
    request
        .options
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("build-arg:").map(str::to_string))
        .collect()
}

/// Secret facets of an exec op: `secret:ID` → fingerprint, or `absent`.
pub(crate) fn secret_facets(shared: &Shared, op: &Op) -> Vec<(String, String)> {
    let OpKind::Exec(exec) = &op.kind else {
        return Vec::new();
    };
    let ids: Vec<&str> = exec
        .mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Secret(s) => Some(s.id.as_str()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let key = match fingerprint_key(&shared.db) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!("secret fingerprints unavailable: {e}");
            return Vec::new();
        }
    };
    let secrets = shared.secrets.lock().unwrap_or_else(|p| p.into_inner());
    ids.into_iter()
        .map(|id| {
            let value = match secrets.get(id) {
                Some(v) => secret_fingerprint(&key, id, v),
                None => "absent".to_string(),
            };
            (format!("secret:{id}"), value)
        })
        .collect()
}

/// The keyed fingerprint of a secret value (see the module doc).
fn secret_fingerprint(key: &[u8; 32], id: &str, value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update(id.as_bytes());
    h.update([0u8]);
    h.update(value);
    hex::encode(&h.finalize()[..8])
}

/// The state directory's fingerprint key, made on first use.
fn fingerprint_key(db: &sled::Db) -> Result<[u8; 32], Error> {
    let sled_err = |e: sled::Error| Error::Internal(format!("sled: {e}"));
    let tree = db.open_tree(TREE).map_err(sled_err)?;
    if let Some(k) = tree.get(SECRET_KEY).map_err(sled_err)? {
        if let Ok(key) = <[u8; 32]>::try_from(k.as_ref()) {
            return Ok(key);
        }
    }
    let mut fresh = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut fresh))
        .map_err(|e| Error::io(std::path::Path::new("/dev/urandom"), e))?;
    // Two processes racing here: the first write wins and both use it.
    match tree
        .compare_and_swap(SECRET_KEY, None as Option<&[u8]>, Some(&fresh[..]))
        .map_err(sled_err)?
    {
        Ok(()) => {
            tree.flush().map_err(sled_err)?;
            Ok(fresh)
        }
        Err(current) => current
            .current
            .and_then(|k| <[u8; 32]>::try_from(k.as_ref()).ok())
            .ok_or_else(|| Error::Internal("secret fingerprint key vanished".into())),
    }
}

/// The files a local source selects, with short content digests (from the checksum cache).
pub(crate) fn local_files(
    shared: &Shared,
    source: &SourceOp,
) -> Result<Option<Vec<FileFact>>, Error> {
    let Source::Local { .. } = source.parse()? else {
        return Ok(None);
    };
    let Some(dir) = source
        .attrs
        .iter()
        .find(|(k, _)| k == crate::ops::LOCAL_DIR_ATTR)
        .map(|(_, v)| PathBuf::from(v))
    else {
        return Ok(None);
    };
    let filter =
        crate::context::PatternFilter::new(&source.include_patterns, &source.exclude_patterns)?;
    let tree = shared
        .db
        .open_tree("checksums")
        .map_err(|e| Error::Internal(format!("sled: {e}")))?;
    let cache = crate::checksum::ChecksumCache::new(tree);
    let entries = crate::checksum::entry_digests(&dir, &filter, &cache)?;
    let mut files = Vec::with_capacity(entries.len());
    for (entry, digest) in entries {
        let ft = entry.meta.file_type();
        let (kind, digest) = if ft.is_file() {
            (
                FileKind::File,
                digest.map(|d| hex::encode(&d[..8])).unwrap_or_default(),
            )
        } else if ft.is_dir() {
            (FileKind::Dir, String::new())
        } else if ft.is_symlink() {
            let target = std::fs::read_link(dir.join(&entry.rel))
                .map_err(|e| Error::io(&dir.join(&entry.rel), e))?;
            (
                FileKind::Symlink,
                hex::encode(&Sha256::digest(target.as_os_str().as_bytes())[..8]),
            )
        } else {
            (FileKind::Other, entry.meta.rdev().to_string())
        };
        files.push(FileFact {
            path: entry.rel.to_string_lossy().into_owned(),
            kind,
            mode: entry.meta.mode() & 0o7777,
            uid: entry.meta.uid(),
            gid: entry.meta.gid(),
            digest,
        });
    }
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fingerprint_depends_on_key_id_and_value_and_hides_the_value() {
        let key = [7u8; 32];
        let a = secret_fingerprint(&key, "token", b"hunter2");
        assert_eq!(a.len(), 16);
        assert_ne!(a, secret_fingerprint(&key, "token", b"hunter3"));
        assert_ne!(a, secret_fingerprint(&key, "other", b"hunter2"));
        assert_ne!(a, secret_fingerprint(&[8u8; 32], "token", b"hunter2"));
        assert!(!a.contains("hunter2"));
    }

    #[test]
    fn scope_names_target_and_file() {
        let mut request = BuildRequest::dockerfile("/nonexistent/app".into());
        let plain = scope_of(&request, "builtin:dockerfile");
        request.options.push(("target".into(), "test".into()));
        let targeted = scope_of(&request, "builtin:dockerfile");
        assert_ne!(plain, targeted);
        assert!(targeted.contains("target=test"), "{targeted}");
        assert!(targeted.contains("context=/nonexistent/app"), "{targeted}");
    }
}
