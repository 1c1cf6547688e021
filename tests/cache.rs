//! The build cache from the outside: what a build executes versus answers from the cache (per
//! the `--progress=rawjson` events), across processes on one state directory, and the image
//! digests that result. RUN steps write a random id or the time into the image, so a step that
//! ran again changes the digest.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{archive_digest, build_cmd, build_oci, out_path, unpack_oci_archive, Dir, Steps};

/// Three steps after the base: a RUN before any context file, a COPY of `a.txt`, a RUN after.
const DOCKERFILE: &str = "FROM busybox\n\
    RUN echo before > /before.txt && cat /proc/sys/kernel/random/uuid >> /before.txt\n\
    COPY a.txt /a.txt\n\
    RUN cat /a.txt > /after.txt && cat /proc/sys/kernel/random/uuid >> /after.txt\n";

/// The steps of `steps` that did real work: RUN and COPY (sources and the like excluded).
fn work(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.contains("RUN ") || n.contains("COPY "))
        .cloned()
        .collect()
}

#[test]
fn second_identical_build_executes_nothing() {
    let dir = Dir::new("second_identical_build_executes_nothing");
    dir.write_file("a.txt", "A\n");
    let (first, steps1) = build_oci(&dir, "first", DOCKERFILE, &[]);
    assert_eq!(work(&steps1.executed).len(), 3, "first build: {steps1:#?}");

    // Every `hoist build` is a new process with its own embedded engine: this is also a
    // restart on the same state directory.
    let (second, steps2) = build_oci(&dir, "second", DOCKERFILE, &[]);
    assert_eq!(
        steps2.executed,
        Vec::<String>::new(),
        "second build executed steps: {steps2:#?}"
    );
    assert_eq!(
        steps2.cached_matching("RUN cat /a.txt").len(),
        1,
        "second build: {steps2:#?}"
    );
    assert_eq!(archive_digest(&first), archive_digest(&second));

    // A third process, another exporter: still nothing runs.
    let out = out_path(&dir, "third.tar");
    let res = build_cmd(&dir, DOCKERFILE)
        .arg("-o")
        .arg(format!("type=docker,dest={}", out.display()))
        .output();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let steps3 = Steps::parse(&stderr);
    assert_eq!(
        steps3.executed,
        Vec::<String>::new(),
        "third build executed steps: {steps3:#?}"
    );
}

#[test]
fn cached_build_reports_every_step_cached() {
    // As buildx shows it: each step of a cached build is listed as CACHED, not only the last.
    let dir = Dir::new("cached_build_reports_every_step_cached");
    dir.write_file("a.txt", "A\n");
    build_oci(&dir, "first", DOCKERFILE, &[]);
    let (_, steps) = build_oci(&dir, "second", DOCKERFILE, &[]);
    assert_eq!(steps.executed, Vec::<String>::new(), "{steps:#?}");
    assert_eq!(work(&steps.cached).len(), 3, "{steps:#?}");
}

#[test]
fn changed_context_file_reruns_copy_and_later_steps_only() {
    let dir = Dir::new("changed_context_file_reruns_copy_and_later_steps_only");
    dir.write_file("a.txt", "A\n");
    let (first, _) = build_oci(&dir, "first", DOCKERFILE, &[]);
    let root1 = unpack_oci_archive(&first, &out_path(&dir, "u1"));

    // a.txt rewritten with the same bytes (a new mtime): the key is its content, nothing runs.
    std::thread::sleep(Duration::from_millis(20));
    dir.write_file("a.txt", "A\n");
    let (same, steps) = build_oci(&dir, "same", DOCKERFILE, &[]);
    assert_eq!(work(&steps.executed), Vec::<String>::new(), "{steps:#?}");
    assert_eq!(archive_digest(&first), archive_digest(&same));

    dir.write_file("a.txt", "B\n");
    let (second, steps) = build_oci(&dir, "second", DOCKERFILE, &[]);
    let executed = work(&steps.executed);
    assert_eq!(
        executed.len(),
        2,
        "expected COPY and the RUN after it: {steps:#?}"
    );
    assert!(executed[0].contains("COPY a.txt"), "{steps:#?}");
    assert!(executed[1].contains("RUN cat /a.txt"), "{steps:#?}");
    assert_eq!(
        steps.cached_matching("RUN echo before").len(),
        1,
        "{steps:#?}"
    );

    let root2 = unpack_oci_archive(&second, &out_path(&dir, "u2"));
    assert_eq!(
        fs::read(root1.join("before.txt")).unwrap(),
        fs::read(root2.join("before.txt")).unwrap()
    );
    assert!(fs::read_to_string(root2.join("after.txt"))
        .unwrap()
        .starts_with("B\n"));
    assert_ne!(
        fs::read(root1.join("after.txt")).unwrap(),
        fs::read(root2.join("after.txt")).unwrap()
    );
}

#[test]
fn change_to_a_file_no_step_copies_reruns_nothing() {
    // The cache key of COPY is the content of exactly the paths it selects, not the whole
    // context (DESIGN.md, "Cache and storage").
    let dir = Dir::new("change_to_a_file_no_step_copies_reruns_nothing");
    dir.write_file("a.txt", "A\n");
    dir.write_file("unrelated.txt", "u1\n");
    let (first, _) = build_oci(&dir, "first", DOCKERFILE, &[]);
    dir.write_file("unrelated.txt", "u2\n");
    dir.write_file("new-file.txt", "new\n");
    let (second, steps) = build_oci(&dir, "second", DOCKERFILE, &[]);
    assert_eq!(work(&steps.executed), Vec::<String>::new(), "{steps:#?}");
    assert_eq!(archive_digest(&first), archive_digest(&second));
}

#[test]
fn no_cache_reruns_everything() {
    let dir = Dir::new("no_cache_reruns_everything");
    dir.write_file("a.txt", "A\n");
    let (first, _) = build_oci(&dir, "first", DOCKERFILE, &[]);
    let (second, steps) = build_oci(&dir, "second", DOCKERFILE, &["--no-cache"]);
    assert_eq!(work(&steps.executed).len(), 3, "{steps:#?}");
    assert_eq!(work(&steps.cached), Vec::<String>::new(), "{steps:#?}");
    assert_ne!(
        archive_digest(&first),
        archive_digest(&second),
        "--no-cache gave the same timestamps"
    );
    // And the result of --no-cache is what later builds reuse or rebuild; either way the build works.
    let (_, steps) = build_oci(&dir, "third", DOCKERFILE, &[]);
    assert_eq!(work(&steps.executed), Vec::<String>::new(), "{steps:#?}");
}

#[test]
fn build_arg_change_reruns_the_steps_that_see_it() {
    let dir = Dir::new("build_arg_change_reruns_the_steps_that_see_it");
    let dockerfile = "FROM busybox\n\
        RUN date +%s%N > /early\n\
        ARG V=1\n\
        RUN echo \"$V\" > /v\n";
    build_oci(&dir, "a", dockerfile, &[]);
    let (_, steps) = build_oci(&dir, "b", dockerfile, &["--build-arg", "V=2"]);
    assert_eq!(work(&steps.executed).len(), 1, "{steps:#?}");
    assert!(steps.executed_matching("RUN echo").len() == 1, "{steps:#?}");
    assert_eq!(steps.cached_matching("RUN date").len(), 1, "{steps:#?}");
    let (_, steps) = build_oci(&dir, "c", dockerfile, &["--build-arg", "V=1"]);
    assert_eq!(
        work(&steps.executed),
        Vec::<String>::new(),
        "V=1 is the default: {steps:#?}"
    );
}

#[test]
fn concurrent_builds_on_one_state_dir_both_succeed() {
    let dir = Dir::new("concurrent_builds_on_one_state_dir_both_succeed");
    dir.write_file("a.txt", "A\n");
    let dockerfile = "FROM busybox\n\
        RUN sleep 1 && echo shared > /shared.txt\n\
        COPY a.txt /a.txt\n";
    // Both commands first: `build_cmd` writes the Dockerfile, which must not change under a
    // running build.
    let mut commands: Vec<_> = ["one", "two"]
        .iter()
        .map(|name| {
            let archive = out_path(&dir, format!("{name}.tar"));
            let mut cmd = build_cmd(&dir, dockerfile);
            cmd.arg("-o")
                .arg(format!("type=oci,dest={}", archive.display()));
            (archive, cmd)
        })
        .collect();
    let children: Vec<_> = commands
        .iter_mut()
        .map(|(archive, cmd)| {
            let child = cmd
                .cmd()
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hoist");
            (archive.clone(), child)
        })
        .collect();
    for (archive, child) in children {
        let out = child.wait_with_output().expect("wait for hoist");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: {}",
            archive.display(),
            Steps::parse(&stderr).readable(&stderr)
        );
        let rootfs = unpack_oci_archive(
            &archive,
            &out_path(&dir, format!("{}-u", archive.display())),
        );
        assert_eq!(
            fs::read_to_string(rootfs.join("shared.txt")).unwrap(),
            "shared\n"
        );
        assert_eq!(fs::read_to_string(rootfs.join("a.txt")).unwrap(), "A\n");
    }
    // The state survives the two: a third build runs nothing.
    let (_, steps) = build_oci(&dir, "three", dockerfile, &[]);
    assert_eq!(work(&steps.executed), Vec::<String>::new(), "{steps:#?}");
}

#[test]
fn killed_build_leaves_the_state_dir_usable() {
    let dir = Dir::new("killed_build_leaves_the_state_dir_usable");
    let slow = "FROM busybox\n\
        RUN date +%s%N > /first\n\
        RUN sleep 20\n";
    build_oci(&dir, "warm", "FROM busybox\nRUN date +%s%N > /first\n", &[]);
    let mut cmd = build_cmd(&dir, slow);
    cmd.arg("-o").arg(format!(
        "type=oci,dest={}",
        out_path(&dir, "never.tar").display()
    ));
    let mut child = cmd
        .cmd()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("vertex-started") && line.contains("sleep 20") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the slow step never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "hoist exited before the slow step started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: no cleanup at all.
    child.kill().expect("kill hoist");
    child.wait().expect("reap hoist");

    let fixed = "FROM busybox\n\
        RUN date +%s%N > /first\n\
        RUN echo done > /done\n";
    let (archive, steps) = build_oci(&dir, "after", fixed, &[]);
    assert_eq!(steps.cached_matching("RUN date").len(), 1, "{steps:#?}");
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(fs::read_to_string(rootfs.join("done")).unwrap(), "done\n");
}
