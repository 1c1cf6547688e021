//! Content-addressed blob store: blobs live at `root/blobs/sha256/<hex>` and are only ever
//! published by an atomic rename of a fully written, fsynced and verified temp file from
//! `root/ingest`, so a reader never sees a partial blob, even after a crash.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(data))
    }

    /// Digest from a finished hasher.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The 64 hex characters after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The algorithm name, always `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let invalid = |reason| Error::InvalidDigest {
            input: s.to_string(),
            reason,
        };
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| invalid("must start with sha256:"))?;
        if hex.len() != 64 {
            return Err(invalid("sha256 hex must be 64 characters"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("hex must be lowercase 0-9a-f"));
        }
        Ok(Digest(s.to_string()))
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;

    fn try_from(s: String) -> Result<Digest> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// A directory of blobs addressed by their sha256 digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store rooted at `root`, removing stale ingest temp files.
    pub fn open(root: &Path) -> Result<Self> {
        let store = ContentStore {
            root: root.to_path_buf(),
        };
        let blobs = store.blobs_dir();
        fs::create_dir_all(&blobs).map_err(Error::io("create", &blobs))?;
        let ingest = store.ingest_dir();
        fs::create_dir_all(&ingest).map_err(Error::io("create", &ingest))?;
        store.clean_ingest()?;
        Ok(store)
    }

    /// True when the blob is present.
    pub fn has(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Where the blob for `d` lives (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// Stores `data` and returns its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(Error::io("write", &w.path))?;
        Ok(w.commit(None)?.0)
    }

    /// Starts a streaming write; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter> {
        let ingest = self.ingest_dir();
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&ingest)
            .map_err(Error::io("create temp file in", &ingest))?;
        let path = file.path().to_path_buf();
        Ok(BlobWriter {
            file,
            path,
            hasher: Sha256::new(),
            size: 0,
            blobs: self.blobs_dir(),
        })
    }

    /// Reads a whole blob, verifying it still hashes to `d`.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        let path = self.blob_path(d);
        self.open_blob(d)?
            .read_to_end(&mut data)
            .map_err(Error::io("read", &path))?;
        let actual = Digest::of(&data);
        if &actual != d {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Opens a blob for streaming reads (not verified; callers hash as they read if needed).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| self.not_found_or(d, "open", &path, e))
    }

    /// Size of a blob in bytes.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let path = self.blob_path(d);
        let meta = fs::metadata(&path).map_err(|e| self.not_found_or(d, "stat", &path, e))?;
        Ok(meta.len())
    }

    /// Removes a blob; removing a missing blob is an [`Error::BlobNotFound`].
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let path = self.blob_path(d);
        fs::remove_file(&path).map_err(|e| self.not_found_or(d, "remove", &path, e))
    }

    /// Every blob digest in the store, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("read dir", &dir))? {
            let entry = entry.map_err(Error::io("read dir", &dir))?;
            let name = entry.file_name();
            if let Some(Ok(d)) = name
                .to_str()
                .map(|hex| format!("sha256:{hex}").parse::<Digest>())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn clean_ingest(&self) -> Result<()> {
        let dir = self.ingest_dir();
        for entry in fs::read_dir(&dir).map_err(Error::io("read dir", &dir))? {
            let path = entry.map_err(Error::io("read dir", &dir))?.path();
            // Another process may be ingesting concurrently; only remove files nobody touched for an hour.
            let stale = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().map(|e| e.as_secs() > 3600).unwrap_or(false))
                .unwrap_or(false);
            if stale {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    fn not_found_or(&self, d: &Digest, op: &'static str, path: &Path, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::NotFound {
            Error::BlobNotFound { digest: d.clone() }
        } else {
            Error::Io {
                op,
                path: path.to_path_buf(),
                source: e,
            }
        }
    }
}

/// A blob being written; hashes as it goes and publishes atomically on [`BlobWriter::commit`].
/// Dropping it without committing removes the temp file.
#[derive(Debug)]
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    blobs: PathBuf,
}

impl BlobWriter {
    /// Verifies the digest (if `expected`), fsyncs and renames into place; returns digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let actual = Digest::from_hasher(self.hasher);
        if let Some(expected) = expected {
            if expected != &actual {
                return Err(Error::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        self.file.flush().map_err(Error::io("flush", &self.path))?;
        self.file
            .as_file()
            .sync_all()
            .map_err(Error::io("fsync", &self.path))?;
        let dest = self.blobs.join(actual.hex());
        self.file.persist(&dest).map_err(|e| Error::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        if let Ok(dir) = File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        Ok((actual, self.size))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parses_and_rejects() {
        let d = Digest::of(b"hello");
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
        assert!(d
            .as_str()
            .to_uppercase()
            .replace("SHA256", "sha256")
            .parse::<Digest>()
            .is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn write_read_list_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let d = store.write_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(store.has(&d));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.size(&d).unwrap(), 5);
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(
            store.blob_path(&d),
            tmp.path().join("blobs/sha256").join(d.hex())
        );
        store.delete(&d).unwrap();
        assert!(!store.has(&d));
        assert!(store.read(&d).unwrap_err().is_not_found());
        assert!(store.delete(&d).unwrap_err().is_not_found());
    }

    #[test]
    fn writer_rejects_wrong_digest_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"actual bytes").unwrap();
        let wrong = Digest::of(b"other bytes");
        let err = w.commit(Some(&wrong)).unwrap_err();
        assert!(err.is_digest_mismatch(), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);

        let mut w = store.writer().unwrap();
        w.write_all(b"actual bytes").unwrap();
        let (d, size) = w.commit(Some(&Digest::of(b"actual bytes"))).unwrap();
        assert_eq!(size, 12);
        assert!(store.has(&d));
    }

    #[test]
    fn read_detects_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let d = store.write_blob(b"good").unwrap();
        fs::write(store.blob_path(&d), b"evil").unwrap();
        assert!(store.read(&d).unwrap_err().is_digest_mismatch());
    }
}
