//! Export, push and pull against real tools: Debian's `docker-registry`, skopeo and umoci.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hoist_exporter::{
    push, write_docker_archive, write_manifest, write_oci_archive, write_oci_dir, Image, LayerBlob,
};
use hoist_source::image::{ImageSource, RegistryOptions};
use hoist_source::{resolve_layout, Platform};
use hoist_store::{ContentStore, Digest};

/// bcrypt of "s3cret" (cost 4) for the htpasswd-protected registry.
const HTPASSWD: &str = "hoist:$2b$04$bNkyWupczY1cWtSRw2/jVOBxQsMBLe9jMZrn5XJXVvg5dOFEAXfYy\n";

/// A `docker-registry` on 127.0.0.1 with its own config and storage; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start(htpasswd: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if htpasswd {
            let pw = dir.path().join("htpasswd");
            std::fs::write(&pw, HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                pw.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, port, dir }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry serves blob `d` from.
    fn blob_file(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tar with `bin/busybox` (from busybox-static) and `bin/sh -> busybox`, plus a marker
/// file, gzipped into `content`.
fn busybox_layer(content: &ContentStore, marker: &str) -> LayerBlob {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static installed");
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    tar.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_mode(0o777);
    link.set_size(0);
    tar.append_link(&mut link, "bin/sh", "busybox").unwrap();
    let mut m = tar::Header::new_ustar();
    m.set_mode(0o644);
    m.set_size(marker.len() as u64);
    tar.append_data(&mut m, "marker", marker.as_bytes())
        .unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let digest = content.write_blob(&gz).unwrap();
    LayerBlob {
        digest,
        diff_id: Digest::of(&raw),
        size: gz.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    }
}

fn image(content: &ContentStore, arch: &str, marker: &str) -> Image {
    Image {
        layers: vec![busybox_layer(content, marker)],
        config: serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "history": [{"created_by": "hoist test"}],
        }),
    }
}

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let content = ContentStore::open(dir.path()).unwrap();
    (dir, content)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo_inspect(target: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", target]));
    serde_json::from_str(&out).unwrap()
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

#[tokio::test]
async fn push_then_resolve_and_pull() {
    let reg = Registry::start(false);
    let (_d, content) = store();
    let img = image(&content, "amd64", "one");
    let reference = format!("{}/test/busybox:1", reg.host());
    let m = push(&content, &img, &reference, &RegistryOptions::default())
        .await
        .unwrap();
    // Pushing again skips the blobs and gives the same digest.
    let again = push(&content, &img, &reference, &RegistryOptions::default())
        .await
        .unwrap();
    assert_eq!(again.manifest_digest, m.manifest_digest);

    let seen = skopeo_inspect(&format!("docker://{reference}"));
    assert_eq!(seen["Digest"], m.manifest_digest.to_string());
    assert_eq!(seen["Architecture"], "amd64");

    let (_d2, fresh) = store();
    let source = ImageSource::new(fresh.clone(), RegistryOptions::default());
    let resolved = source.resolve(&reference, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest_digest, m.manifest_digest);
    assert_eq!(resolved.config_digest, m.config_digest);
    assert_eq!(resolved.config, m.config);
    assert_eq!(
        resolved.canonical_ref,
        format!("{reference}@{}", m.manifest_digest)
    );
    assert!(fresh.has(&m.config_digest) && fresh.has(&m.manifest_digest));
    assert!(
        !fresh.has(&img.layers[0].digest),
        "resolve must not pull layers"
    );

    let events = Mutex::new(Vec::new());
    source
        .pull_layers(&resolved, &|p| events.lock().unwrap().push(p))
        .await
        .unwrap();
    assert_eq!(
        fresh.read(&img.layers[0].digest).unwrap(),
        content.read(&img.layers[0].digest).unwrap()
    );
    let events = events.into_inner().unwrap();
    assert!(events
        .last()
        .is_some_and(|p| p.done && !p.cached && p.downloaded == p.total));

    // Present layers are skipped.
    let events = Mutex::new(Vec::new());
    source
        .pull_layers(&resolved, &|p| events.lock().unwrap().push(p))
        .await
        .unwrap();
    assert!(events.into_inner().unwrap().iter().all(|p| p.cached));

    // By digest, too.
    let by_digest = format!("{}/test/busybox@{}", reg.host(), m.manifest_digest);
    assert_eq!(
        source
            .resolve(&by_digest, &amd64())
            .await
            .unwrap()
            .manifest_digest,
        m.manifest_digest
    );
}

#[tokio::test]
async fn unknown_tag_repo_and_host_are_typed() {
    let reg = Registry::start(false);
    let (_d, content) = store();
    let img = image(&content, "amd64", "x");
    push(
        &content,
        &img,
        &format!("{}/test/busybox:1", reg.host()),
        &RegistryOptions::default(),
    )
    .await
    .unwrap();
    let source = ImageSource::new(content.clone(), RegistryOptions::default());

    let err = source
        .resolve(&format!("{}/test/busybox:nope", reg.host()), &amd64())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    eprintln!("{err}");
    assert!(err.to_string().contains("test/busybox:nope"), "{err}");
    let err = source
        .resolve(&format!("{}/no/such:1", reg.host()), &amd64())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = source
        .resolve(&format!("127.0.0.1:{closed}/a/b:1"), &amd64())
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    eprintln!("{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );

    // The image is amd64 only.
    let err = source
        .resolve(
            &format!("{}/test/busybox:1", reg.host()),
            &Platform::new("linux", "arm64", None),
        )
        .await;
    // A single manifest is taken as is (like docker pull); only indexes are filtered.
    assert!(err.is_ok());
}

#[tokio::test]
async fn tampered_registry_blob_is_a_digest_mismatch() {
    let reg = Registry::start(false);
    let (_d, content) = store();
    let img = image(&content, "amd64", "tamper");
    let reference = format!("{}/test/busybox:1", reg.host());
    push(&content, &img, &reference, &RegistryOptions::default())
        .await
        .unwrap();

    let layer = &img.layers[0];
    let file = reg.blob_file(&layer.digest);
    let mut data = std::fs::read(&file).unwrap();
    let n = data.len();
    data[n / 2] ^= 0xff;
    std::fs::write(&file, &data).unwrap();

    let (_d2, fresh) = store();
    let source = ImageSource::new(fresh.clone(), RegistryOptions::default());
    let resolved = source.resolve(&reference, &amd64()).await.unwrap();
    let err = source.pull_layers(&resolved, &|_| {}).await.unwrap_err();
    assert!(
        matches!(err, hoist_source::Error::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(!fresh.has(&layer.digest));
}

#[tokio::test]
async fn basic_auth_from_docker_config() {
    let reg = Registry::start(true);
    let (_d, content) = store();
    let img = image(&content, "amd64", "auth");
    let reference = format!("{}/private/busybox:1", reg.host());

    let err = push(&content, &img, &reference, &RegistryOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");

    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"aG9pc3Q6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let mut opts = RegistryOptions::default();
    opts.docker_config = Some(cfg.path().to_path_buf());
    let m = push(&content, &img, &reference, &opts).await.unwrap();
    let (_d2, fresh) = store();
    let source = ImageSource::new(fresh, opts);
    let resolved = source.resolve(&reference, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest_digest, m.manifest_digest);
    source.pull_layers(&resolved, &|_| {}).await.unwrap();
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    tar::Archive::new(std::fs::File::open(archive).unwrap())
        .unpack(into)
        .unwrap();
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() {
    let (_d, content) = store();
    let img = image(&content, "amd64", "oci");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("img.tar");
    let m = write_oci_archive(
        &content,
        &img,
        &["test/busybox:v1".to_string()],
        std::fs::File::create(&file).unwrap(),
    )
    .unwrap();
    let seen = skopeo_inspect(&format!("oci-archive:{}", file.display()));
    assert_eq!(seen["Digest"], m.manifest_digest.to_string());

    let layout = work.path().join("layout");
    untar(&file, &layout);
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle));
    let busybox = bundle.join("rootfs/bin/busybox");
    assert_eq!(
        std::fs::read(busybox).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/marker")).unwrap(),
        "oci"
    );

    // The layout resolves back to the same image, by tag, by digest and as the only image.
    let (_d2, fresh) = store();
    let host = Platform::new("linux", "amd64", None);
    for r in [
        Some("v1".to_string()),
        Some(m.manifest_digest.to_string()),
        None,
    ] {
        let got = resolve_layout(&layout, r.as_deref(), &host, &fresh).unwrap();
        assert_eq!(got.manifest_digest, m.manifest_digest);
        assert_eq!(got.config, m.config);
    }
    assert!(fresh.has(&img.layers[0].digest));
    let err = resolve_layout(&layout, Some("nope"), &host, &fresh).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[test]
fn tampered_layout_blob_is_a_digest_mismatch() {
    let (_d, content) = store();
    let img = image(&content, "amd64", "layout-tamper");
    let dir = tempfile::tempdir().unwrap();
    write_oci_dir(&content, &img, &["t:1".to_string()], dir.path()).unwrap();
    let blob = dir
        .path()
        .join("blobs/sha256")
        .join(img.layers[0].digest.hex());
    let mut data = std::fs::read(&blob).unwrap();
    data[10] ^= 1;
    std::fs::write(&blob, &data).unwrap();
    let (_d2, fresh) = store();
    let err = resolve_layout(dir.path(), Some("1"), &amd64(), &fresh).unwrap_err();
    assert!(err.is_digest_mismatch(), "{err:?}");
    assert!(!fresh.has(&img.layers[0].digest));
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let (_d, content) = store();
    let img = image(&content, "amd64", "docker");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("img.tar");
    write_docker_archive(
        &content,
        &img,
        &["test/busybox:v1".to_string()],
        std::fs::File::create(&file).unwrap(),
    )
    .unwrap();
    let seen = skopeo_inspect(&format!("docker-archive:{}", file.display()));
    assert_eq!(seen["Architecture"], "amd64");
    assert_eq!(seen["Layers"].as_array().map(Vec::len), Some(1));
    // skopeo copies it into an OCI layout, proving layers and diff_ids line up.
    let out = work.path().join("copied");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}", file.display()))
        .arg(format!("oci:{}:x", out.display())));
    let unpacked = work.path().join("unpacked");
    untar(&file, &unpacked);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["test/busybox:v1"])
    );
}

/// Two single-platform images and an OCI index over them, all in `content`.
fn two_platform_index(
    content: &ContentStore,
) -> (
    Vec<u8>,
    hoist_exporter::Manifested,
    hoist_exporter::Manifested,
) {
    let a = write_manifest(content, &image(content, "amd64", "amd64")).unwrap();
    let b = write_manifest(content, &image(content, "arm64", "arm64")).unwrap();
    let entry = |m: &hoist_exporter::Manifested, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.manifest_digest.to_string(),
            "size": m.manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&a, "amd64"), entry(&b, "arm64")],
    });
    (serde_json::to_vec(&index).unwrap(), a, b)
}

#[test]
fn layout_index_picks_the_platform() {
    let (_d, content) = store();
    let (index, a, b) = two_platform_index(&content);
    let dir = tempfile::tempdir().unwrap();
    // Write both images' blobs via the exporter, then point index.json at a nested index.
    let img_a = image(&content, "amd64", "amd64");
    let img_b = image(&content, "arm64", "arm64");
    write_oci_dir(&content, &img_a, &[], dir.path()).unwrap();
    write_oci_dir(&content, &img_b, &[], dir.path()).unwrap();
    let index_digest = Digest::of(&index);
    std::fs::write(
        dir.path().join("blobs/sha256").join(index_digest.hex()),
        &index,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest.to_string(),
                "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    let (_d2, fresh) = store();
    let got = resolve_layout(
        dir.path(),
        Some("multi"),
        &Platform::new("linux", "arm64", None),
        &fresh,
    )
    .unwrap();
    assert_eq!(got.manifest_digest, b.manifest_digest);
    let got = resolve_layout(dir.path(), Some("multi"), &amd64(), &fresh).unwrap();
    assert_eq!(got.manifest_digest, a.manifest_digest);
    let err = resolve_layout(
        dir.path(),
        Some("multi"),
        &Platform::new("linux", "s390x", None),
        &fresh,
    )
    .unwrap_err();
    assert!(
        matches!(err, hoist_source::Error::NoMatchingPlatform { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn registry_index_picks_the_platform() {
    let reg = Registry::start(false);
    let (_d, content) = store();
    let img_a = image(&content, "amd64", "amd64");
    let img_b = image(&content, "arm64", "arm64");
    let opts = RegistryOptions::default();
    let a = push(
        &content,
        &img_a,
        &format!("{}/test/multi:amd64", reg.host()),
        &opts,
    )
    .await
    .unwrap();
    let b = push(
        &content,
        &img_b,
        &format!("{}/test/multi:arm64", reg.host()),
        &opts,
    )
    .await
    .unwrap();
    let (index, a2, b2) = two_platform_index(&content);
    assert_eq!(
        (a2.manifest_digest.clone(), b2.manifest_digest.clone()),
        (a.manifest_digest.clone(), b.manifest_digest.clone())
    );

    let reference: oci_client::Reference =
        format!("{}/test/multi:latest", reg.host()).parse().unwrap();
    let (client, _) = opts.client_for(&reference).unwrap();
    client
        .push_manifest_raw(
            &reference,
            index,
            http::HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        )
        .await
        .unwrap();

    let (_d2, fresh) = store();
    let source = ImageSource::new(fresh, opts);
    let got = source
        .resolve(
            &reference.whole(),
            &Platform::new("linux", "arm64", Some("v8")),
        )
        .await
        .unwrap();
    assert_eq!(got.manifest_digest, b.manifest_digest);
    let got = source.resolve(&reference.whole(), &amd64()).await.unwrap();
    assert_eq!(got.manifest_digest, a.manifest_digest);
    let err = source
        .resolve(&reference.whole(), &Platform::new("windows", "amd64", None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[tokio::test]
async fn large_layers_stream_both_ways() {
    let reg = Registry::start(false);
    let (_d, content) = store();
    // 9 MiB of incompressible bytes: more than two upload chunks.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..9 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(noise.len() as u64);
    tar.append_data(&mut h, "noise", noise.as_slice()).unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let layer = LayerBlob {
        digest: content.write_blob(&gz).unwrap(),
        diff_id: Digest::of(&raw),
        size: gz.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let img = Image {
        layers: vec![layer.clone()],
        config: serde_json::json!({"architecture": "amd64", "os": "linux"}),
    };
    let reference = format!("{}/test/big:1", reg.host());
    let m = push(&content, &img, &reference, &RegistryOptions::default())
        .await
        .unwrap();
    let seen = skopeo_inspect(&format!("docker://{reference}"));
    assert_eq!(seen["Digest"], m.manifest_digest.to_string());

    let (_d2, fresh) = store();
    let source = ImageSource::new(fresh.clone(), RegistryOptions::default());
    let resolved = source.resolve(&reference, &amd64()).await.unwrap();
    let events = Mutex::new(Vec::new());
    source
        .pull_layers(&resolved, &|p| events.lock().unwrap().push(p))
        .await
        .unwrap();
    assert_eq!(fresh.size(&layer.digest).unwrap(), layer.size);
    assert!(
        events.into_inner().unwrap().len() >= 4,
        "progress is reported while downloading"
    );
}
