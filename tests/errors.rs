//! Failed builds: the exit code (1 for a build that fails, 2 for a usage error), what stderr
//! tells the user, that nothing escapes the build context, and that the state directory still
//! works afterwards.

use std::fs;
use std::path::Path;

use crate::util::{
    build_cmd, build_cmd_progress, build_oci, busybox_image, lstat, out_path, unpack_oci_archive,
    Dir, Registry, Steps,
};

/// Runs a build of `dockerfile` in `dir` with `--progress=plain` and `extra` flags, asserts it
/// exits with `code`, and returns stderr.
fn build_fails(dir: &Dir, dockerfile: &str, extra: &[&str], code: i32) -> String {
    let out = build_cmd_progress(dir, dockerfile, "plain")
        .args(extra)
        .arg("-o")
        .arg(format!(
            "type=oci,dest={}",
            out_path(&dir, "out.tar").display()
        ))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}; stderr:\n{stderr}"
    );
    assert!(
        !out_path(&dir, "out.tar").exists(),
        "a failed build wrote its output"
    );
    stderr
}

/// Every path under `root` whose file name is `name` (not following symlinks).
fn find_named(root: &Path, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_str() == Some(name) {
                found.push(path.display().to_string());
            }
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn failing_run_names_line_command_logs_and_exit_code() {
    let dir = Dir::new("failing_run_names_line_command_logs_and_exit_code");
    let dockerfile = "FROM busybox\n\
        RUN echo fine\n\
        RUN echo first-words && echo last-words >&2 && exit 3\n\
        RUN echo never-$((40 + 2))\n";
    let stderr = build_fails(&dir, dockerfile, &[], 1);
    assert!(
        stderr.contains("Dockerfile:3"),
        "no Dockerfile:3 location:\n{stderr}"
    );
    assert!(
        stderr.contains(">>> RUN echo first-words && echo last-words >&2 && exit 3"),
        "no source line:\n{stderr}"
    );
    assert!(
        stderr.contains("exit code 3") || stderr.contains("exit code: 3"),
        "no exit code:\n{stderr}"
    );
    // The failure report printed last repeats the step's last log lines, however long the
    // progress output before it.
    let report = &stderr[stderr
        .rfind("\n------\n")
        .and_then(|end| stderr[..end].rfind("------\n"))
        .expect("a failure report")..];
    assert!(
        report.contains("first-words") && report.contains("last-words"),
        "report lacks the step's log:\n{report}"
    );
    assert!(
        !stderr.contains("never-42"),
        "a step after the failure ran:\n{stderr}"
    );
}

#[test]
fn failing_run_in_rawjson_reports_vertex_failed() {
    let dir = Dir::new("failing_run_in_rawjson_reports_vertex_failed");
    let out = build_cmd(&dir, "FROM busybox\nRUN exit 3\n")
        .args(["-o", "type=oci,dest=x.tar"])
        .output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let steps = Steps::parse(&stderr);
    assert_eq!(steps.failed.len(), 1, "{stderr}");
    assert!(steps.failed[0].0.contains("RUN exit 3"), "{steps:#?}");
    assert!(steps.failed[0].1.contains('3'), "{steps:#?}");
}

#[test]
fn unknown_instruction_names_its_line() {
    let dir = Dir::new("unknown_instruction_names_its_line");
    let stderr = build_fails(
        &dir,
        "FROM busybox\nRUN true\nFROBNICATE all the things\n",
        &[],
        1,
    );
    assert!(stderr.to_lowercase().contains("frobnicate"), "{stderr}");
    assert!(stderr.contains("Dockerfile:3"), "no line number:\n{stderr}");
    assert!(
        stderr.contains(">>> FROBNICATE all the things"),
        "no source line:\n{stderr}"
    );
}

#[test]
fn unknown_image_tag_names_the_image() {
    let reg = Registry::start();
    busybox_image().push(&reg);
    let dir = Dir::new("unknown_image_tag_names_the_image");
    let image = format!("{}/busybox:no-such-tag", reg.host());
    let stderr = build_fails(&dir, &format!("FROM {image}\nRUN true\n"), &[], 1);
    assert!(
        stderr.contains(&image)
            || stderr.contains(&format!("{}/busybox", reg.host()))
                && stderr.contains("no-such-tag"),
        "{stderr}"
    );
    let image = format!("{}/nothing-here:latest", reg.host());
    let stderr = build_fails(&dir, &format!("FROM {image}\n"), &[], 1);
    assert!(stderr.contains("nothing-here"), "{stderr}");
}

#[test]
fn copy_of_a_missing_file_names_it() {
    let dir = Dir::new("copy_of_a_missing_file_names_it");
    dir.write_file("present.txt", "here\n");
    let stderr = build_fails(
        &dir,
        "FROM busybox\nCOPY present.txt /\nCOPY not-there.txt /x\n",
        &[],
        1,
    );
    assert!(stderr.contains("not-there.txt"), "{stderr}");
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
}

#[test]
fn unknown_target_names_it() {
    let dir = Dir::new("unknown_target_names_it");
    let stderr = build_fails(
        &dir,
        "FROM busybox AS one\nRUN true\n",
        &["--target", "nope"],
        1,
    );
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn missing_dockerfile_is_an_error() {
    let dir = Dir::new("missing_dockerfile_is_an_error");
    let out = dir
        .command()
        .args([
            "build",
            ".",
            "-f",
            "Nope.Dockerfile",
            "-o",
            "type=oci,dest=x.tar",
        ])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{stderr}");
    assert!(stderr.contains("Nope.Dockerfile"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new("usage_errors_exit_2");
    dir.write_file("Dockerfile", "FROM busybox\n");
    let err = dir
        .command()
        .args(["build", ".", "--build-arg"])
        .assert_exit(2);
    assert!(err.contains("--build-arg"), "{err}");
    let err = dir
        .command()
        .args(["build", ".", "--secret", "src=/etc/hostname"])
        .assert_exit(2);
    assert!(err.contains("id"), "{err}");
    // An unreadable secret file is not a usage error, but it is named.
    let err = dir
        .command()
        .args([
            "build",
            ".",
            "--secret",
            "id=x,src=/nonexistent/secret/file",
        ])
        .assert_exit(1);
    assert!(err.contains("/nonexistent/secret/file"), "{err}");
}

#[test]
fn symlink_out_of_the_context_does_not_leak_host_files() {
    let dir = Dir::new("symlink_out_of_the_context_does_not_leak_host_files");
    // A host file outside the context with a recognisable content.
    let outside = dir.path().parent().unwrap().join("outside-secret.txt");
    fs::write(&outside, "HOST-SECRET-CONTENT\n").unwrap();
    dir.symlink("/etc/passwd", "leak");
    dir.symlink(&outside, "leak-abs");
    dir.symlink("../outside-secret.txt", "leak-rel");
    let host_passwd = fs::read("/etc/passwd").unwrap();
    for (src, dest) in [("leak", "/x"), ("leak-abs", "/y"), ("leak-rel", "/z")] {
        let dockerfile = format!("FROM busybox\nCOPY {src} {dest}\n");
        let out = build_cmd(&dir, &dockerfile)
            .arg("-o")
            .arg(format!(
                "type=oci,dest={}",
                out_path(&dir, format!("{src}.tar")).display()
            ))
            .output();
        if !out.status.success() {
            // Refusing is fine: the symlink resolves inside the context, where there is no target.
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let rootfs = unpack_oci_archive(
            &out_path(&dir, format!("{src}.tar")),
            &out_path(&dir, format!("{src}-u")),
        );
        let copied = rootfs.join(dest.trim_start_matches('/'));
        if let Ok(bytes) = fs::read(&copied) {
            let is_link = fs::symlink_metadata(&copied)
                .unwrap()
                .file_type()
                .is_symlink();
            assert!(
                is_link,
                "COPY {src} made a regular file {dest} ({} bytes)",
                bytes.len()
            );
            assert_ne!(
                bytes, host_passwd,
                "COPY {src} copied the host's /etc/passwd"
            );
            assert!(
                !String::from_utf8_lossy(&bytes).contains("HOST-SECRET"),
                "COPY {src} copied a host file"
            );
        }
    }
    // Copying the whole context keeps the links as links.
    let (archive, _) = build_oci(&dir, "all", "FROM busybox\nCOPY . /ctx/\n", &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "all-u"));
    for link in ["leak", "leak-abs", "leak-rel"] {
        let (mode, ..) = lstat(&rootfs.join("ctx").join(link));
        assert_eq!(mode & 0o170_000, 0o120_000, "/ctx/{link} is not a symlink");
    }
    assert_eq!(
        fs::read_link(rootfs.join("ctx/leak-rel")).unwrap().to_str(),
        Some("../outside-secret.txt")
    );
}

/// A tar archive with one regular file whose stored name is `name` verbatim (e.g. `../x`),
/// which the tar crate's safe setters refuse to write.
fn tar_with_raw_name(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, data).expect("append raw entry");
    builder.into_inner().expect("finish tar")
}

#[test]
fn add_of_a_tar_with_dotdot_entries_is_refused() {
    let dir = Dir::new("add_of_a_tar_with_dotdot_entries_is_refused");
    dir.write_file(
        "evil.tar",
        tar_with_raw_name("../../escaped-by-tar.txt", b"escaped\n"),
    );
    let stderr = build_fails(&dir, "FROM busybox\nADD evil.tar /dest/sub/\n", &[], 1);
    assert!(
        stderr.contains("escaped-by-tar.txt"),
        "the error does not name the entry:\n{stderr}"
    );
    assert!(
        !stderr.contains("numeric field"),
        "refused for a malformed header, not the path:\n{stderr}"
    );
    let root = dir.path().parent().unwrap();
    assert_eq!(
        find_named(root, "escaped-by-tar.txt"),
        Vec::<String>::new(),
        "the entry was written somewhere"
    );
    assert_eq!(
        find_named(Path::new("/tmp"), "escaped-by-tar.txt"),
        Vec::<String>::new()
    );

    // A well-formed tar next to it is extracted.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o640);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, "good/file.txt", &b"ok\n"[..])
        .unwrap();
    dir.write_file("good.tar", builder.into_inner().unwrap());
    let (archive, _) = build_oci(&dir, "good", "FROM busybox\nADD good.tar /dest/\n", &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "good-u"));
    assert_eq!(
        fs::read_to_string(rootfs.join("dest/good/file.txt")).unwrap(),
        "ok\n"
    );
}

#[test]
fn good_build_after_a_failed_one_succeeds() {
    let dir = Dir::new("good_build_after_a_failed_one_succeeds");
    build_fails(
        &dir,
        "FROM busybox\nRUN date +%s%N > /t\nRUN exit 5\n",
        &[],
        1,
    );
    let (archive, steps) = build_oci(
        &dir,
        "good",
        "FROM busybox\nRUN date +%s%N > /t\nRUN echo ok > /ok\n",
        &[],
    );
    assert_eq!(
        steps.cached_matching("RUN date").len(),
        1,
        "the step before the failure was not cached: {steps:#?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(fs::read_to_string(rootfs.join("ok")).unwrap(), "ok\n");
}

#[test]
fn copy_from_an_unknown_stage_is_an_image_named_at_its_line() {
    let dir = Dir::new("copy_from_an_unknown_stage_is_an_image_named_at_its_line");
    // `nosuchstage` is no stage, so it is an image reference (as in BuildKit), and no registry
    // has it: the error names it and the COPY line.
    let dockerfile = "FROM busybox AS base\n\
        RUN true\n\
        FROM base\n\
        COPY --from=nosuchstage /x /x\n";
    let stderr = build_fails(&dir, dockerfile, &[], 1);
    assert!(
        stderr.contains("Dockerfile:4"),
        "no Dockerfile:4 location:\n{stderr}"
    );
    assert!(
        stderr.contains(">>> COPY --from=nosuchstage /x /x"),
        "no source line:\n{stderr}"
    );
    let error = stderr
        .lines()
        .rfind(|l| l.starts_with("ERROR:"))
        .unwrap_or_else(|| panic!("no ERROR line:\n{stderr}"));
    assert!(
        error.contains("nosuchstage"),
        "the error does not name the image: {error}"
    );
}

#[test]
fn invalid_env_and_arg_lines_are_errors_at_their_line() {
    let dir = Dir::new("invalid_env_and_arg_lines_are_errors_at_their_line");
    let cases = [
        ("ENV =value", "ENV names can not be blank"),
        ("ENV ONLYNAME", "ENV must have two arguments"),
        ("ARG", "ARG requires at least one argument"),
        ("ARG =value", "ARG names can not be blank"),
    ];
    for (line, message) in cases {
        let dockerfile = format!("FROM busybox\nRUN echo ran-before-{}\n{line}\n", line.len());
        let stderr = build_fails(&dir, &dockerfile, &[], 1);
        assert!(
            stderr.contains("Dockerfile:3"),
            "{line:?}: no Dockerfile:3 location:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!(">>> {line}")),
            "{line:?}: no source line:\n{stderr}"
        );
        assert!(
            stderr.contains(message),
            "{line:?}: no {message:?}:\n{stderr}"
        );
        // The Dockerfile is rejected before anything runs.
        let ran = stderr
            .lines()
            .any(|l| l.starts_with('#') && l.contains("RUN echo ran-before"));
        assert!(!ran, "{line:?}: a step ran:\n{stderr}");
    }
}
