//! `.dockerignore` in real builds: which files of the context a `COPY . /ctx/` puts in the image
//! (`!` exceptions, later patterns winning, trailing-slash directories, `**`, comments), and a
//! `NAME.dockerignore` beside the Dockerfile given with `-f` taking the place of `.dockerignore`.

use std::fs;
use std::path::Path;

use crate::util::{build_oci, busybox_image, out_path, unpack_oci_archive, Dir, Steps};

/// Every entry under `root`, relative and sorted, directories with a trailing `/`.
fn tree(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if fs::symlink_metadata(&path).expect("lstat").is_dir() {
                found.push(format!("{rel}/"));
                stack.push(path);
            } else {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// Builds `COPY . /ctx/` in `dir` (plus `extra` flags) and returns the tree of `/ctx`.
fn copied_context(dir: &Dir, name: &str, extra: &[&str]) -> Vec<String> {
    let (archive, _) = build_oci(dir, name, "FROM busybox\nCOPY . /ctx/\n", extra);
    let rootfs = unpack_oci_archive(&archive, &out_path(dir, format!("{name}-unpacked")));
    tree(&rootfs.join("ctx"))
}

#[test]
fn dockerignore_patterns_decide_what_copy_dot_sends() {
    let dir = Dir::new("dockerignore_patterns_decide_what_copy_dot_sends");
    for file in [
        "keep.txt",
        "notes.md",
        "README.md",
        "#hash.txt",
        "debug.log",
        "important.log",
        "lib/nested.log",
        "build/out.bin",
        "build/sub/deep.o",
        "src/main.c",
        "src/gen/x.tmp",
        "top.tmp",
        "docs/guide.txt",
        "docs/keep/me.txt",
        "docs/keep/not-me.txt",
    ] {
        dir.write_file(file, format!("{file}\n"));
    }
    dir.write_file(
        ".dockerignore",
        "# a comment line is not a pattern, nor is the next one\n\
         #hash.txt\n\
         \n\
         *.md\n\
         !README.md\n\
         # an exception before the pattern it excepts from is overridden by it\n\
         !important.log\n\
         *.log\n\
         build/\n\
         **/*.tmp\n\
         docs\n\
         !docs/keep/me.txt\n",
    );
    let got = copied_context(&dir, "img", &[]);
    let expected = [
        "#hash.txt",
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "docs/",
        "docs/keep/",
        "docs/keep/me.txt",
        "keep.txt",
        // `*.log` has no `/`: it matches at the top of the context only.
        "lib/",
        "lib/nested.log",
        "src/",
        "src/gen/",
        "src/main.c",
    ];
    assert_eq!(
        got, expected,
        "/ctx holds other files than .dockerignore allows"
    );
}

#[test]
fn dockerfile_specific_ignore_file_wins_over_dockerignore() {
    let dir = Dir::new("dockerfile_specific_ignore_file_wins_over_dockerignore");
    for file in ["a.txt", "b.txt", "c.txt"] {
        dir.write_file(file, format!("{file}\n"));
    }
    dir.write_file(".dockerignore", "a.txt\n");
    dir.write_file(
        "Dockerfile.dockerignore",
        "b.txt\nDockerfile.dockerignore\n",
    );
    // `build_oci` builds `-f Dockerfile`: its `Dockerfile.dockerignore` applies, not `.dockerignore`.
    let got = copied_context(&dir, "specific", &[]);
    assert_eq!(got, [".dockerignore", "Dockerfile", "a.txt", "c.txt"]);

    // Without it, `.dockerignore` applies again.
    fs::remove_file(dir.join("Dockerfile.dockerignore")).expect("remove Dockerfile.dockerignore");
    let got = copied_context(&dir, "plain", &[]);
    assert_eq!(got, [".dockerignore", "Dockerfile", "b.txt", "c.txt"]);
}

#[test]
fn ignore_file_is_found_beside_a_dockerfile_outside_the_context() {
    let dir = Dir::new("ignore_file_is_found_beside_a_dockerfile_outside_the_context");
    for file in ["app/a.txt", "app/b.txt", "app/c.txt"] {
        dir.write_file(file, format!("{file}\n"));
    }
    dir.write_file("app/.dockerignore", "a.txt\n");
    dir.write_file("docker/app.Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    dir.write_file("docker/app.Dockerfile.dockerignore", "c.txt\n");
    // Read beside the Dockerfile, not in the context.
    dir.write_file("app/app.Dockerfile.dockerignore", "b.txt\n");
    let archive = out_path(&dir, "app.tar");
    let out = dir
        .command()
        .args([
            "build",
            "app",
            "-f",
            "docker/app.Dockerfile",
            "--progress=rawjson",
            "--state-dir",
        ])
        .arg(dir.state_dir())
        .arg("--build-context")
        .arg(format!("busybox={}", busybox_image().oci_layout_ref()))
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        Steps::parse(&stderr).readable(&stderr)
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "app-unpacked"));
    assert_eq!(
        tree(&rootfs.join("ctx")),
        [
            ".dockerignore",
            "a.txt",
            "app.Dockerfile.dockerignore",
            "b.txt"
        ]
    );
}
