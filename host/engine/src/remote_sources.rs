//! The remote sources: HTTP(S) downloads and git checkouts, turned into cache keys and layers.
//!
//! Keys follow BuildKit. An HTTP source with a checksum (`http.checksum`) is keyed by the
//! checksum alone, without touching the network, and the download is verified when the source
//! runs. Without one, the URL is (re)validated: a stored `ETag`/`Last-Modified` from the last
//! download of the same URL goes along, a `304` reuses the stored blob, anything else downloads
//! again; the key is the content digest with the file's name and time. A git source is keyed by
//! the commit its ref resolves to (`git ls-remote`), so a moved branch rebuilds and an unchanged
//! one does not, whatever else changed in the build.
//!
//! Each source becomes one layer on scratch: the downloaded file (mode `http.perm`, 0600 by
//! default as Docker's ADD; mtime from `Last-Modified`), or the checked-out tree (`.git` kept
//! only with `git.keepgitdir`).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use hoist_llb::SourceOp;
use hoist_source::git::{self, ResolvedRef};
use hoist_source::http::{self, Download, Fetched, Validators};
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::state::Shared;
use crate::Error;

/// sled tree of the last download of each URL.
const HTTP_TREE: &str = "http-sources";

/// What the engine remembers of the last download of a URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HttpRecord {
    digest: String,
    filename: String,
    modified: Option<i64>,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl HttpRecord {
    fn of(download: &Download) -> HttpRecord {
        HttpRecord {
            digest: download.digest.to_string(),
            filename: download.filename.clone(),
            modified: download.modified,
            etag: download.validators.etag.clone(),
            last_modified: download.validators.last_modified.clone(),
        }
    }

    fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

/// A source attribute's value.
fn attr<'a>(source: &'a SourceOp, key: &str) -> Option<&'a str> {
    source
        .attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn sled_err(e: sled::Error) -> Error {
    Error::Internal(format!("sled: {e}"))
}

/// The stored record of `url`, if its blob is still in the content store.
fn stored_record(shared: &Shared, url: &str) -> Result<Option<HttpRecord>, Error> {
    let tree = shared.db.open_tree(HTTP_TREE).map_err(sled_err)?;
    let Some(bytes) = tree.get(url).map_err(sled_err)? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<HttpRecord>(&bytes) else {
        return Ok(None);
    };
    let present = record
        .digest
        .parse::<hoist_store::Digest>()
        .is_ok_and(|d| shared.content.has(&d));
    Ok(present.then_some(record))
}

fn store_record(shared: &Shared, url: &str, record: &HttpRecord) -> Result<(), Error> {
    let tree = shared.db.open_tree(HTTP_TREE).map_err(sled_err)?;
    let bytes =
        serde_json::to_vec(record).map_err(|e| Error::Internal(format!("http record: {e}")))?;
    tree.insert(url, bytes).map_err(sled_err)?;
    tree.flush().map_err(sled_err)?;
    Ok(())
}

/// Downloads `url` (conditionally on the stored record, unless a checksum is to be verified)
/// and returns the current record.
async fn refresh(shared: &Shared, url: &str, checksum: Option<&str>) -> Result<HttpRecord, Error> {
    let stored = stored_record(shared, url)?;
    let validators = match (&stored, checksum) {
        (Some(record), None) => Some(record.validators()),
        _ => None,
    };
    let fetched = http::fetch(&shared.content, url, validators.as_ref(), checksum)
        .await
        .map_err(hoist_source::Error::from)?;
    match fetched {
        Fetched::NotModified => {
            stored.ok_or_else(|| Error::Internal(format!("{url}: 304 without a stored download")))
        }
        Fetched::Downloaded(download) => {
            let record = HttpRecord::of(&download);
            store_record(shared, url, &record)?;
            Ok(record)
        }
    }
}

/// The content part of an HTTP source's cache key.
pub(crate) async fn http_key(
    shared: &Shared,
    source: &SourceOp,
    url: &str,
) -> Result<String, Error> {
    if let Some(checksum) = attr(source, "http.checksum") {
        return Ok(format!("http checksum {checksum}"));
    }
    let record = refresh(shared, url, None).await?;
    Ok(format!(
        "http {} {} {:?}",
        record.digest, record.filename, record.modified
    ))
}

/// Materialises an HTTP source: a layer holding the downloaded file.
pub(crate) async fn http_chain(
    shared: &Arc<Shared>,
    source: &SourceOp,
    url: &str,
) -> Result<Chain, Error> {
    let checksum = attr(source, "http.checksum");
    let reusable = match (stored_record(shared, url)?, checksum) {
        (Some(record), Some(sum)) if record.digest == sum => Some(record),
        (Some(record), None) => Some(record),
        _ => None,
    };
    let record = match reusable {
        Some(record) => record,
        None => refresh(shared, url, checksum).await?,
    };
    let mode = match attr(source, "http.perm") {
        Some(text) => u32::from_str_radix(text, 8).map_err(|_| {
            Error::InvalidRequest(format!("http.perm {text:?} is not an octal mode"))
        })?,
        None => 0o600,
    };
    let owner = |key: &str| -> Result<u32, Error> {
        attr(source, key).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| Error::InvalidRequest(format!("{key} {v:?} is not a number")))
        })
    };
    let (uid, gid) = (owner("http.uid")?, owner("http.gid")?);
    let shared = shared.clone();
    blocking(move || {
        let layer = shared.snapshots.prepare(&[])?;
        let digest: hoist_store::Digest = record.digest.parse()?;
        let path = layer.mountpoint().join(&record.filename);
        write_file(&shared, &digest, &path, mode, (uid, gid), record.modified)?;
        Ok(Chain::scratch().with_layer(layer.commit()?))
    })
    .await
}

/// Writes a blob to `path` with its mode, owner and modification time.
fn write_file(
    shared: &Shared,
    digest: &hoist_store::Digest,
    path: &Path,
    mode: u32,
    owner: (u32, u32),
    mtime: Option<i64>,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut blob = shared.content.open_blob(digest)?;
    let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    std::io::copy(&mut blob, &mut file).map_err(|e| Error::io(path, e))?;
    file.flush().map_err(|e| Error::io(path, e))?;
    drop(file);
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).map_err(|e| Error::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))?;
    if let Some(secs) = mtime {
        let time =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0).unsigned_abs());
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(time)
                .set_modified(time),
        )
        .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// The URL git fetches a `git://REMOTE` source from: `git.fullurl`, else `https://REMOTE`.
fn git_url(source: &SourceOp, remote: &str) -> String {
    attr(source, "git.fullurl").map_or_else(|| format!("https://{remote}"), str::to_string)
}

/// Refs resolved for a key, reused by the execution that follows (url and ref → commit).
fn resolved_refs() -> &'static Mutex<HashMap<(String, Option<String>), ResolvedRef>> {
    static REFS: OnceLock<Mutex<HashMap<(String, Option<String>), ResolvedRef>>> = OnceLock::new();
    REFS.get_or_init(Default::default)
}

/// Resolves the ref on the remote and checks `git.checksum`.
async fn resolve_git(
    source: &SourceOp,
    url: String,
    reference: Option<String>,
) -> Result<ResolvedRef, Error> {
    let checksum = attr(source, "git.checksum").map(str::to_string);
    let key = (url.clone(), reference.clone());
    let resolved = blocking(move || {
        let resolved =
            git::resolve_commit(&url, reference.as_deref()).map_err(hoist_source::Error::from)?;
        if let Some(sum) = checksum {
            git::verify_checksum(&url, &resolved.commit, &sum)
                .map_err(hoist_source::Error::from)?;
        }
        Ok(resolved)
    })
    .await?;
    resolved_refs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, resolved.clone());
    Ok(resolved)
}

/// The content part of a git source's cache key: the commit.
pub(crate) async fn git_key(
    source: &SourceOp,
    remote: &str,
    reference: Option<&str>,
) -> Result<String, Error> {
    let url = git_url(source, remote);
    let resolved = resolve_git(source, url, reference.map(str::to_string)).await?;
    Ok(format!("git {}", resolved.commit))
}

/// Materialises a git source: a layer holding the checkout.
pub(crate) async fn git_chain(
    shared: &Arc<Shared>,
    source: &SourceOp,
    remote: &str,
    reference: Option<&str>,
) -> Result<Chain, Error> {
    let url = git_url(source, remote);
    let key = (url.clone(), reference.map(str::to_string));
    let known = resolved_refs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    let resolved = match known {
        Some(r) => r,
        None => resolve_git(source, url.clone(), key.1.clone()).await?,
    };
    let keep = attr(source, "git.keepgitdir").is_some_and(|v| v == "true");
    let shared = shared.clone();
    blocking(move || {
        let layer = shared.snapshots.prepare(&[])?;
        git::checkout(&url, &resolved, layer.mountpoint(), keep)
            .map_err(hoist_source::Error::from)?;
        Ok(Chain::scratch().with_layer(layer.commit()?))
    })
    .await
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}
