//! The command line from the outside: version, completions, usage errors.

use std::collections::BTreeSet;

use crate::util::{build_cmd, out_path, workspace_root, Dir};

#[test]
fn version_prints_the_package_version() {
    let dir = Dir::new("version_prints_the_package_version");
    let out = dir.command().arg("version").stdout();
    assert!(out.starts_with(&format!("hoist {}", env!("CARGO_PKG_VERSION"))), "{out}");
}

#[test]
fn completion_bash_names_build_flags() {
    let dir = Dir::new("completion_bash_names_build_flags");
    let out = dir.command().args(["completion", "bash"]).stdout();
    assert!(out.contains("--build-arg"), "{out}");
    assert!(out.contains("--build-context"), "{out}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = Dir::new("unknown_flag_is_a_usage_error");
    let err = dir.command().args(["build", "--no-such-flag", "."]).assert_exit(2);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn bad_output_spec_is_a_usage_error() {
    let dir = Dir::new("bad_output_spec_is_a_usage_error");
    let err = dir.command().args(["build", "--output", "type=floppy,dest=x", "."]).assert_exit(2);
    assert!(err.contains("floppy"), "{err}");
}

#[test]
fn addr_reports_daemon_unavailable() {
    let dir = Dir::new("addr_reports_daemon_unavailable");
    dir.write_file("Dockerfile", "FROM scratch\n");
    let out = dir.command().args(["build", "--addr", "unix:///run/hoistd.sock", "."]).assert_err();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("daemon"), "{err}");
}

/// The "rawjson events" section of docs/cli.md.
fn rawjson_doc_section() -> String {
    let path = workspace_root().join("docs/cli.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let start = doc.find("### rawjson events").expect("docs/cli.md has a rawjson events section");
    let rest = &doc[start + 3..];
    rest[..rest.find("\n### ").unwrap_or(rest.len())].to_string()
}

/// Every `kind`, solver `type` and field name on the rawjson lines of `stderr`, as
/// "kind", "kind/type" and "field" entries.
fn rawjson_vocabulary(stderr: &str, into: &mut BTreeSet<String>) {
    for line in stderr.lines() {
        let Ok(serde_json::Value::Object(v)) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let kind = v["kind"].as_str().unwrap_or_else(|| panic!("a rawjson line without kind: {line}"));
        into.insert(kind.to_string());
        let fields = match v.get("event") {
            Some(serde_json::Value::Object(event)) => {
                let ty = event["type"].as_str().unwrap_or_else(|| panic!("a solver event without type: {line}"));
                into.insert(format!("{kind}/{ty}"));
                event.clone()
            }
            _ => v.clone(),
        };
        into.extend(fields.keys().filter(|k| *k != "kind" && *k != "type" && *k != "event").cloned());
    }
}

#[test]
fn rawjson_events_are_documented() {
    let dir = Dir::new("rawjson_events_are_documented");
    dir.write_file("file.txt", "x\n");
    let mut seen = BTreeSet::new();
    // A build with a build-check warning, a step with output, a copy and an export; then the
    // same again (cached steps); then a failing build (vertex-failed, failure-report).
    let good = "FROM busybox as base\nCOPY file.txt /\nRUN echo out && echo err >&2\n";
    for name in ["one", "two"] {
        let out = build_cmd(&dir, good)
            .arg("-o")
            .arg(format!("type=oci,dest={}", out_path(&dir, format!("{name}.tar")).display()))
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        rawjson_vocabulary(&stderr, &mut seen);
    }
    let out = build_cmd(&dir, "FROM busybox\nRUN echo failing && exit 4\n").output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    rawjson_vocabulary(&stderr, &mut seen);

    let expected = [
        "frontend",
        "warning",
        "exported",
        "failure-report",
        "solver/vertex-explained",
        "solver/vertex-started",
        "solver/vertex-completed",
        "solver/vertex-cached",
        "solver/vertex-failed",
        "solver/log",
    ];
    for kind in expected {
        assert!(seen.contains(kind), "no {kind} event in these builds: {seen:?}");
    }
    let doc = rawjson_doc_section();
    for word in &seen {
        let last = word.rsplit('/').next().unwrap_or(word);
        assert!(doc.contains(&format!("`{last}`")), "docs/cli.md's rawjson events table lacks `{last}` ({word})");
    }
}
