//! The harness checking itself: if these fail, every other end-to-end test is suspect.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::{
    busybox_image, chroot_sh, http_get_status, line_diff, skopeo_inspect, umoci_unpack, unpack_oci_archive,
    write_busybox_layout, Dir, Registry, APP_UID,
};

#[test]
fn registry_starts_answers_and_stops() {
    let reg = Registry::start();
    let host = reg.host().to_string();
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    assert_eq!(http_get_status(&host, "/v2/"), Some(200));
    assert_eq!(http_get_status(&host, "/v2/nothing/manifests/latest"), Some(404));
    drop(reg);
    assert_eq!(http_get_status(&host, "/v2/"), None, "registry still answers after drop");
}

#[test]
fn busybox_pushed_to_registry_keeps_its_digest() {
    let reg = Registry::start();
    let image = busybox_image();
    let reference = image.push(&reg);
    assert_eq!(reference, format!("{}/busybox:latest", reg.host()));
    let info = skopeo_inspect(&format!("docker://{reference}"), &[]);
    assert_eq!(info["Digest"].as_str(), Some(image.manifest_digest.as_str()), "{info:#}");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(1), "{info:#}");
    let config = skopeo_inspect(&format!("docker://{reference}"), &["--config"]);
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
}

#[test]
fn busybox_layout_is_reproducible() {
    let dir = Dir::new("busybox_layout_is_reproducible");
    let a = write_busybox_layout(&dir.join("a"));
    let b = write_busybox_layout(&dir.join("b"));
    assert_eq!(a, b);
    assert_eq!(a, busybox_image().manifest_digest);
    let info = skopeo_inspect(&format!("oci:{}:latest", dir.join("a").display()), &[]);
    assert_eq!(info["Digest"].as_str(), Some(a.as_str()), "{info:#}");
}

#[test]
fn busybox_unpacks_to_a_runnable_rootfs() {
    let dir = Dir::new("busybox_unpacks_to_a_runnable_rootfs");
    let rootfs = umoci_unpack(&busybox_image().dir, "latest", &dir.join("bundle"));
    let mode = fs::metadata(rootfs.join("bin/busybox")).expect("bin/busybox").permissions().mode();
    assert_eq!(mode & 0o7777, 0o755);
    let tmp = fs::metadata(rootfs.join("tmp")).expect("tmp").permissions().mode();
    assert_eq!(tmp & 0o7777, 0o1777);
    let out = chroot_sh(&rootfs, "echo hello; id -u app; id -un; stat -c %a /tmp; ls /home/app && echo ok");
    eqnice!(format!("hello\n{APP_UID}\nroot\n1777\nok\n"), out);
}

#[test]
fn oci_archive_unpacks_with_umoci() {
    let dir = Dir::new("oci_archive_unpacks_with_umoci");
    // An OCI archive is the layout directory as a tarball, as `--output type=oci` writes it.
    let archive = dir.join("busybox.tar");
    let mut builder = tar::Builder::new(fs::File::create(&archive).expect("create tar"));
    builder.append_dir_all(".", &busybox_image().dir).expect("tar layout");
    builder.into_inner().expect("finish tar");
    let info = skopeo_inspect(&format!("oci-archive:{}", archive.display()), &[]);
    assert_eq!(info["Digest"].as_str(), Some(busybox_image().manifest_digest.as_str()));
    let rootfs = unpack_oci_archive(&archive, &dir.join("unpacked"));
    eqnice!("hi\n", chroot_sh(&rootfs, "echo hi"));
}

#[test]
fn dir_helpers_write_what_they_say() {
    let dir = Dir::new("dir_helpers_write_what_they_say");
    dir.write_file("a/b/file.txt", "contents");
    dir.write_file_mode("run.sh", "#!/bin/sh\n", 0o750);
    dir.mkdir("empty/dir");
    dir.symlink("a/b/file.txt", "link");
    assert_eq!(dir.read("link"), "contents");
    assert_eq!(fs::read_link(dir.join("link")).expect("readlink").to_str(), Some("a/b/file.txt"));
    let mode = fs::metadata(dir.join("run.sh")).expect("run.sh").permissions().mode();
    assert_eq!(mode & 0o777, 0o750);
    assert!(dir.join("empty/dir").is_dir());
    assert!(dir.state_dir().is_dir());
    assert_ne!(dir.state_dir(), dir.path());
}

#[test]
fn line_diff_marks_changed_lines() {
    eqnice!("  a\n- b\n+ c\n  d\n", line_diff("a\nb\nd\n", "a\nc\nd\n"));
}

#[test]
#[should_panic(expected = "texts differ")]
fn eqnice_panics_on_difference() {
    eqnice!("a\n", "b\n");
}
