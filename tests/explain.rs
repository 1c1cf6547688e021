//! Explainable builds (issue 10): why each step ran instead of coming from the cache, compared
//! with the last build of the same target (`--explain`, the metadata file, the plain progress
//! line); `--log-file`; the failure report printed last; the live tty display in a pty.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{
    build_cmd, build_cmd_progress, busybox_image, hoist_bin, out_path, run_ok, write_oci_layout,
    Dir, FixtureEntry, Registry, TestCommand,
};

/// Runs a build command, panicking with its output unless it succeeds.
fn ok(cmd: &mut TestCommand) -> Output {
    let out = cmd.output();
    assert!(
        out.status.success(),
        "build failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `--explain=json` document a build printed on stdout.
fn explanation(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the explain JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The explained steps of a JSON view.
fn steps(doc: &Value) -> &Vec<Value> {
    doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {doc:#}"))
}

/// The one step whose name contains `needle`.
fn step<'a>(doc: &'a Value, needle: &str) -> &'a Value {
    let found: Vec<&Value> = steps(doc)
        .iter()
        .filter(|s| s["name"].as_str().unwrap_or("").contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "steps named {needle:?} in {doc:#}");
    found[0]
}

/// Every reason of every step, with the step's name.
fn all_reasons(doc: &Value) -> Vec<(String, Value)> {
    steps(doc)
        .iter()
        .flat_map(|s| {
            let name = s["name"].as_str().unwrap_or("").to_string();
            s["reasons"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (name.clone(), r))
        })
        .collect()
}

/// Reasons of kind `kind`.
fn reasons_of(doc: &Value, kind: &str) -> Vec<(String, Value)> {
    all_reasons(doc)
        .into_iter()
        .filter(|(_, r)| r["kind"] == kind)
        .collect()
}

#[test]
fn changed_file_in_1000_file_context_is_named_exactly() {
    let dir = Dir::new("changed_file_in_1000_file_context_is_named_exactly");
    for d in 0..10 {
        for f in 0..100 {
            dir.write_file(
                format!("src/d{d:02}/f{f:03}.txt"),
                format!("file {d} {f}\n"),
            );
        }
    }
    let dockerfile = "FROM scratch\nCOPY . /app\n";
    let first = ok(build_cmd(&dir, dockerfile).arg("--explain=json"));
    let doc = explanation(&first);
    assert_eq!(step(&doc, "COPY . /app")["status"], "rebuilt", "{doc:#}");

    dir.write_file("src/d03/f042.txt", "changed\n");
    let meta = out_path(&dir, "meta.json");
    let log = out_path(&dir, "build.log");
    let second = ok(build_cmd_progress(&dir, dockerfile, "plain")
        .arg("--explain=json")
        .arg("--metadata-file")
        .arg(&meta)
        .arg("--log-file")
        .arg(&log));
    let doc = explanation(&second);

    // Exactly that file, by the step that reads the context.
    let files = reasons_of(&doc, "files");
    assert!(!files.is_empty(), "no file reasons in {doc:#}");
    for (_, r) in &files {
        assert_eq!(r["total"], 1, "{r:#}");
        assert_eq!(
            r["changed"],
            serde_json::json!([{"path": "src/d03/f042.txt", "changes": ["content"]}]),
            "{r:#}"
        );
    }
    let copy = step(&doc, "COPY . /app");
    assert_eq!(copy["status"], "rebuilt", "{doc:#}");
    assert_eq!(
        copy["summary"], "rebuilt: src/d03/f042.txt changed",
        "{copy:#}"
    );

    // The plain progress line names it next to the step.
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("COPY . /app \u{2014} rebuilt: src/d03/f042.txt changed")),
        "no explained COPY line in:\n{stderr}"
    );
    // The metadata file holds the same view; the log file the explanation's detail.
    let meta: Value =
        serde_json::from_slice(&fs::read(&meta).expect("metadata file")).expect("metadata JSON");
    assert_eq!(
        meta["hoist.explain"], doc,
        "metadata and --explain=json differ"
    );
    let log = fs::read_to_string(&log).expect("log file");
    assert!(log.contains("src/d03/f042.txt changed"), "{log}");

    // The text view says the same.
    dir.write_file("src/d09/f099.txt", "changed too\n");
    let third = ok(build_cmd_progress(&dir, dockerfile, "plain").arg("--explain"));
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(
        stderr.contains("1 path(s) changed in context:\n"),
        "{stderr}"
    );
    assert!(stderr.contains("  src/d09/f099.txt changed\n"), "{stderr}");
    assert!(
        !stderr.contains("f042"),
        "an earlier change is reported again:\n{stderr}"
    );
}

#[test]
fn changed_build_arg_is_named_without_its_value() {
    let dir = Dir::new("changed_build_arg_is_named_without_its_value");
    let dockerfile = "FROM busybox\nARG GREETING\nARG OTHER=same\nRUN echo \"$GREETING $OTHER\" > /greeting.txt\n";
    ok(build_cmd(&dir, dockerfile).args(["--build-arg", "GREETING=hello-one"]));
    let out = ok(build_cmd(&dir, dockerfile).args([
        "--build-arg",
        "GREETING=hello-two",
        "--explain=json",
    ]));
    let doc = explanation(&out);
    let run = step(&doc, "RUN echo");
    assert_eq!(run["status"], "rebuilt", "{doc:#}");
    assert_eq!(
        run["reasons"],
        serde_json::json!([{"kind": "build-arg", "name": "GREETING"}]),
        "{run:#}"
    );
    assert_eq!(run["summary"], "rebuilt: build arg GREETING changed");
    let text = serde_json::to_string(&doc).unwrap_or_default();
    assert!(
        !text.contains("hello-"),
        "a build arg value is in the explanation: {text}"
    );
}

#[test]
fn moved_base_image_tag_is_named() {
    let reg = Registry::start();
    let dir = Dir::new("moved_base_image_tag_is_named");
    let push = |name: &str, marker: &str| -> String {
        let layout = out_path(&dir, name);
        let digest = write_oci_layout(
            &layout,
            vec![FixtureEntry::file("marker.txt", 0o644, marker)],
            &["/bin/sh"],
        );
        run_ok(
            Command::new("skopeo")
                .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
                .args([
                    format!("oci:{}:latest", layout.display()),
                    format!("docker://{}/base:latest", reg.host()),
                ]),
        );
        digest
    };
    let old = push("base-v1", "one\n");
    dir.write_file("a.txt", "A\n");
    let dockerfile = format!("FROM {}/base:latest\nCOPY a.txt /a.txt\n", reg.host());
    ok(&mut build_cmd(&dir, &dockerfile));
    let new = push("base-v2", "two\n");
    assert_ne!(old, new);
    let out = ok(build_cmd(&dir, &dockerfile).arg("--explain=json"));
    let doc = explanation(&out);
    let base = reasons_of(&doc, "base-image");
    assert_eq!(base.len(), 1, "{doc:#}");
    let (_, r) = &base[0];
    assert_eq!(
        r["reference"],
        format!("{}/base:latest", reg.host()),
        "{r:#}"
    );
    assert_eq!(r["old"], old, "{r:#}");
    assert_eq!(r["new"], new, "{r:#}");
    // The COPY on top ran again because of it, and says so.
    let copy = step(&doc, "COPY a.txt");
    assert_eq!(copy["status"], "rebuilt");
    assert!(
        copy["summary"]
            .as_str()
            .unwrap_or("")
            .contains("base image"),
        "{copy:#}"
    );
}

/// True if `needle` occurs in any file under `root`.
fn found_in_tree(root: &Path, needle: &[u8]) -> Option<String> {
    for entry in walkdir(root) {
        if let Ok(bytes) = fs::read(&entry) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Some(entry.display().to_string());
            }
        }
    }
    None
}

fn walkdir(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

#[test]
fn secret_change_is_reported_without_its_value() {
    let dir = Dir::new("secret_change_is_reported_without_its_value");
    let secret = out_path(&dir, "token.txt");
    fs::write(&secret, "s3cr3t-value-ONE").expect("write secret");
    let dockerfile =
        "FROM busybox\nRUN --mount=type=secret,id=token wc -c < /run/secrets/token > /len.txt\n";
    let spec = format!("id=token,src={}", secret.display());
    ok(build_cmd(&dir, dockerfile).args(["--secret", spec.as_str()]));
    fs::write(&secret, "s3cr3t-value-TWO").expect("write secret");
    let log = out_path(&dir, "build.log");
    let out = ok(build_cmd(&dir, dockerfile)
        .args(["--secret", spec.as_str(), "--explain=json", "--log-file"])
        .arg(&log));
    let doc = explanation(&out);
    let run = step(&doc, "RUN --mount");
    // Secrets are not part of cache keys (as in BuildKit): the step stays cached, with a note.
    assert_eq!(run["status"], "cached", "{run:#}");
    assert_eq!(
        run["notes"],
        serde_json::json!([{"kind": "secret", "id": "token"}]),
        "{run:#}"
    );
    assert!(
        run["summary"]
            .as_str()
            .unwrap_or("")
            .contains("secret token changed"),
        "{run:#}"
    );

    for value in ["s3cr3t-value-ONE", "s3cr3t-value-TWO"] {
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(bytes).contains(value),
                "{what} holds the secret"
            );
        }
        assert!(
            !fs::read_to_string(&log).unwrap_or_default().contains(value),
            "the log file holds the secret"
        );
        assert_eq!(
            found_in_tree(dir.state_dir(), value.as_bytes()),
            None,
            "the state directory holds the secret"
        );
    }
}

#[test]
fn identical_builds_report_cached_for_every_step() {
    let dir = Dir::new("identical_builds_report_cached_for_every_step");
    dir.write_file("a.txt", "A\n");
    let dockerfile = "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n";
    let first = explanation(&ok(build_cmd(&dir, dockerfile).arg("--explain=json")));
    let run = step(&first, "RUN cat");
    assert_eq!(
        run["reasons"],
        serde_json::json!([{"kind": "first-build"}]),
        "{first:#}"
    );

    let second = explanation(&ok(build_cmd(&dir, dockerfile).arg("--explain=json")));
    assert!(steps(&second).len() >= 3, "{second:#}");
    for s in steps(&second) {
        assert_eq!(s["status"], "cached", "{second:#}");
        assert_eq!(s["reasons"], serde_json::json!([]), "{second:#}");
        assert_eq!(s["summary"], "cached", "{second:#}");
    }
}

#[test]
fn no_cache_is_named() {
    let dir = Dir::new("no_cache_is_named");
    let dockerfile = "FROM busybox\nRUN echo hi > /hi.txt\n";
    ok(&mut build_cmd(&dir, dockerfile));
    let doc = explanation(&ok(
        build_cmd(&dir, dockerfile).args(["--no-cache", "--explain=json"])
    ));
    let run = step(&doc, "RUN echo hi");
    assert_eq!(run["status"], "rebuilt");
    assert_eq!(run["reasons"][0]["kind"], "no-cache", "{run:#}");
}

#[test]
fn log_file_holds_every_line_with_step_names_and_times() {
    let dir = Dir::new("log_file_holds_every_line_with_step_names_and_times");
    let log = out_path(&dir, "build.log");
    let dockerfile =
        "FROM busybox\nRUN for i in $(seq 1 500); do echo line-$i; echo err-$i >&2; done\n";
    ok(build_cmd_progress(&dir, dockerfile, "tty")
        .arg("--log-file")
        .arg(&log));
    let text = fs::read_to_string(&log).expect("log file");
    for i in 1..=500 {
        let out = format!(
            "RUN for i in $(seq 1 500); do echo line-$i; echo err-$i >&2; done: stdout: line-{i}\n"
        );
        assert!(
            text.contains(&out),
            "line {i} missing from the log:\n{}",
            &text[..text.len().min(3000)]
        );
        assert!(
            text.contains(&format!(": stderr: err-{i}\n")),
            "stderr line {i} missing"
        );
    }
    // Every line starts with an RFC 3339 UTC timestamp; the frontend's lines are there too.
    for line in text.lines() {
        let (stamp, _) = line.split_once(' ').unwrap_or_default();
        assert!(
            stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "bad line: {line}"
        );
    }
    assert!(
        text.contains("#0 frontend builtin:dockerfile sha256:"),
        "{text}"
    );
}

#[test]
fn failure_report_is_last_and_in_metadata_and_rawjson() {
    let dir = Dir::new("failure_report_is_last_and_in_metadata_and_rawjson");
    let meta = out_path(&dir, "meta.json");
    let dockerfile =
        "FROM busybox\nRUN echo first-output\nRUN echo about-to-fail && exit 3\nRUN echo never\n";
    let out = build_cmd(&dir, dockerfile)
        .arg("--metadata-file")
        .arg(&meta)
        .arg("--explain")
        .output();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = tail.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("ERROR: "),
        "the failure report is not last:\n{stderr}"
    );
    let report_at = stderr
        .rfind("\n------\n")
        .unwrap_or_else(|| panic!("no report:\n{stderr}"));
    let report = &stderr[report_at..];
    assert!(report.contains("about-to-fail"), "{report}");
    assert!(
        report.contains(">>> RUN echo about-to-fail && exit 3"),
        "{report}"
    );
    assert!(report.contains("(exit code 3)"), "{report}");
    assert!(
        stderr[..report_at].contains("Why each step ran"),
        "the explanation is not before the report:\n{stderr}"
    );

    let rawjson: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let line = rawjson
        .iter()
        .find(|v| v["kind"] == "failure-report")
        .unwrap_or_else(|| panic!("no failure-report event:\n{stderr}"));
    let meta: Value =
        serde_json::from_slice(&fs::read(&meta).expect("metadata file")).expect("metadata JSON");
    let failure = &meta["hoist.failure"];
    for f in [failure, line] {
        assert_eq!(f["exit_code"], 3, "{f:#}");
        assert_eq!(f["location"]["ranges"][0]["start"], 3, "{f:#}");
        assert!(
            f["step"]
                .as_str()
                .unwrap_or("")
                .contains("RUN echo about-to-fail"),
            "{f:#}"
        );
        assert!(f["command"].to_string().contains("about-to-fail"), "{f:#}");
        assert!(f["log"].to_string().contains("about-to-fail"), "{f:#}");
        assert!(
            f["source_lines"]
                .to_string()
                .contains("RUN echo about-to-fail && exit 3"),
            "{f:#}"
        );
    }
}

/// Drops ANSI escape sequences (the tty display's cursor moves and clears).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Runs `hoist build` under `script` (a pseudo-terminal), `--progress=auto`.
fn build_in_pty(dir: &Dir, dockerfile: &str) -> String {
    dir.write_file("Dockerfile", dockerfile);
    let cmd = format!(
        "{} build . -f Dockerfile --progress=auto --state-dir {} --build-context busybox={}",
        hoist_bin().display(),
        dir.state_dir().display(),
        busybox_image().oci_layout_ref()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .env("HOIST_STATE_DIR", dir.state_dir())
        .env_remove("HOIST_HOST")
        .env("COLUMNS", "160")
        .stdin(Stdio::null())
        .output()
        .expect("run script(1)");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "build in a pty failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn tty_mode_in_a_pty_shows_steps_timings_and_cached() {
    let dir = Dir::new("tty_mode_in_a_pty_shows_steps_timings_and_cached");
    dir.write_file("a.txt", "A\n");
    let dockerfile = "FROM busybox\nCOPY a.txt /a.txt\nRUN sleep 1 && echo slept\n";
    let first = build_in_pty(&dir, dockerfile);
    assert!(first.contains("[+] Building"), "{first}");
    let run_line = first
        .lines()
        .rev()
        .find(|l| l.contains("RUN sleep 1 && echo slept"))
        .unwrap_or_else(|| panic!("no RUN line:\n{first}"));
    let time = run_line.split_whitespace().last().unwrap_or_default();
    let secs: f64 = time
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("no time at the end of {run_line:?}"));
    assert!(time.ends_with('s') && secs >= 1.0, "{run_line:?}");
    assert!(
        run_line.contains("\u{2014} rebuilt: no earlier build of this target"),
        "{run_line:?}"
    );
    // It is the live display, not plain lines: no `#N DONE` lines.
    assert!(
        !first.contains(" DONE "),
        "plain output in tty mode:\n{first}"
    );

    let second = build_in_pty(&dir, dockerfile);
    assert!(
        second
            .lines()
            .any(|l| l.contains("CACHED") && l.contains("RUN sleep 1")),
        "{second}"
    );
}
