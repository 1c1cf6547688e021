//! Exports: turns a solved chain plus the frontend's image config into an OCI or docker archive,
//! a registry push, an image in the content store, a directory or a rootfs tar.
//!
//! Layer tarballs are made once per layer and remembered in sled (`layer-blobs` tree), so a
//! rebuild that reuses layers exports without re-reading them. Every filesystem step keeps its
//! layer, even one that changed nothing, so the frontend's history lines up with the layers one
//! to one; the history is only repaired when a base image came without one.

use std::path::{Path, PathBuf};

use hoist_exporter::{Image, LayerBlob, Manifested};
use hoist_store::layer::Compression;
use hoist_store::snapshot::LayerId;
use serde_json::{json, Value};

use crate::chain::Chain;
use crate::state::Shared;
use crate::Error;

/// The kinds of export `--output type=...` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// OCI image layout as a tar (`type=oci`).
    Oci,
    /// `docker load` archive (`type=docker`).
    Docker,
    /// An image kept in hoist's content store, optionally pushed (`type=image`).
    Image,
    /// Push to a registry (`type=registry`, or `type=image,push=true`).
    Registry,
    /// The root filesystem as a directory (`type=local`).
    Local,
    /// The root filesystem as a tar (`type=tar`).
    Tar,
}

/// One `--output`.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    /// What to write.
    pub kind: ExportKind,
    /// File or directory to write to (`dest=`); `-` is not supported here (the CLI handles it).
    pub dest: Option<PathBuf>,
    /// Image names (`name=`, `-t`).
    pub names: Vec<String>,
    /// Push after writing (`push=true`).
    pub push: bool,
}

/// What an export produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    /// Digest of the image manifest, for image exports.
    pub manifest_digest: Option<String>,
    /// Digest of the image config, for image exports.
    pub config_digest: Option<String>,
    /// Where it went.
    pub description: String,
}

/// Runs one export of `chain` with `config` (the frontend's OCI image config JSON).
pub(crate) async fn export(shared: &Shared, chain: &Chain, config: Option<&str>, spec: &ExportSpec) -> Result<Exported, Error> {
    match spec.kind {
        ExportKind::Local => {
            let dest = dest_of(spec)?;
            let view = shared.snapshots.view(chain.layers())?;
            copy_tree(view.path(), dest)?;
            Ok(Exported { manifest_digest: None, config_digest: None, description: format!("directory {}", dest.display()) })
        }
        ExportKind::Tar => {
            let dest = dest_of(spec)?;
            let view = shared.snapshots.view(chain.layers())?;
            write_rootfs_tar(view.path(), dest)?;
            Ok(Exported { manifest_digest: None, config_digest: None, description: format!("rootfs tar {}", dest.display()) })
        }
        kind => {
            // An image that only stays in hoist's store keeps its new layers uncompressed, as
            // buildah's and Docker's stores do: compressing 1 GiB costs more than the build.
            // Anything that leaves the machine gets gzip, the format every client reads.
            let stays_local = kind == ExportKind::Image && !spec.push;
            let compression = if stays_local { Compression::None } else { Compression::Gzip };
            let image = image_of(shared, chain, config, compression)?;
            let (manifested, description) = match kind {
                ExportKind::Oci | ExportKind::Docker => {
                    let dest = dest_of(spec)?;
                    let file = std::fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
                    let writer = std::io::BufWriter::new(file);
                    let m = if kind == ExportKind::Oci {
                        hoist_exporter::write_oci_archive(&shared.content, &image, &spec.names, writer)?
                    } else {
                        hoist_exporter::write_docker_archive(&shared.content, &image, &spec.names, writer)?
                    };
                    (m, format!("{} archive {}", if kind == ExportKind::Oci { "OCI" } else { "docker" }, dest.display()))
                }
                _ => {
                    let m = hoist_exporter::write_manifest(&shared.content, &image)?;
                    if kind == ExportKind::Registry || spec.push {
                        for name in &spec.names {
                            hoist_exporter::push(&shared.content, &image, name, &shared.registry).await?;
                        }
                    }
                    (m, format!("image {}", spec.names.join(", ")))
                }
            };
            Ok(exported(&manifested, description))
        }
    }
}

/// The summary of an image export.
fn exported(m: &Manifested, description: String) -> Exported {
    Exported {
        manifest_digest: Some(m.manifest_digest.to_string()),
        config_digest: Some(m.config_digest.to_string()),
        description,
    }
}

/// The destination of a file or directory export.
fn dest_of(spec: &ExportSpec) -> Result<&Path, Error> {
    spec.dest
        .as_deref()
        .ok_or_else(|| Error::InvalidRequest(format!("output type {:?} needs dest=PATH", spec.kind)))
}

/// Assembles the image: layer blobs for every non-empty layer and a config whose history agrees.
/// `compression` is what new blobs are made with; see [`layer_blob`].
pub(crate) fn image_of(shared: &Shared, chain: &Chain, config: Option<&str>, compression: Compression) -> Result<Image, Error> {
    let mut layers = Vec::new();
    for id in chain.layers() {
        layers.push(layer_blob(shared, id, compression)?);
    }
    let mut config: Value = match config {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Error::InvalidRequest(format!("frontend returned an invalid image config: {e}")))?,
        None => json!({}),
    };
    normalize_config(&mut config, layers.len());
    Ok(Image { layers, config })
}

/// Fills in what an image config must have and makes `history` agree with the layer count.
fn normalize_config(config: &mut Value, layer_count: usize) {
    let Some(obj) = config.as_object_mut() else {
        *config = json!({});
        return normalize_config(config, layer_count);
    };
    let host = hoist_source::Platform::host();
    obj.entry("architecture").or_insert_with(|| json!(host.architecture));
    obj.entry("os").or_insert_with(|| json!(host.os));
    obj.entry("config").or_insert_with(|| json!({}));
    let history: Vec<Value> = obj.get("history").and_then(|h| h.as_array()).cloned().unwrap_or_default();
    let non_empty = history.iter().filter(|h| !h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false)).count();
    let history = if non_empty == layer_count {
        history
    } else if non_empty < layer_count {
        // Layers the history does not describe (e.g. a base without history) go first.
        let mut fixed: Vec<Value> = (0..layer_count - non_empty).map(|_| json!({"created_by": "hoist: base layer"})).collect();
        fixed.extend(history);
        fixed
    } else {
        // More history than layers: the frontend's bookkeeping is off; mark the newest surplus
        // entries empty so the image stays valid.
        let mut surplus = non_empty - layer_count;
        let mut fixed = history;
        for h in fixed.iter_mut().rev() {
            if surplus == 0 {
                break;
            }
            if !h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false) {
                h["empty_layer"] = json!(true);
                surplus -= 1;
            }
        }
        fixed
    };
    obj.insert("history".into(), Value::Array(history));
}

/// What `layer-blobs` remembers of a layer's exported blob.
#[derive(serde::Serialize, serde::Deserialize)]
struct LayerRecord {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

impl LayerRecord {
    fn of(blob: &LayerBlob) -> LayerRecord {
        LayerRecord {
            digest: blob.digest.to_string(),
            diff_id: blob.diff_id.to_string(),
            size: blob.size,
            media_type: blob.media_type.clone(),
        }
    }

    fn blob(&self) -> Option<LayerBlob> {
        Some(LayerBlob {
            digest: self.digest.parse().ok()?,
            diff_id: self.diff_id.parse().ok()?,
            size: self.size,
            media_type: self.media_type.clone(),
        })
    }
}

/// Where the gzip blob of each layer is remembered (also a pulled layer's original blob).
pub(crate) const LAYER_BLOBS_TREE: &str = "layer-blobs";
/// Where the uncompressed tar blob of each layer is remembered, for images kept locally.
pub(crate) const LAYER_TARS_TREE: &str = "layer-tars";

/// The blob of one layer, made once per format and remembered. Gzip is asked for when the
/// image leaves the machine; `Compression::None` is for an image kept in the store, which
/// takes any blob the layer already has (a pulled base keeps its registry blob) before making
/// a plain tar.
fn layer_blob(shared: &Shared, id: &LayerId, compression: Compression) -> Result<LayerBlob, Error> {
    if let Some(blob) = remembered_blob(shared, LAYER_BLOBS_TREE, id)? {
        return Ok(blob);
    }
    let tree_name = match compression {
        Compression::None => {
            if let Some(blob) = remembered_blob(shared, LAYER_TARS_TREE, id)? {
                return Ok(blob);
            }
            LAYER_TARS_TREE
        }
        _ => LAYER_BLOBS_TREE,
    };
    let dir = shared.snapshots.layer_dir(id);
    let digests = hoist_store::layer::export_layer_to_store(&dir, &shared.content, compression)?;
    let blob = LayerBlob {
        digest: digests.digest,
        diff_id: digests.diff_id,
        size: digests.size,
        media_type: compression.media_type().to_string(),
    };
    let sled_err = |e: sled::Error| Error::Internal(format!("sled {tree_name}: {e}"));
    let raw = serde_json::to_vec(&LayerRecord::of(&blob)).map_err(|e| Error::Internal(format!("{tree_name}: {e}")))?;
    let tree = shared.db.open_tree(tree_name).map_err(sled_err)?;
    tree.insert(id.as_str(), raw).map_err(sled_err)?;
    Ok(blob)
}

/// The blob `tree` remembers for layer `id`, if its bytes are still in the content store.
fn remembered_blob(shared: &Shared, tree_name: &str, id: &LayerId) -> Result<Option<LayerBlob>, Error> {
    let sled_err = |e: sled::Error| Error::Internal(format!("sled {tree_name}: {e}"));
    let tree = shared.db.open_tree(tree_name).map_err(sled_err)?;
    let Some(raw) = tree.get(id.as_str()).map_err(sled_err)? else {
        return Ok(None);
    };
    let blob = serde_json::from_slice::<LayerRecord>(&raw).ok().and_then(|r| r.blob());
    Ok(blob.filter(|b| shared.content.has(&b.digest)))
}

/// Copies a merged root filesystem into `dest`, keeping owners, modes, links and times.
fn copy_tree(src: &Path, dest: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let mut archive = Vec::new();
    write_rootfs_tar_to(src, &mut archive)?;
    let mut unpacker = tar::Archive::new(archive.as_slice());
    unpacker.set_preserve_permissions(true);
    unpacker.set_preserve_ownerships(true);
    unpacker.set_preserve_mtime(true);
    unpacker.set_unpack_xattrs(true);
    unpacker.unpack(dest).map_err(|e| Error::io(dest, e))
}

/// Writes a merged root filesystem as a plain tar file.
fn write_rootfs_tar(src: &Path, dest: &Path) -> Result<(), Error> {
    let file = std::fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
    write_rootfs_tar_to(src, std::io::BufWriter::new(file))
}

/// Writes a merged root filesystem as a tar stream (symlinks kept as links).
fn write_rootfs_tar_to(src: &Path, w: impl std::io::Write) -> Result<(), Error> {
    let mut builder = tar::Builder::new(w);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", src).map_err(|e| Error::io(src, e))?;
    builder.into_inner().map_err(|e| Error::io(src, e))?;
    Ok(())
}
