use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use hoist_store::{Mutable, Snapshotter};

use super::*;
use crate::request::{ExecMount, MountKind};

/// A snapshotter, a committed busybox base layer and an executor, all under one temp dir.
struct Fixture {
    tmp: tempfile::TempDir,
    snap: Snapshotter,
    base: hoist_store::LayerId,
    exec: RuncExecutor,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let db = sled::open(tmp.path().join("db")).unwrap();
    let snap = Snapshotter::open(&tmp.path().join("snap"), &db).unwrap();
    let m = snap.prepare(&[]).unwrap();
    let root = m.mountpoint();
    for dir in ["bin", "etc", "tmp"] {
        fs::create_dir(root.join(dir)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "id", "ip", "ls", "sleep", "touch", "find", "hostname",
    ] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nusers:x:100:\nwheel:x:10:bob\n",
    )
    .unwrap();
    let base = m.commit().unwrap();
    let exec = RuncExecutor::new(&tmp.path().join("worker")).unwrap();
    Fixture {
        tmp,
        snap,
        base,
        exec,
    }
}

impl Fixture {
    fn rootfs(&self) -> Mutable {
        self.snap.prepare(std::slice::from_ref(&self.base)).unwrap()
    }

    /// Runs `script` with `sh -c` and returns (stdout, stderr) or the error.
    fn sh(
        &self,
        m: &Mutable,
        script: &str,
        edit: impl FnOnce(&mut ExecRequest),
    ) -> Result<(String, String)> {
        let mut req = ExecRequest::new(m.mountpoint(), ["sh", "-c", script]);
        edit(&mut req);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        self.exec.run(
            &req,
            &mut |stream, bytes| match stream {
                Stream::Stdout => out.extend_from_slice(bytes),
                Stream::Stderr => err.extend_from_slice(bytes),
            },
            &CancelToken::new(),
        )?;
        Ok((
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        ))
    }
}

#[test]
fn echo_streams_stdout_and_stderr() {
    let f = fixture();
    let m = f.rootfs();
    let (out, err) = f.sh(&m, "echo hi; echo oops >&2", |_| {}).unwrap();
    assert_eq!(out, "hi\n");
    assert_eq!(err, "oops\n");
    assert_eq!(
        fs::read_dir(f.tmp.path().join("worker/runc"))
            .unwrap()
            .count(),
        0,
        "container state deleted"
    );
    assert_eq!(
        fs::read_dir(f.tmp.path().join("worker/bundles"))
            .unwrap()
            .count(),
        0,
        "bundle removed"
    );
}

#[test]
fn output_arrives_while_the_process_runs() {
    let f = fixture();
    let m = f.rootfs();
    let req = ExecRequest::new(
        m.mountpoint(),
        ["sh", "-c", "echo first; sleep 2; echo second"],
    );
    let start = Instant::now();
    let mut first_at = None;
    f.exec
        .run(
            &req,
            &mut |_, bytes| {
                if first_at.is_none() && String::from_utf8_lossy(bytes).contains("first") {
                    first_at = Some(start.elapsed());
                }
            },
            &CancelToken::new(),
        )
        .unwrap();
    let total = start.elapsed();
    assert!(
        first_at.unwrap() + Duration::from_millis(1500) < total,
        "first line at {first_at:?} of {total:?}"
    );
}

#[test]
fn non_zero_exit_is_reported_with_code_and_log() {
    let f = fixture();
    let m = f.rootfs();
    let err = f.sh(&m, "echo about to fail; exit 3", |_| {}).unwrap_err();
    match &err {
        Error::ExitStatus { code, args, log } => {
            assert_eq!(*code, 3);
            assert_eq!(args[0], "sh");
            assert_eq!(log.last().map(String::as_str), Some("about to fail"));
        }
        other => panic!("expected ExitStatus, got {other}"),
    }
    assert_eq!(err.exit_code(), Some(3));
    assert_eq!(
        fs::read_dir(f.tmp.path().join("worker/runc"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    let f = fixture();
    let m = f.rootfs();
    let (out, _) = f
        .sh(&m, "ls /sys/class/net; ip -o addr show lo", |_| {})
        .unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"));
    assert!(
        lines.next().is_some_and(|l| l.contains("127.0.0.1")),
        "{out}"
    );

    let (out, _) = f
        .sh(&m, "ls /sys/class/net", |r| r.network = Network::Host)
        .unwrap();
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(out.lines().collect::<Vec<_>>(), host);
}

#[test]
fn users_resolve_from_the_rootfs() {
    let f = fixture();
    let m = f.rootfs();
    let (out, _) = f
        .sh(&m, "id -u; id -g", |r| r.user = "1000:1000".into())
        .unwrap();
    assert_eq!(out, "1000\n1000\n");
    let (out, _) = f
        .sh(&m, "id -u; id -g; id -G; echo $HOME", |r| {
            r.user = "bob".into()
        })
        .unwrap();
    assert_eq!(out, "1001\n100\n100 10\n/home/bob\n");
    let (out, _) = f.sh(&m, "id -u", |_| {}).unwrap();
    assert_eq!(out, "0\n");
    let err = f.sh(&m, "true", |r| r.user = "mallory".into()).unwrap_err();
    assert!(matches!(err, Error::UnknownUser { .. }), "{err}");
}

#[test]
fn etc_files_are_visible_but_never_reach_the_upper_layer() {
    let f = fixture();
    let m = f.rootfs();
    let cache = tempfile::tempdir().unwrap();
    fs::write(cache.path().join("c"), "cached").unwrap();
    let script = "cat /etc/hosts /etc/hostname /cache/c; touch /made-by-run; test -e /dev/null";
    let (out, _) = f
        .sh(&m, script, |r| {
            r.hostname = "buildbox".into();
            r.mounts.push(ExecMount {
                dest: "/cache".into(),
                kind: MountKind::Bind {
                    source: cache.path().into(),
                    readonly: true,
                },
            });
            r.mounts.push(ExecMount {
                dest: "/scratch/t".into(),
                kind: MountKind::Tmpfs { size: 1 << 20 },
            });
        })
        .unwrap();
    assert!(out.contains("localhost buildbox"), "{out}");
    assert!(out.contains("buildbox\ncached"), "{out}");

    let upper = m.upper();
    assert!(
        upper.join("made-by-run").is_file(),
        "the process's own writes are kept"
    );
    for stub in [
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "proc",
        "dev",
        "sys",
        "cache",
        "scratch",
    ] {
        assert!(
            !upper.join(stub).exists(),
            "{stub} leaked into the upper dir"
        );
    }
    let files: Vec<_> = walk(upper).into_iter().filter(|p| !p.is_dir()).collect();
    assert_eq!(files, vec![upper.join("made-by-run")]);
    let base_etc = fs::metadata(f.snap.layer_dir(&f.base).join("etc")).unwrap();
    if let Ok(upper_etc) = fs::metadata(upper.join("etc")) {
        assert_eq!(
            upper_etc.modified().unwrap(),
            base_etc.modified().unwrap(),
            "copied-up /etc keeps its mtime"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn capabilities_default_to_dockers_set_and_insecure_gets_all() {
    let f = fixture();
    let m = f.rootfs();
    let caps =
        "cat /proc/self/status | while read k v; do [ \"$k\" = CapEff: ] && echo $v; done; true";
    let (out, _) = f.sh(&m, caps, |_| {}).unwrap();
    assert_eq!(out.trim(), "00000000a80425fb");
    let (out, _) = f.sh(&m, caps, |r| r.insecure = true).unwrap();
    let eff = u64::from_str_radix(out.trim(), 16).unwrap();
    assert!(
        eff & (1 << 21) != 0,
        "CAP_SYS_ADMIN in insecure mode: {out}"
    );
}

#[test]
fn cancel_kills_the_container() {
    let f = fixture();
    let m = f.rootfs();
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        trigger.cancel();
    });
    let start = Instant::now();
    let req = ExecRequest::new(m.mountpoint(), ["sleep", "60"]);
    let err = f.exec.run(&req, &mut |_, _| {}, &cancel).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(
        fs::read_dir(f.tmp.path().join("worker/runc"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn missing_runtime_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = RuncExecutor::with_runtime(tmp.path(), Path::new("/nonexistent/runc")).unwrap_err();
    assert!(err.is_runtime_missing());
    assert!(err.to_string().contains("apt-get install"), "{err}");
}
