//! `hoist du` and `hoist prune` on a real state directory: what they report and remove, that a
//! build after a prune still works (re-running exactly what was removed), and that a prune
//! started while another process builds on the same state directory waits and breaks nothing.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    build_cmd, build_oci, du_sized_sum, entries_of_kind, out_path, unpack_oci_archive, Dir,
};

/// A RUN writing 256 KiB of random data (so its layer has a known, non-trivial size).
const DOCKERFILE: &str = "FROM busybox\n\
    RUN head -c 262144 /dev/urandom > /blob.bin\n\
    COPY a.txt /a.txt\n";

/// `hoist du --format json` of `dir`'s state directory.
fn du(dir: &Dir) -> Value {
    let out = dir.command().args(["du", "--format", "json"]).stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("du printed no JSON ({e}):\n{out}"))
}

/// The items of `kind` in a du document.
fn items<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    entries_of_kind(doc, "items", kind)
}

/// `hoist prune -f --json ARGS`: the report.
fn prune(dir: &Dir, args: &[&str]) -> Value {
    let out = dir
        .command()
        .args(["prune", "-f", "--json"])
        .args(args)
        .stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("prune printed no JSON ({e}):\n{out}"))
}

fn removed_of_kind(report: &Value, kind: &str) -> usize {
    report["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .filter(|i| i["kind"] == kind)
        .count()
}

#[test]
fn du_reports_records_snapshots_and_blobs_with_sizes() {
    let dir = Dir::new("du_reports_records_snapshots_and_blobs_with_sizes");
    dir.write_file("a.txt", "A\n");
    build_oci(&dir, "one", DOCKERFILE, &[]);
    let doc = du(&dir);
    assert!(!items(&doc, "cache-record").is_empty(), "{doc:#}");
    let snapshots = items(&doc, "snapshot");
    assert!(
        snapshots.iter().any(|s| s["description"] == "image layer"),
        "the busybox layer is listed: {doc:#}"
    );
    let run_layer = snapshots.iter().find(|s| {
        s["size"]
            .as_u64()
            .is_some_and(|n| (262_144..262_144 + 65_536).contains(&n))
    });
    assert!(
        run_layer.is_some(),
        "a layer holding the 256 KiB the RUN wrote: {doc:#}"
    );
    assert!(!items(&doc, "blob").is_empty(), "{doc:#}");
    let sum = du_sized_sum(&doc);
    assert_eq!(doc["total"].as_u64(), Some(sum), "{doc:#}");
    assert!(
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["in_use"] == false),
        "nothing runs now"
    );

    // The table form names every kind and the totals.
    let table = dir.command().args(["du", "--verbose"]).stdout();
    for needle in [
        "cache-record",
        "snapshot",
        "blob",
        "cache-mount",
        "Reclaimable:",
        "Total:",
        "image layer",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from:\n{table}");
    }
}

#[test]
fn prune_removes_step_results_keeps_base_images_and_rebuild_reruns() {
    let dir = Dir::new("prune_removes_step_results_keeps_base_images_and_rebuild_reruns");
    dir.write_file("a.txt", "A\n");
    build_oci(&dir, "one", DOCKERFILE, &[]);
    let report = prune(&dir, &[]);
    assert!(removed_of_kind(&report, "cache-record") >= 2, "{report:#}");
    assert!(
        removed_of_kind(&report, "snapshot") >= 2,
        "RUN and COPY layers: {report:#}"
    );
    assert!(
        report["reclaimed"].as_u64().unwrap() >= 262_144,
        "{report:#}"
    );

    let after = du(&dir);
    let snapshots = items(&after, "snapshot");
    assert!(!snapshots.is_empty(), "{after:#}");
    assert!(
        snapshots.iter().all(|s| s["description"] == "image layer"),
        "only base-image layers stay without --all: {after:#}"
    );

    let (archive, steps) = build_oci(&dir, "two", DOCKERFILE, &[]);
    assert_eq!(steps.executed_matching("RUN head").len(), 1, "{steps:#?}");
    assert_eq!(steps.executed_matching("COPY a.txt").len(), 1, "{steps:#?}");
    assert_eq!(
        steps.reasons_matching("RUN head"),
        ["cache-missing"],
        "a plain prune keeps the explain records: the rerun is explained by the prune"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(
        fs::metadata(rootfs.join("blob.bin")).unwrap().len(),
        262_144
    );
    assert_eq!(fs::read_to_string(rootfs.join("a.txt")).unwrap(), "A\n");
}

#[test]
fn prune_all_empties_the_cache_and_builds_still_work() {
    let dir = Dir::new("prune_all_empties_the_cache_and_builds_still_work");
    dir.write_file("a.txt", "A\n");
    build_oci(
        &dir,
        "one",
        "FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/x\nCOPY a.txt /\n",
        &[],
    );
    assert_eq!(items(&du(&dir), "cache-mount").len(), 1);
    let report = prune(&dir, &["--all"]);
    assert!(removed_of_kind(&report, "blob") >= 1, "{report:#}");
    assert_eq!(removed_of_kind(&report, "cache-mount"), 1, "{report:#}");
    let after = du(&dir);
    for kind in ["cache-record", "snapshot", "cache-mount"] {
        assert!(
            items(&after, kind).is_empty(),
            "{kind} left after prune --all: {after:#}"
        );
    }
    assert!(
        items(&after, "blob")
            .iter()
            .all(|b| b["description"] != "unreferenced blob"),
        "{after:#}"
    );
    let (_, steps) = build_oci(&dir, "two", DOCKERFILE, &[]);
    assert_eq!(steps.executed_matching("RUN head").len(), 1, "{steps:#?}");
    assert_eq!(
        steps.reasons_matching("RUN head"),
        ["first-build"],
        "prune --all removes the explain records too"
    );
}

#[test]
fn prune_until_keeps_what_was_used_recently() {
    let dir = Dir::new("prune_until_keeps_what_was_used_recently");
    dir.write_file("a.txt", "A\n");
    build_oci(&dir, "one", DOCKERFILE, &[]);
    let report = prune(&dir, &["--all", "--filter", "until=1h"]);
    assert_eq!(report["removed"].as_array().unwrap().len(), 0, "{report:#}");
    let (_, steps) = build_oci(&dir, "two", DOCKERFILE, &[]);
    assert!(steps.executed_matching("RUN").is_empty(), "{steps:#?}");

    // Unknown filters are usage errors.
    let err = dir
        .command()
        .args(["prune", "-f", "--filter", "label=x"])
        .assert_exit(2);
    assert!(err.contains("unknown prune filter"), "{err}");
}

#[test]
fn prune_keep_storage_removes_least_recently_used_first() {
    let dir = Dir::new("prune_keep_storage_removes_least_recently_used_first");
    let old = "FROM busybox\nRUN head -c 1048576 /dev/urandom > /old.bin\n";
    let new = "FROM busybox\nRUN head -c 1048576 /dev/urandom > /new.bin\n";
    build_oci(&dir, "old", old, &[]);
    // Last-used times have a resolution of one second.
    std::thread::sleep(Duration::from_millis(1100));
    build_oci(&dir, "new", new, &[]);
    let total = du(&dir)["total"].as_u64().unwrap();
    // Room for everything but about half of one step's layer: the older step must go.
    let keep = total - 512 * 1024;
    prune(&dir, &["--keep-storage", &keep.to_string()]);
    assert!(du(&dir)["total"].as_u64().unwrap() <= keep);
    let (_, steps) = build_oci(&dir, "new-again", new, &[]);
    assert!(
        steps.executed_matching("RUN").is_empty(),
        "the recent step stays: {steps:#?}"
    );
    let (_, steps) = build_oci(&dir, "old-again", old, &[]);
    assert_eq!(
        steps.executed_matching("RUN head").len(),
        1,
        "the older step went: {steps:#?}"
    );
}

#[test]
fn prune_while_another_process_builds_waits_and_breaks_nothing() {
    let dir = Dir::new("prune_while_another_process_builds_waits_and_breaks_nothing");
    dir.write_file("a.txt", "A\n");
    let slow = "FROM busybox\nRUN head -c 65536 /dev/urandom > /r.bin && sleep 2\nCOPY a.txt /\n";
    let archive = out_path(&dir, "slow.tar");
    let mut cmd = build_cmd(&dir, slow);
    cmd.arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()));
    let mut child = cmd
        .cmd()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hoist build");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("vertex-started") && line.contains("sleep 2") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
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
    let report = prune(&dir, &["--all"]);
    let status = child.wait().expect("wait for hoist build");
    let log = reader.join().expect("reader");
    assert!(status.success(), "the build failed next to a prune:\n{log}");
    // The prune ran after the build released the state directory: the build's image is intact.
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(fs::metadata(rootfs.join("r.bin")).unwrap().len(), 65_536);
    assert!(removed_of_kind(&report, "cache-record") >= 1, "{report:#}");
    let (_, steps) = build_oci(&dir, "again", slow, &[]);
    assert_eq!(steps.executed_matching("sleep 2").len(), 1, "{steps:#?}");
}
