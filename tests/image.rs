//! What a build puts in an image, checked from the outside: umoci unpacks the exported OCI
//! archive to a rootfs (files, modes, owners, links, whiteouts), skopeo reads its config; the
//! other exporters (docker archive, local dir, tar, registry push) are checked the same way.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::util::{
    build_cmd, build_oci, build_rootfs, busybox_image, lstat, oci_arch, out_path, run_ok,
    skopeo_inspect, umoci_unpack, Dir, Registry,
};

/// File type bits of `st_mode`.
const S_IFMT: u32 = 0o170_000;
/// A directory.
const S_IFDIR: u32 = 0o040_000;
/// A regular file.
const S_IFREG: u32 = 0o100_000;

/// Mode (type and permission bits) of a path, not following a final symlink.
fn mode_of(path: &Path) -> u32 {
    lstat(path).0
}

/// Owner and group of a path, not following a final symlink.
fn owner_of(path: &Path) -> (u32, u32) {
    let (_, uid, gid, _, _) = lstat(path);
    (uid, gid)
}

/// The image config (`skopeo inspect --config`) of an OCI archive.
fn config_of(archive: &Path) -> serde_json::Value {
    skopeo_inspect(
        &format!("oci-archive:{}", archive.display()),
        &["--config", "--raw"],
    )
}

#[test]
fn run_files_and_special_modes_survive_export() {
    let dir = Dir::new("run_files_and_special_modes_survive_export");
    let dockerfile = "FROM busybox\n\
        RUN mkdir -p /data/shared /data/private /data/plain \\\n\
         && chmod 1777 /data/shared && chmod 0700 /data/private \\\n\
         && printf 'hello\\nworld\\n' > /data/hello.txt \\\n\
         && printf '#!/bin/sh\\n' > /data/suid && chmod 4755 /data/suid \\\n\
         && printf x > /data/sgid && chmod 2750 /data/sgid \\\n\
         && : > /data/empty && chmod 0600 /data/empty\n";
    let (rootfs, _) = build_rootfs(&dir, "img", dockerfile, &[]);

    assert_eq!(
        fs::read_to_string(rootfs.join("data/hello.txt")).unwrap(),
        "hello\nworld\n"
    );
    assert_eq!(fs::read(rootfs.join("data/empty")).unwrap(), b"");
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/shared"))),
        format!("{:o}", S_IFDIR | 0o1777)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/private"))),
        format!("{:o}", S_IFDIR | 0o700)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/plain"))),
        format!("{:o}", S_IFDIR | 0o755)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/suid"))),
        format!("{:o}", S_IFREG | 0o4755)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/sgid"))),
        format!("{:o}", S_IFREG | 0o2750)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("data/empty"))),
        format!("{:o}", S_IFREG | 0o600)
    );
    // The base image's own special modes are untouched.
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("tmp"))),
        format!("{:o}", S_IFDIR | 0o1777)
    );
    assert_eq!(
        format!("{:o}", mode_of(&rootfs.join("root"))),
        format!("{:o}", S_IFDIR | 0o700)
    );
}

#[test]
fn owners_from_run_chown_and_copy_chown() {
    let dir = Dir::new("owners_from_run_chown_and_copy_chown");
    dir.write_file("owned.txt", "owned by app\n");
    let plain = dir.write_file("plain.txt", "plain\n");
    // A host owner must not leak into the image: COPY without --chown gives root.
    std::os::unix::fs::chown(&plain, Some(4321), Some(4321)).expect("chown plain.txt");
    dir.write_file("tree/sub/f.txt", "in tree\n");
    let dockerfile = "FROM busybox\n\
        COPY --chown=1000:1000 owned.txt /owned.txt\n\
        COPY --chown=1000:1000 tree /tree\n\
        COPY plain.txt /plain.txt\n\
        RUN touch /run-owned && chown 1000:1000 /run-owned \\\n\
         && mkdir /appdir && chown 1000:1001 /appdir && chown -h 1000:1000 /owned.txt\n";
    let (rootfs, _) = build_rootfs(&dir, "img", dockerfile, &[]);

    assert_eq!(
        fs::read_to_string(rootfs.join("owned.txt")).unwrap(),
        "owned by app\n"
    );
    assert_eq!(owner_of(&rootfs.join("owned.txt")), (1000, 1000));
    assert_eq!(
        owner_of(&rootfs.join("tree")),
        (1000, 1000),
        "COPY --chown of a directory owns its root"
    );
    assert_eq!(owner_of(&rootfs.join("tree/sub")), (1000, 1000));
    assert_eq!(owner_of(&rootfs.join("tree/sub/f.txt")), (1000, 1000));
    assert_eq!(owner_of(&rootfs.join("plain.txt")), (0, 0));
    assert_eq!(owner_of(&rootfs.join("run-owned")), (1000, 1000));
    assert_eq!(owner_of(&rootfs.join("appdir")), (1000, 1001));
    // The fixture's /home/app keeps its owner through the build.
    assert_eq!(owner_of(&rootfs.join("home/app")), (1000, 1000));
}

#[test]
fn copy_chown_by_name_uses_the_image_passwd() {
    let dir = Dir::new("copy_chown_by_name_uses_the_image_passwd");
    dir.write_file("f.txt", "f\n");
    let dockerfile = "FROM busybox\n\
        COPY --chown=app:app f.txt /by-name.txt\n\
        COPY --chown=nobody f.txt /nobody.txt\n";
    let (rootfs, _) = build_rootfs(&dir, "img", dockerfile, &[]);
    assert_eq!(owner_of(&rootfs.join("by-name.txt")), (1000, 1000));
    // A user alone takes that user's primary group from the image's /etc/passwd (65534).
    assert_eq!(owner_of(&rootfs.join("nobody.txt")), (65534, 65534));
}

#[test]
fn symlinks_and_hardlinks_are_kept() {
    let dir = Dir::new("symlinks_and_hardlinks_are_kept");
    dir.write_file("ctx/target.txt", "context target\n");
    dir.symlink("target.txt", "ctx/rel-link");
    dir.symlink("/etc/group", "ctx/abs-link");
    fs::hard_link(dir.join("ctx/target.txt"), dir.join("ctx/hard.txt"))
        .expect("hard link in context");
    let dockerfile = "FROM busybox\n\
        RUN mkdir /links && echo data > /links/target \\\n\
         && ln -s target /links/rel && ln -s /links/target /links/abs \\\n\
         && ln -s /nonexistent /links/dangling && ln /links/target /links/hard\n\
        COPY ctx/ /copied/\n";
    let (rootfs, _) = build_rootfs(&dir, "img", dockerfile, &[]);

    let links = rootfs.join("links");
    assert_eq!(
        fs::read_link(links.join("rel"))
            .expect("rel is a symlink")
            .to_str(),
        Some("target")
    );
    assert_eq!(
        fs::read_link(links.join("abs"))
            .expect("abs is a symlink")
            .to_str(),
        Some("/links/target")
    );
    assert_eq!(
        fs::read_link(links.join("dangling"))
            .expect("dangling is a symlink")
            .to_str(),
        Some("/nonexistent")
    );
    let (_, _, _, ino_target, nlink) = lstat(&links.join("target"));
    let (_, _, _, ino_hard, _) = lstat(&links.join("hard"));
    assert_eq!(
        ino_target, ino_hard,
        "/links/hard is not a hardlink of /links/target after unpack"
    );
    assert_eq!(nlink, 2);
    assert_eq!(fs::read_to_string(links.join("hard")).unwrap(), "data\n");

    // COPY keeps symlinks from the context as symlinks, targets verbatim.
    let copied = rootfs.join("copied");
    assert_eq!(
        fs::read_link(copied.join("rel-link"))
            .expect("rel-link is a symlink")
            .to_str(),
        Some("target.txt")
    );
    assert_eq!(
        fs::read_link(copied.join("abs-link"))
            .expect("abs-link is a symlink")
            .to_str(),
        Some("/etc/group")
    );
    assert_eq!(
        fs::read_to_string(copied.join("hard.txt")).unwrap(),
        "context target\n"
    );
}

#[test]
fn hardlinks_from_the_context_stay_hardlinks() {
    let dir = Dir::new("hardlinks_from_the_context_stay_hardlinks");
    dir.write_file("ctx/a.txt", "shared bytes\n");
    fs::hard_link(dir.join("ctx/a.txt"), dir.join("ctx/b.txt")).expect("hard link in context");
    let (rootfs, _) = build_rootfs(&dir, "img", "FROM busybox\nCOPY ctx/ /c/\n", &[]);
    let (_, _, _, ino_a, _) = lstat(&rootfs.join("c/a.txt"));
    let (_, _, _, ino_b, _) = lstat(&rootfs.join("c/b.txt"));
    assert_eq!(
        ino_a, ino_b,
        "hardlinked context files were copied as two files"
    );
}

#[test]
fn deletions_become_whiteouts() {
    let dir = Dir::new("deletions_become_whiteouts");
    let dockerfile = "FROM busybox\n\
        RUN mkdir /made && echo x > /made/f && echo y > /made-file && echo f > /was-file\n\
        RUN rm /etc/group && rm /made-file && rm -r /made\n\
        RUN rm -r /home/app && echo 'now a file' > /home/app\n\
        RUN rm /was-file && mkdir /was-file && echo inner > /was-file/inner\n\
        RUN rm -rf /var && mkdir /var && echo new > /var/new\n";
    let (rootfs, archive) = build_rootfs(&dir, "img", dockerfile, &[]);

    assert!(
        fs::symlink_metadata(rootfs.join("etc/group")).is_err(),
        "/etc/group from the base is still there"
    );
    assert!(
        fs::symlink_metadata(rootfs.join("made")).is_err(),
        "/made removed in a later RUN is still there"
    );
    assert!(fs::symlink_metadata(rootfs.join("made-file")).is_err());
    // Directory replaced by a file.
    assert_eq!(mode_of(&rootfs.join("home/app")) & S_IFMT, S_IFREG);
    assert_eq!(
        fs::read_to_string(rootfs.join("home/app")).unwrap(),
        "now a file\n"
    );
    // File replaced by a directory.
    assert_eq!(mode_of(&rootfs.join("was-file")) & S_IFMT, S_IFDIR);
    assert_eq!(
        fs::read_to_string(rootfs.join("was-file/inner")).unwrap(),
        "inner\n"
    );
    // Directory removed and remade: nothing of the old one shows through (opaque).
    let mut entries: Vec<String> = fs::read_dir(rootfs.join("var"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        vec!["new".to_string()],
        "/var shows entries of the base image"
    );

    // One layer per RUN on top of the base layer.
    let info = skopeo_inspect(&format!("oci-archive:{}", archive.display()), &[]);
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(6), "{info:#}");
}

#[test]
#[ignore = "runc itself reads /etc/passwd to set up the process user and refuses a directory there; hoist no longer reads it for root, runc still does"]
fn run_as_root_needs_no_readable_passwd() {
    // BuildKit resolves the default user (root) without reading /etc/passwd, so an image whose
    // /etc/passwd is not a file still builds.
    let dir = Dir::new("run_as_root_needs_no_readable_passwd");
    let dockerfile = "FROM busybox\n\
        RUN rm /etc/passwd && mkdir /etc/passwd\n\
        RUN echo still-runs > /ok\n";
    let (rootfs, _) = build_rootfs(&dir, "img", dockerfile, &[]);
    assert_eq!(
        fs::read_to_string(rootfs.join("ok")).unwrap(),
        "still-runs\n"
    );
    assert_eq!(mode_of(&rootfs.join("etc/passwd")) & S_IFMT, S_IFDIR);
}

#[test]
fn config_fields_are_set() {
    let dir = Dir::new("config_fields_are_set");
    let dockerfile = r#"FROM busybox
ENV A=1 B="two words"
ENV PATH=/opt/bin:$PATH
WORKDIR /srv
WORKDIR app
USER 1000:1000
LABEL org.example.a=x "org.example.b"="y z"
EXPOSE 8080 53/udp
VOLUME /data /cache
VOLUME ["/json form"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=2 CMD wget -q localhost || exit 1
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
RUN pwd > /tmp/pwd && id -u > /tmp/uid
"#;
    let (archive, _) = build_oci(&dir, "img", dockerfile, &[]);
    let config = config_of(&archive);
    let c = &config["config"];
    assert_eq!(config["os"], "linux", "{config:#}");
    assert_eq!(config["architecture"], oci_arch(), "{config:#}");
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words"
        ]),
        "{config:#}"
    );
    assert_eq!(c["WorkingDir"], "/srv/app", "{config:#}");
    assert_eq!(c["User"], "1000:1000", "{config:#}");
    assert_eq!(
        c["Labels"],
        json!({"org.example.a": "x", "org.example.b": "y z"}),
        "{config:#}"
    );
    assert_eq!(
        c["ExposedPorts"],
        json!({"8080/tcp": {}, "53/udp": {}}),
        "{config:#}"
    );
    assert_eq!(
        c["Volumes"],
        json!({"/data": {}, "/cache": {}, "/json form": {}}),
        "{config:#}"
    );
    assert_eq!(c["StopSignal"], "SIGTERM", "{config:#}");
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
            "Interval": 5_000_000_000u64,
            "Timeout": 3_000_000_000u64,
            "StartPeriod": 1_000_000_000u64,
            "Retries": 2
        }),
        "{config:#}"
    );
    assert_eq!(c["OnBuild"], json!(["RUN echo child"]), "{config:#}");
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]), "{config:#}");
    assert_eq!(c["Cmd"], json!(["echo hi"]), "{config:#}");

    // History: one non-empty entry per layer, the base image's entry first.
    let history = config["history"].as_array().expect("history");
    let layers = config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .len();
    let non_empty = history
        .iter()
        .filter(|h| h["empty_layer"] != json!(true))
        .count();
    assert_eq!(non_empty, layers, "{config:#}");
    assert_eq!(
        history[0]["created_by"], "hoist-tests fixture",
        "{config:#}"
    );
    assert!(
        history.len() > layers,
        "metadata-only instructions have empty_layer history: {config:#}"
    );

    // RUN ran as the USER in the WORKDIR.
    let rootfs = crate::util::unpack_oci_archive(&archive, &out_path(&dir, "unpacked"));
    assert_eq!(
        fs::read_to_string(rootfs.join("tmp/pwd")).unwrap(),
        "/srv/app\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("tmp/uid")).unwrap(),
        "1000\n"
    );
    assert!(
        rootfs.join("srv/app").is_dir(),
        "WORKDIR did not create its directory"
    );
}

#[test]
fn cmd_shell_form_and_base_config_inherited() {
    let dir = Dir::new("cmd_shell_form_and_base_config_inherited");
    let (archive, _) = build_oci(&dir, "a", "FROM busybox\nRUN true\n", &[]);
    // The base image's Cmd and Env are inherited.
    let c = config_of(&archive)["config"].clone();
    assert_eq!(c["Cmd"], json!(["sh"]), "{c:#}");
    assert_eq!(
        c["Env"],
        json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        "{c:#}"
    );
    let (archive, _) = build_oci(&dir, "b", "FROM busybox\nCMD echo $HOME\n", &[]);
    let c = config_of(&archive)["config"].clone();
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $HOME"]), "{c:#}");
}

/// The Dockerfile the exporter tests build: one RUN layer with a file and a 1777 directory.
const EXPORT_DOCKERFILE: &str = "FROM busybox\n\
    RUN echo exported > /hello.txt && mkdir /shared && chmod 1777 /shared\n\
    CMD [\"cat\", \"/hello.txt\"]\n";

#[test]
fn docker_archive_output() {
    let dir = Dir::new("docker_archive_output");
    let archive = out_path(&dir, "docker.tar");
    build_cmd(&dir, EXPORT_DOCKERFILE)
        .args(["-t", "hoist-test/exported:1"])
        .arg("-o")
        .arg(format!("type=docker,dest={}", archive.display()))
        .stdout();
    let reference = format!("docker-archive:{}", archive.display());
    let info = skopeo_inspect(&reference, &[]);
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2), "{info:#}");
    let config = skopeo_inspect(&reference, &["--config"]);
    assert_eq!(
        config["config"]["Cmd"],
        json!(["cat", "/hello.txt"]),
        "{config:#}"
    );

    // The archive's manifest.json names the tag.
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let manifest: serde_json::Value = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
        .map(|e| serde_json::from_reader(e).expect("manifest.json is JSON"))
        .expect("docker archive has a manifest.json");
    let tags = manifest[0]["RepoTags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tags.iter().any(|t| t
            .as_str()
            .is_some_and(|t| t.ends_with("hoist-test/exported:1"))),
        "{manifest:#}"
    );

    // Its layers apply: copy to an OCI layout and unpack.
    let layout = out_path(&dir, "layout");
    run_ok(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy"])
            .arg(&reference)
            .arg(format!("oci:{}:x", layout.display())),
    );
    let rootfs = umoci_unpack(&layout, "x", &out_path(&dir, "bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("hello.txt")).unwrap(),
        "exported\n"
    );
    assert_eq!(mode_of(&rootfs.join("shared")), S_IFDIR | 0o1777);
}

#[test]
fn local_output_writes_the_rootfs() {
    let dir = Dir::new("local_output_writes_the_rootfs");
    let out = out_path(&dir, "out");
    build_cmd(&dir, EXPORT_DOCKERFILE)
        .arg("-o")
        .arg(format!("type=local,dest={}", out.display()))
        .stdout();
    assert_eq!(
        fs::read_to_string(out.join("hello.txt")).unwrap(),
        "exported\n"
    );
    assert_eq!(mode_of(&out.join("shared")), S_IFDIR | 0o1777);
    // The whole filesystem, base included.
    assert_eq!(
        fs::read(out.join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(out.join("bin/sh"))
            .expect("bin/sh is a symlink")
            .to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(fs::metadata(out.join("home/app")).unwrap().uid(), 1000);
}

#[test]
fn tar_output_is_the_rootfs_as_a_tarball() {
    let dir = Dir::new("tar_output_is_the_rootfs_as_a_tarball");
    let out = out_path(&dir, "fs.tar");
    build_cmd(&dir, EXPORT_DOCKERFILE)
        .arg("-o")
        .arg(format!("type=tar,dest={}", out.display()))
        .stdout();
    let mut tar = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut seen = std::collections::BTreeMap::new();
    for entry in tar.entries().expect("a tar archive") {
        let mut entry = entry.expect("tar entry");
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let mode = entry.header().mode().unwrap();
        let mut data = String::new();
        if entry.header().entry_type().is_file() && path == "hello.txt" {
            std::io::Read::read_to_string(&mut entry, &mut data).unwrap();
        }
        seen.insert(path, (mode, data));
    }
    assert_eq!(
        seen.get("hello.txt").map(|(_, d)| d.as_str()),
        Some("exported\n"),
        "{:?}",
        seen.keys()
    );
    assert_eq!(seen.get("shared").map(|(m, _)| m & 0o7777), Some(0o1777));
    assert!(seen.contains_key("bin/busybox"), "{:?}", seen.keys());
}

#[test]
fn stdout_oci_output_is_the_archive() {
    let dir = Dir::new("stdout_oci_output_is_the_archive");
    let out = build_cmd(&dir, EXPORT_DOCKERFILE)
        .args(["-o", "type=oci,dest=-"])
        .cmd()
        .output()
        .expect("run hoist");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = out_path(&dir, "from-stdout.tar");
    fs::write(&archive, &out.stdout).unwrap();
    let config = config_of(&archive);
    assert_eq!(config["config"]["Cmd"], json!(["cat", "/hello.txt"]));
}

#[test]
fn registry_push_and_registry_base() {
    let reg = Registry::start();
    let base = busybox_image().push(&reg);
    let dir = Dir::new("registry_push_and_registry_base");
    let name = format!("{}/pushed/app:1", reg.host());
    let meta = out_path(&dir, "meta.json");
    // The base comes from the registry here, not the layout.
    let dockerfile = format!("FROM {base}\nRUN echo pushed > /pushed.txt\n");
    // First kept in hoist's store only (its new layers stay uncompressed there), then pushed:
    // what leaves the machine is gzip.
    build_cmd(&dir, &dockerfile).args(["-t", "local/app:1"]).stdout();
    build_cmd(&dir, &dockerfile)
        .arg("-o")
        .arg(format!("type=registry,name={name}"))
        .arg("--metadata-file")
        .arg(&meta)
        .stdout();
    let info = skopeo_inspect(&format!("docker://{name}"), &[]);
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2), "{info:#}");
    let manifest = skopeo_inspect(&format!("docker://{name}"), &["--raw"]);
    for layer in manifest["layers"].as_array().expect("layers") {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest:#}"
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(&meta).expect("metadata file")).unwrap();
    assert_eq!(
        meta["containerimage.digest"], info["Digest"],
        "metadata {meta:#} vs registry {info:#}"
    );
    let config = skopeo_inspect(&format!("docker://{name}"), &["--config"]);
    assert_eq!(config["config"]["Cmd"], json!(["sh"]));

    // Pull it back and look inside.
    let layout = out_path(&dir, "pulled");
    run_ok(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
            .arg(format!("docker://{name}"))
            .arg(format!("oci:{}:x", layout.display())),
    );
    let rootfs = umoci_unpack(&layout, "x", &out_path(&dir, "bundle"));
    assert_eq!(
        fs::read_to_string(rootfs.join("pushed.txt")).unwrap(),
        "pushed\n"
    );
    assert!(
        fs::metadata(rootfs.join("bin/busybox"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111
            != 0
    );
}
