//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/*`) as image sources.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::image::{manifest_kind, parse_digest, parse_json, select_platform, Kind};
use crate::{ContentStore, Digest, Error, Platform, ResolvedImage, Result};

/// The annotation holding a manifest's tag (or full name) in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation holding the full image name in `index.json`.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Splits `oci-layout://PATH@sha256:...`, `oci-layout://PATH:TAG` or a bare `PATH[:TAG]` into
/// the directory and the optional tag or digest (a `:` inside the last path component
/// separates the tag).
pub fn parse_layout_ref(s: &str) -> (PathBuf, Option<String>) {
    let s = s.strip_prefix("oci-layout://").unwrap_or(s);
    if let Some(at) = s.rfind("@sha256:") {
        return (PathBuf::from(&s[..at]), Some(s[at + 1..].to_string()));
    }
    let last = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[last..].rfind(':') {
        Some(colon) if last + colon + 1 < s.len() => (
            PathBuf::from(&s[..last + colon]),
            Some(s[last + colon + 1..].to_string()),
        ),
        _ => (PathBuf::from(s), None),
    }
}

/// Resolves `reference` (a tag matched against `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name`, a `sha256:` digest, or `None` for the layout's only image) in
/// the layout at `path` to `platform`'s image, copying its manifest, config and layers into
/// `content`, each verified against its digest and size.
pub fn resolve_layout(
    path: &Path,
    reference: Option<&str>,
    platform: &Platform,
    content: &ContentStore,
) -> Result<ResolvedImage> {
    let layout_err = |reason: String| Error::Layout {
        path: path.to_path_buf(),
        reason,
    };
    let name = match reference {
        Some(r) if r.starts_with("sha256:") => format!("oci-layout://{}@{r}", path.display()),
        Some(r) => format!("oci-layout://{}:{r}", path.display()),
        None => format!("oci-layout://{}", path.display()),
    };
    let marker = path.join("oci-layout");
    let marker_json = std::fs::read(&marker)
        .map_err(|e| layout_err(format!("not an OCI image layout (oci-layout: {e})")))?;
    let marker_json: serde_json::Value = parse_json(&name, &marker_json)?;
    if marker_json
        .get("imageLayoutVersion")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(layout_err("oci-layout has no imageLayoutVersion".into()));
    }
    let index_path = path.join("index.json");
    let index_json = std::fs::read(&index_path).map_err(|source| Error::Io {
        path: index_path,
        source,
    })?;
    let index: ImageIndex = parse_json(&name, &index_json)?;

    let mut next: Next = match reference {
        None => match index.manifests().as_slice() {
            [only] => Next::Descriptor(Box::new(only.clone())),
            [] => return Err(layout_err("index.json lists no images".into())),
            many => {
                let names: Vec<String> = many.iter().filter_map(ref_name).collect();
                return Err(layout_err(format!(
                    "holds {} images, name one (tags: {})",
                    many.len(),
                    names.join(", ")
                )));
            }
        },
        Some(r) if r.starts_with("sha256:") => {
            let digest = parse_digest(&name, r)?;
            match index.manifests().iter().find(|d| d.digest().as_ref() == r) {
                Some(d) => Next::Descriptor(Box::new(d.clone())),
                None => Next::Blob(digest),
            }
        }
        Some(tag) => {
            let tagged: Vec<Descriptor> = index
                .manifests()
                .iter()
                .filter(|d| {
                    let ann = d.annotations().as_ref();
                    ann.and_then(|a| a.get(REF_NAME)).is_some_and(|n| n == tag)
                        || ann
                            .and_then(|a| a.get(CONTAINERD_NAME))
                            .is_some_and(|n| n == tag)
                })
                .cloned()
                .collect();
            match tagged.len() {
                0 => {
                    return Err(Error::NotFound {
                        reference: name,
                        detail: String::new(),
                    })
                }
                1 => Next::Descriptor(Box::new(tagged[0].clone())),
                // One tag on several platform manifests: choose among them like an index.
                _ => {
                    let sub = oci_spec::image::ImageIndexBuilder::default()
                        .schema_version(2u32)
                        .manifests(tagged)
                        .build()
                        .map_err(|e| layout_err(e.to_string()))?;
                    Next::Descriptor(Box::new(select_platform(&name, &sub, platform)?))
                }
            }
        }
    };

    for _ in 0..4 {
        let (digest, size) = match &next {
            Next::Descriptor(d) => (parse_digest(&name, d.digest().as_ref())?, Some(d.size())),
            Next::Blob(d) => (d.clone(), None),
        };
        copy_blob(path, &name, &digest, size, content)?;
        let body = content.read(&digest).map_err(|e| Error::store(&name, e))?;
        match manifest_kind(&name, &body)? {
            Kind::Index => {
                let sub: ImageIndex = parse_json(&name, &body)?;
                next = Next::Descriptor(Box::new(select_platform(&name, &sub, platform)?));
            }
            Kind::Manifest => {
                let manifest: ImageManifest = parse_json(&name, &body)?;
                let config_digest = parse_digest(&name, manifest.config().digest().as_ref())?;
                copy_blob(
                    path,
                    &name,
                    &config_digest,
                    Some(manifest.config().size()),
                    content,
                )?;
                for layer in manifest.layers() {
                    let d = parse_digest(&name, layer.digest().as_ref())?;
                    copy_blob(path, &name, &d, Some(layer.size()), content)?;
                }
                let config = content
                    .read(&config_digest)
                    .map_err(|e| Error::store(&name, e))?;
                let canonical = match std::fs::canonicalize(path) {
                    Ok(p) => p,
                    Err(_) => path.to_path_buf(),
                };
                return Ok(ResolvedImage {
                    canonical_ref: format!("oci-layout://{}@{digest}", canonical.display()),
                    manifest_digest: digest,
                    layers: manifest.layers().clone(),
                    manifest,
                    config_digest,
                    config,
                });
            }
        }
    }
    Err(Error::InvalidManifest {
        reference: name,
        reason: "indexes nested too deeply".into(),
    })
}

/// What to read next while descending from `index.json` to an image manifest.
enum Next {
    /// A descriptor (digest and size known).
    Descriptor(Box<Descriptor>),
    /// A bare digest given by the user (size unknown).
    Blob(Digest),
}

/// The tag a descriptor in `index.json` carries, if any.
fn ref_name(d: &Descriptor) -> Option<String> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .cloned()
}

/// Copies blob `digest` from the layout into `content` unless present, verifying it.
fn copy_blob(
    layout: &Path,
    name: &str,
    digest: &Digest,
    size: Option<u64>,
    content: &ContentStore,
) -> Result<()> {
    if content.has(digest) {
        return Ok(());
    }
    let src = layout
        .join("blobs")
        .join(digest.algorithm())
        .join(digest.hex());
    let file = std::fs::File::open(&src).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                reference: format!("{name} (blob {digest})"),
                detail: String::new(),
            }
        } else {
            Error::Io {
                path: src.clone(),
                source,
            }
        }
    })?;
    let mut writer = content.writer().map_err(|e| Error::store(name, e))?;
    let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
    let copied = std::io::copy(&mut file.take(limit), &mut writer).map_err(|source| Error::Io {
        path: src.clone(),
        source,
    })?;
    if let Some(expected) = size {
        if copied != expected {
            return Err(Error::SizeMismatch {
                reference: name.to_string(),
                digest: digest.clone(),
                expected,
                actual: copied,
            });
        }
    }
    writer
        .commit(Some(digest))
        .map_err(|e| Error::store(name, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_refs() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_layout_ref(&format!("oci-layout:///x/y@{d}")),
            (PathBuf::from("/x/y"), Some(d.clone()))
        );
        assert_eq!(
            parse_layout_ref("/x/y:v1"),
            (PathBuf::from("/x/y"), Some("v1".into()))
        );
        assert_eq!(parse_layout_ref("/x:1/y"), (PathBuf::from("/x:1/y"), None));
        assert_eq!(
            parse_layout_ref("oci-layout://rel"),
            (PathBuf::from("rel"), None)
        );
    }
}
