//! OCI image layouts (as a tar or a directory) and `docker load` tarballs.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType, PlatformBuilder};

use crate::OCI_MANIFEST;
use crate::{descriptor, write_manifest, ContentStore, Digest, Error, Image, Manifested, Result};

/// Annotation holding the tag of a manifest in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation holding the full image name in `index.json`.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Contents of the `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A tag given by the user, normalised: the full name and its tag.
struct Name {
    /// `docker.io/library/app:v1`.
    full: String,
    /// `v1`, or `None` for a digest-only name.
    tag: Option<String>,
    /// `app:v1` as `docker images` shows it, for `RepoTags`.
    familiar: Option<String>,
}

/// Parses and normalises each name.
fn parse_names(names: &[String]) -> Result<Vec<Name>> {
    names
        .iter()
        .map(|n| {
            let r = hoist_source::image::parse_reference(n).map_err(|e| Error::InvalidName {
                name: n.clone(),
                reason: e.to_string(),
            })?;
            let tag = r.tag().map(str::to_string);
            let familiar = tag.as_ref().map(|t| {
                let repo = match r.registry() {
                    "docker.io" => r
                        .repository()
                        .strip_prefix("library/")
                        .unwrap_or(r.repository())
                        .to_string(),
                    reg => format!("{reg}/{}", r.repository()),
                };
                format!("{repo}:{t}")
            });
            Ok(Name {
                full: r.whole(),
                tag,
                familiar,
            })
        })
        .collect()
}

/// The manifest descriptors for `index.json`: one per name (or one bare), with platform.
fn index_entries(m: &Manifested, names: &[Name]) -> Result<Vec<Descriptor>> {
    let config: serde_json::Value =
        serde_json::from_slice(&m.config).map_err(|e| Error::InvalidConfig {
            reason: e.to_string(),
        })?;
    let field = |k: &str| {
        config
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut platform = PlatformBuilder::default()
        .architecture(field("architecture").as_str())
        .os(field("os").as_str());
    if let Some(v) = config.get("variant").and_then(|v| v.as_str()) {
        platform = platform.variant(v.to_string());
    }
    let platform = platform.build().map_err(|e| Error::InvalidConfig {
        reason: e.to_string(),
    })?;
    let mut base = descriptor(OCI_MANIFEST, &m.manifest_digest, m.manifest.len() as u64)?;
    base.set_platform(Some(platform));
    if names.is_empty() {
        return Ok(vec![base]);
    }
    Ok(names
        .iter()
        .map(|n| {
            let mut d = base.clone();
            let mut ann = HashMap::new();
            ann.insert(CONTAINERD_NAME.to_string(), n.full.clone());
            ann.insert(
                REF_NAME.to_string(),
                n.tag.clone().unwrap_or_else(|| n.full.clone()),
            );
            d.set_annotations(Some(ann));
            d
        })
        .collect())
}

/// Serialises an OCI index holding `entries`.
fn index_json(entries: Vec<Descriptor>) -> Result<Vec<u8>> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(|e| Error::InvalidConfig {
            reason: format!("index: {e}"),
        })?;
    serde_json::to_vec(&index).map_err(|e| Error::InvalidConfig {
        reason: format!("index: {e}"),
    })
}

/// Every blob of the image (layers, config, manifest), each once.
fn all_blobs(img: &Image, m: &Manifested) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    let all = img
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .chain([m.config_digest.clone(), m.manifest_digest.clone()]);
    for d in all {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The path of a blob inside a layout: `blobs/sha256/<hex>`.
fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// A tar writer with fixed owner, mode and mtime.
struct Tar<W: Write> {
    inner: tar::Builder<W>,
}

impl<W: Write> Tar<W> {
    fn new(w: W) -> Self {
        let mut inner = tar::Builder::new(w);
        inner.mode(tar::HeaderMode::Deterministic);
        Tar { inner }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    fn io(path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: PathBuf::from(path),
            source,
        }
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.inner
            .append_data(&mut h, path, std::io::empty())
            .map_err(Self::io(path))
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, 0o644);
        self.inner
            .append_data(&mut h, path, data)
            .map_err(Self::io(path))
    }

    fn blob(&mut self, content: &ContentStore, d: &Digest) -> Result<()> {
        let path = blob_path(d);
        let file = content.open_blob(d).map_err(Error::store(d))?;
        let size = content.size(d).map_err(Error::store(d))?;
        let mut h = Self::header(tar::EntryType::Regular, size, 0o644);
        self.inner
            .append_data(&mut h, &path, file)
            .map_err(Self::io(&path))
    }

    fn finish(mut self) -> Result<W> {
        self.inner.finish().map_err(Self::io("archive"))?;
        self.inner.into_inner().map_err(Self::io("archive"))
    }
}

/// Writes the layout entries (`oci-layout`, `index.json`, `blobs/`) into `tar`.
fn write_layout<W: Write>(
    tar: &mut Tar<W>,
    content: &ContentStore,
    img: &Image,
    m: &Manifested,
    names: &[Name],
) -> Result<()> {
    tar.bytes("oci-layout", OCI_LAYOUT)?;
    tar.bytes("index.json", &index_json(index_entries(m, names)?)?)?;
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    for d in all_blobs(img, m) {
        tar.blob(content, &d)?;
    }
    Ok(())
}

/// Writes the image as an OCI image layout in a tar (`oci-layout`, `index.json`,
/// `blobs/sha256/*`); each name becomes an index entry annotated with its tag
/// (`org.opencontainers.image.ref.name`) and full name (`io.containerd.image.name`).
pub fn write_oci_archive(
    content: &ContentStore,
    img: &Image,
    names: &[String],
    w: impl Write,
) -> Result<Manifested> {
    let names = parse_names(names)?;
    let m = write_manifest(content, img)?;
    let mut tar = Tar::new(w);
    write_layout(&mut tar, content, img, &m, &names)?;
    tar.finish()?
        .flush()
        .map_err(Tar::<std::io::Sink>::io("archive"))?;
    Ok(m)
}

/// Writes the image into an OCI image layout directory, creating it or adding to it: blobs
/// already there are kept, and index entries with the same tags are replaced.
pub fn write_oci_dir(
    content: &ContentStore,
    img: &Image,
    names: &[String],
    dir: &Path,
) -> Result<Manifested> {
    let names = parse_names(names)?;
    let m = write_manifest(content, img)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    for d in all_blobs(img, &m) {
        let dest = dir.join(blob_path(&d));
        let size = content.size(&d).map_err(Error::store(&d))?;
        if std::fs::metadata(&dest).is_ok_and(|md| md.len() == size) {
            continue;
        }
        let tmp = blobs.join(format!(".{}.tmp", d.hex()));
        let mut src = content.open_blob(&d).map_err(Error::store(&d))?;
        let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
        out.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    }
    let ours = index_entries(&m, &names)?;
    let index_path = dir.join("index.json");
    let mut entries: Vec<Descriptor> = match std::fs::read(&index_path) {
        Ok(data) => {
            let old: ImageIndex = serde_json::from_slice(&data).map_err(|e| Error::Io {
                path: index_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            let tag_of = |d: &Descriptor| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .cloned()
            };
            let our_tags: Vec<Option<String>> = ours.iter().map(tag_of).collect();
            old.manifests()
                .iter()
                .filter(|d| {
                    let tag = tag_of(d);
                    let replaced = match &tag {
                        Some(_) => our_tags.contains(&tag),
                        None => ours.iter().any(|o| o.digest() == d.digest()),
                    };
                    !replaced
                })
                .cloned()
                .collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Io {
                path: index_path,
                source: e,
            })
        }
    };
    entries.extend(ours);
    let layout_path = dir.join("oci-layout");
    std::fs::write(&layout_path, OCI_LAYOUT).map_err(io(&layout_path))?;
    let tmp = dir.join(".index.json.tmp");
    std::fs::write(&tmp, index_json(entries)?).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &index_path).map_err(io(&index_path))?;
    Ok(m)
}

/// Writes a `docker load` tarball: `manifest.json` (`Config`, `RepoTags`, `Layers`) pointing at
/// the blobs, the layers kept as their compressed blobs (docker load decompresses gzip and
/// zstd), plus `oci-layout` and `index.json` as Docker 25+ does, so the tar is also an OCI
/// layout.
pub fn write_docker_archive(
    content: &ContentStore,
    img: &Image,
    names: &[String],
    w: impl Write,
) -> Result<Manifested> {
    let names = parse_names(names)?;
    let m = write_manifest(content, img)?;
    let repo_tags: Vec<String> = names.iter().filter_map(|n| n.familiar.clone()).collect();
    let manifest_json = serde_json::json!([{
        "Config": blob_path(&m.config_digest),
        "RepoTags": repo_tags,
        "Layers": img.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }]);
    let manifest_json = serde_json::to_vec(&manifest_json).map_err(|e| Error::InvalidConfig {
        reason: e.to_string(),
    })?;
    let mut tar = Tar::new(w);
    write_layout(&mut tar, content, img, &m, &names)?;
    tar.bytes("manifest.json", &manifest_json)?;
    tar.finish()?
        .flush()
        .map_err(Tar::<std::io::Sink>::io("archive"))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        let n = parse_names(&["app:v1".into(), "127.0.0.1:5000/a/b".into()]).unwrap();
        assert_eq!(n[0].full, "docker.io/library/app:v1");
        assert_eq!(n[0].tag.as_deref(), Some("v1"));
        assert_eq!(n[0].familiar.as_deref(), Some("app:v1"));
        assert_eq!(n[1].familiar.as_deref(), Some("127.0.0.1:5000/a/b:latest"));
        assert!(parse_names(&["Bad Name".into()]).is_err());
    }
}
