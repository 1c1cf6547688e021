//! Pushing an image to a registry.

use http::HeaderValue;
use hoist_source::image::parse_reference;

use crate::{write_manifest, ContentStore, Digest, Error, Image, Manifested, RegistryOptions, Result};
use crate::OCI_MANIFEST;

/// Pushes the image to `reference` (a tag or digest): layer and config blobs the registry
/// already has are skipped, then the OCI manifest is put under the tag.
pub async fn push(
    content: &ContentStore,
    img: &Image,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<Manifested> {
    let push_err = |source| Error::Push { reference: reference.to_string(), source };
    let r = parse_reference(reference).map_err(push_err)?;
    let name = r.whole();
    let host = r.resolve_registry().to_string();
    let registry_err = |e| Error::Push {
        reference: reference.to_string(),
        source: hoist_source::Error::from_registry(&name, &host, e),
    };
    let m = write_manifest(content, img)?;
    let (client, auth) = opts.client_for(&r).map_err(push_err)?;
    client.store_auth_if_needed(&host, &auth).await;

    let mut blobs: Vec<Digest> = img.layers.iter().map(|l| l.digest.clone()).collect();
    blobs.push(m.config_digest.clone());
    for (i, d) in blobs.iter().enumerate() {
        if blobs[..i].contains(d) {
            continue;
        }
        if client.blob_exists(&r, d.as_str()).await.map_err(registry_err)? {
            tracing::debug!(blob = %d, "registry already has blob");
            continue;
        }
        let data = content.read(d).map_err(Error::store(d))?;
        client.push_blob(&r, data, d.as_str()).await.map_err(registry_err)?;
    }
    client
        .push_manifest_raw(&r, m.manifest.clone(), HeaderValue::from_static(OCI_MANIFEST))
        .await
        .map_err(registry_err)?;
    Ok(m)
}
