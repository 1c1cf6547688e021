//! The persistent cache index: cache key → the results an execution produced.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{CacheKey, Error, ResultId};

/// Name of the sled tree holding the index; the version changes when the record format does.
pub(crate) const TREE: &str = "hoist-solver/cache-index/v1";

#[derive(Serialize, Deserialize)]
struct Record {
    /// One result per output index of the op.
    results: Vec<ResultId>,
    /// When the record was written (seconds since the epoch), for pruning.
    created: u64,
}

/// A sled tree mapping the 32 raw bytes of a cache key to a JSON [`Record`].
#[derive(Clone)]
pub(crate) struct Index {
    tree: sled::Tree,
}

impl Index {
    pub(crate) fn open(db: &sled::Db) -> Result<Index, Error> {
        let tree = db
            .open_tree(TREE)
            .map_err(|e| Error::index("open", None, e))?;
        Ok(Index { tree })
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Result<Option<Arc<[ResultId]>>, Error> {
        let Some(raw) = self
            .tree
            .get(key.0.as_bytes())
            .map_err(|e| Error::index("get", Some(*key), e))?
        else {
            return Ok(None);
        };
        let rec: Record = serde_json::from_slice(&raw).map_err(|e| Error::CorruptRecord {
            key: *key,
            message: e.to_string(),
        })?;
        Ok(Some(rec.results.into()))
    }

    /// Writes the record and waits until it is durable.
    pub(crate) async fn put(&self, key: &CacheKey, results: &[ResultId]) -> Result<(), Error> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let rec = Record {
            results: results.to_vec(),
            created,
        };
        let raw = serde_json::to_vec(&rec).map_err(|e| Error::CorruptRecord {
            key: *key,
            message: e.to_string(),
        })?;
        self.tree
            .insert(key.0.as_bytes(), raw)
            .map_err(|e| Error::index("insert", Some(*key), e))?;
        // Not `flush_async`: in sled 0.34 it blocks sled's own IO pool threads, which the
        // write-out a flush waits for also needs, so concurrent flushes deadlock. A blocking
        // flush on tokio's blocking pool leaves sled's pool free (and concurrent flushes
        // coalesce).
        let tree = self.tree.clone();
        match tokio::task::spawn_blocking(move || tree.flush()).await {
            Ok(r) => r
                .map(|_| ())
                .map_err(|e| Error::index("flush", Some(*key), e)),
            Err(e) => Err(Error::index(
                "flush",
                Some(*key),
                sled::Error::ReportableBug(format!("flush task failed: {e}")),
            )),
        }
    }

    /// Every record: its key, results and creation time (seconds since the epoch).
    pub(crate) fn records(&self) -> Result<Vec<(CacheKey, Vec<ResultId>, u64)>, Error> {
        let mut out = Vec::new();
        for kv in self.tree.iter() {
            let (raw_key, raw) = kv.map_err(|e| Error::index("list", None, e))?;
            let Ok(bytes) = <[u8; 32]>::try_from(raw_key.as_ref()) else {
                continue;
            };
            let key = CacheKey(hoist_llb::Digest::from_bytes(bytes));
            let rec: Record = serde_json::from_slice(&raw).map_err(|e| Error::CorruptRecord {
                key,
                message: e.to_string(),
            })?;
            out.push((key, rec.results, rec.created));
        }
        Ok(out)
    }

    pub(crate) fn remove(&self, key: &CacheKey) -> Result<bool, Error> {
        let old = self
            .tree
            .remove(key.0.as_bytes())
            .map_err(|e| Error::index("remove", Some(*key), e))?;
        Ok(old.is_some())
    }
}
