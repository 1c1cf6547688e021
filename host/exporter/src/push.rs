//! Pushing an image to a registry.

use hoist_source::image::parse_reference;
use std::io::Read as _;

use futures::Stream;
use http::HeaderValue;
use oci_client::errors::OciDistributionError;

use crate::OCI_MANIFEST;
use crate::{
    write_manifest, ContentStore, Digest, Error, Image, Manifested, RegistryOptions, Result,
};

/// Pushes the image to `reference` (a tag or digest): layer and config blobs the registry
/// already has are skipped, then the OCI manifest is put under the tag.
pub async fn push(
    content: &ContentStore,
    img: &Image,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<Manifested> {
    let push_err = |source: hoist_source::Error| Error::Push {
        reference: reference.to_string(),
        source: Box::new(source),
    };
    let r = parse_reference(reference).map_err(push_err)?;
    let name = r.whole();
    let host = r.resolve_registry().to_string();
    let registry_err = |e| Error::Push {
        reference: reference.to_string(),
        source: Box::new(hoist_source::Error::from_registry(&name, &host, e)),
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
        if client
            .blob_exists(&r, d.as_str())
            .await
            .map_err(registry_err)?
        {
            tracing::debug!(blob = %d, "registry already has blob");
            continue;
        }
        let size = content.size(d).map_err(Error::store(d))?;
        if size <= STREAM_CHUNK as u64 {
            let data = content.read(d).map_err(Error::store(d))?;
            client
                .push_blob(&r, data, d.as_str())
                .await
                .map_err(registry_err)?;
            continue;
        }
        let file = content.open_blob(d).map_err(Error::store(d))?;
        match client
            .push_blob_stream(&r, file_stream(file), d.as_str(), Some(size))
            .await
        {
            Ok(_) => {}
            // Registries that refuse chunked uploads get the blob in one request.
            Err(OciDistributionError::SpecViolationError(why)) => {
                tracing::warn!(blob = %d, %why, "chunked upload refused, retrying monolithically");
                let data = content.read(d).map_err(Error::store(d))?;
                client
                    .push_blob(&r, data, d.as_str())
                    .await
                    .map_err(registry_err)?;
            }
            Err(e) => return Err(registry_err(e)),
        }
    }
    client
        .push_manifest_raw(
            &r,
            m.manifest.clone(),
            HeaderValue::from_static(OCI_MANIFEST),
        )
        .await
        .map_err(registry_err)?;
    Ok(m)
}

/// Bytes per upload chunk; blobs up to this size are sent in one request.
const STREAM_CHUNK: usize = 4 << 20;

/// A blob file as a stream of chunks, read as the upload proceeds.
fn file_stream(
    file: std::fs::File,
) -> impl Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; STREAM_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file
                .read(&mut buf[filled..])
                .map_err(OciDistributionError::IoError)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some((bytes::Bytes::from(buf), file)))
    })
}
