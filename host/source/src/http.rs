//! Files downloaded over HTTP(S) (`ADD https://…`), into the content store.
//!
//! A download is revalidated the way BuildKit's http source does: the caller passes the
//! validators (`ETag`, `Last-Modified`) of its last download of the URL, the request carries
//! them as `If-None-Match`/`If-Modified-Since`, and a `304 Not Modified` answer means the stored
//! blob is still current. A download with an expected checksum (`ADD --checksum`) is verified
//! before it is committed: a mismatch stores nothing and names both digests.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::{ContentStore, Digest};

/// What can go wrong downloading a URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request failed before an answer (connection refused, TLS, bad URL).
    #[error("download {url}: {message}")]
    Request {
        /// The URL asked for.
        url: String,
        /// What the client reported.
        message: String,
    },
    /// The server answered with an error status.
    #[error("download {url}: the server answered {status}")]
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status, e.g. `404 Not Found`.
        status: String,
    },
    /// The content does not match `ADD --checksum`; nothing was stored.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL downloaded.
        url: String,
        /// The checksum the build asked for.
        expected: String,
        /// The checksum of the bytes received (same algorithm).
        actual: String,
    },
    /// The checksum is not `sha256:`, `sha384:` or `sha512:` and a hex digest.
    #[error("invalid checksum {0:?}: expected sha256:, sha384: or sha512: and a hex digest")]
    BadChecksum(String),
    /// Writing the content store failed.
    #[error("download {url}: {source}")]
    Store {
        /// The URL downloaded.
        url: String,
        /// The store's error.
        #[source]
        source: hoist_store::Error,
    },
}

/// Validators of an earlier download, sent so an unchanged file is not downloaded again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` the server gave.
    pub etag: Option<String>,
    /// The `Last-Modified` header the server gave, verbatim.
    pub last_modified: Option<String>,
}

/// A file downloaded into the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// sha256 of the content (its name in the content store).
    pub digest: Digest,
    /// Bytes downloaded.
    pub size: u64,
    /// The file name: `Content-Disposition`'s, else the URL's last path component, else `index`.
    pub filename: String,
    /// `Last-Modified` as seconds since the epoch, when the server sent a valid one.
    pub modified: Option<i64>,
    /// Validators for the next request.
    pub validators: Validators,
}

/// The answer to a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The server says the file is unchanged since the validators given (`304`).
    NotModified,
    /// The file was downloaded.
    Downloaded(Download),
}

/// The HTTP client every download shares (connection pools, redirects followed).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Downloads `url` into `content`, conditionally on `validators`, verifying `checksum` if given.
pub async fn fetch(
    content: &ContentStore,
    url: &str,
    validators: Option<&Validators>,
    checksum: Option<&str>,
) -> Result<Fetched, HttpError> {
    let mut verifier = checksum.map(Verifier::new).transpose()?;
    let failed = |e: reqwest::Error| HttpError::Request {
        url: url.to_string(),
        message: error_chain(&e),
    };
    let mut request = client().get(url);
    if let Some(v) = validators {
        if let Some(etag) = &v.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &v.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
        }
    }
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && validators.is_some() {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(HttpError::Status {
            url: url.to_string(),
            status: status.to_string(),
        });
    }
    let headers = response.headers();
    let header = |name: reqwest::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
    let disposition = header(reqwest::header::CONTENT_DISPOSITION);
    let filename = file_name(url, disposition.as_deref());
    let modified = validators.last_modified.as_deref().and_then(epoch_seconds);
    let store_err = |source| HttpError::Store {
        url: url.to_string(),
        source,
    };
    let mut writer = content.writer().map_err(store_err)?;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        writer.write_all(&chunk).map_err(|source| {
            store_err(hoist_store::Error::Io {
                op: "write",
                path: content.root().to_path_buf(),
                source,
            })
        })?;
        if let Some(v) = verifier.as_mut() {
            v.update(&chunk);
        }
    }
    if let (Some(v), Some(expected)) = (verifier, checksum) {
        let actual = v.finish();
        if actual != expected {
            return Err(HttpError::ChecksumMismatch {
                url: url.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    let (digest, size) = writer.commit(None).map_err(store_err)?;
    Ok(Fetched::Downloaded(Download {
        digest,
        size,
        filename,
        modified,
        validators,
    }))
}

/// Hashes a download with the algorithm of an expected checksum.
enum Verifier {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Verifier {
    fn new(checksum: &str) -> Result<Verifier, HttpError> {
        let bad = || HttpError::BadChecksum(checksum.to_string());
        let (algorithm, hex) = checksum.split_once(':').ok_or_else(bad)?;
        let (verifier, length) = match algorithm {
            "sha256" => (Verifier::Sha256(Sha256::new()), 64),
            "sha384" => (Verifier::Sha384(Sha384::new()), 96),
            "sha512" => (Verifier::Sha512(Sha512::new()), 128),
            _ => return Err(bad()),
        };
        if hex.len() != length || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(verifier)
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Verifier::Sha256(h) => h.update(data),
            Verifier::Sha384(h) => h.update(data),
            Verifier::Sha512(h) => h.update(data),
        }
    }

    /// `ALGO:HEX` of what was hashed.
    fn finish(self) -> String {
        match self {
            Verifier::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Verifier::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Verifier::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The name a downloaded file gets: `Content-Disposition`'s `filename`, else the URL's last
/// path component (percent-decoded), else `index`. Names that are not one plain path
/// component (`..`, containing `/`) are ignored.
pub fn file_name(url: &str, content_disposition: Option<&str>) -> String {
    let plain = |name: &str| {
        let name = name.trim();
        (!name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']))
            .then(|| name.to_string())
    };
    if let Some(name) = content_disposition
        .and_then(disposition_file_name)
        .and_then(|n| plain(&n))
    {
        return name;
    }
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    let path = path.find('/').map_or("", |i| &path[i..]);
    let last = path.rsplit('/').next().unwrap_or("");
    plain(&percent_decode(last)).unwrap_or_else(|| "index".to_string())
}

/// The `filename*=` (RFC 5987, UTF-8) or `filename=` parameter of a `Content-Disposition`.
fn disposition_file_name(header: &str) -> Option<String> {
    let mut plain = None;
    for param in header.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let encoded = value.splitn(3, '\'').nth(2)?;
                return Some(percent_decode(encoded));
            }
            "filename" => plain = Some(value.trim_matches('"').to_string()),
            _ => {}
        }
    }
    plain
}

/// Decodes `%XX` escapes (invalid ones are kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP date as seconds since the epoch.
fn epoch_seconds(date: &str) -> Option<i64> {
    let time = httpdate::parse_http_date(date).ok()?;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Now, as an HTTP date (for tests and servers that need one).
pub fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_disposition_then_url() {
        assert_eq!(file_name("https://h/a/b/c.tar.gz?x=1", None), "c.tar.gz");
        assert_eq!(file_name("https://h/a/my%20file", None), "my file");
        assert_eq!(file_name("https://h/", None), "index");
        assert_eq!(file_name("https://h", None), "index");
        assert_eq!(
            file_name(
                "https://h/dl?id=3",
                Some("attachment; filename=\"report.pdf\"")
            ),
            "report.pdf"
        );
        assert_eq!(
            file_name(
                "https://h/dl",
                Some("attachment; filename*=UTF-8''na%C3%AFve.txt")
            ),
            "naïve.txt"
        );
        assert_eq!(
            file_name(
                "https://h/dl",
                Some("attachment; filename=\"../../etc/passwd\"")
            ),
            "dl"
        );
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(epoch_seconds("Thu, 01 Jan 1970 00:16:40 GMT"), Some(1000));
        assert_eq!(epoch_seconds("yesterday"), None);
    }

    #[test]
    fn checksums_verify_with_their_algorithm() {
        let mut v = Verifier::new(&format!("sha256:{}", "0".repeat(64))).unwrap();
        v.update(b"abc");
        assert_eq!(
            v.finish(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Verifier::new("md5:abc").is_err());
        assert!(Verifier::new("sha256:abc").is_err());
    }
}
