//! Dockerfile builds end to end: multi-stage with COPY --from and --target, build arguments,
//! the `--call` subrequests, cache mounts and secrets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::util::{
    build_cmd, build_cmd_progress, build_oci, build_rootfs, out_path, skopeo_inspect,
    unpack_oci_archive, Dir,
};

/// A three-stage Dockerfile: `builder` makes an artifact, `broken` fails, the last copies from
/// `builder` only.
const MULTI: &str = "# builder makes the artifact\n\
    FROM busybox AS builder\n\
    RUN mkdir /out && echo built > /out/artifact && chmod 0750 /out/artifact\n\
    \n\
    FROM busybox AS broken\n\
    RUN echo broken-stage-ran && exit 7\n\
    \n\
    FROM busybox AS final\n\
    COPY --from=builder /out/artifact /app/artifact\n\
    COPY --from=0 /out /app/out\n\
    RUN cat /app/artifact > /app/seen\n";

#[test]
fn multi_stage_copy_from_skips_unused_stages() {
    let dir = Dir::new("multi_stage_copy_from_skips_unused_stages");
    let (archive, steps) = build_oci(&dir, "img", MULTI, &[]);
    assert_eq!(
        steps.executed_matching("exit 7"),
        Vec::<&str>::new(),
        "an unused stage ran: {steps:#?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(
        fs::read_to_string(rootfs.join("app/artifact")).unwrap(),
        "built\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("app/out/artifact")).unwrap(),
        "built\n"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("app/seen")).unwrap(),
        "built\n"
    );
    let mode = fs::metadata(rootfs.join("app/artifact"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
    // The builder stage's own files are not in the final image.
    assert!(!rootfs.join("out").exists());
    // Base layer + two COPY + one RUN.
    let info = skopeo_inspect(&format!("oci-archive:{}", archive.display()), &[]);
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(4), "{info:#}");
}

#[test]
fn target_builds_only_up_to_that_stage() {
    let dir = Dir::new("target_builds_only_up_to_that_stage");
    let dockerfile = "FROM busybox AS good\n\
        RUN echo good > /good\n\
        FROM good AS bad\n\
        RUN echo bad-stage-ran && exit 9\n";
    let (archive, steps) = build_oci(&dir, "good", dockerfile, &["--target", "good"]);
    assert_eq!(
        steps.executed_matching("exit 9"),
        Vec::<&str>::new(),
        "{steps:#?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    assert_eq!(fs::read_to_string(rootfs.join("good")).unwrap(), "good\n");
    // Without --target the last stage is built, and fails.
    let out = build_cmd(&dir, dockerfile)
        .args(["-o", "type=oci,dest=bad.tar"])
        .output();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A target stage chosen in the middle of the file is built from the named stage it uses.
    let (archive, _) = build_oci(&dir, "final-target", MULTI, &["--target", "builder"]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u2"));
    assert_eq!(
        fs::read_to_string(rootfs.join("out/artifact")).unwrap(),
        "built\n"
    );
    assert!(!rootfs.join("app").exists());
}

#[test]
fn build_args_reach_from_run_and_env_but_not_the_config() {
    let dir = Dir::new("build_args_reach_from_run_and_env_but_not_the_config");
    let dockerfile = "ARG BASE=busybox\n\
        FROM ${BASE}\n\
        ARG GREETING=hello\n\
        ARG UNSET\n\
        RUN echo \"$GREETING-${UNSET:-none}\" > /greeting\n\
        ENV FROM_ARG=$GREETING\n";
    let (archive, _) = build_oci(&dir, "default", dockerfile, &[]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u1"));
    assert_eq!(
        fs::read_to_string(rootfs.join("greeting")).unwrap(),
        "hello-none\n"
    );

    let (archive, _) = build_oci(
        &dir,
        "given",
        dockerfile,
        &["--build-arg", "GREETING=bye", "--build-arg", "UNSET=x"],
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u2"));
    assert_eq!(
        fs::read_to_string(rootfs.join("greeting")).unwrap(),
        "bye-x\n"
    );
    let config = skopeo_inspect(
        &format!("oci-archive:{}", archive.display()),
        &["--config", "--raw"],
    );
    let env = config["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(env.contains(&json!("FROM_ARG=bye")), "{config:#}");
    assert!(
        !env.iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("GREETING="))),
        "ARG leaked into Env: {config:#}"
    );
}

/// Runs `--call MODE` with rawjson progress (JSON on stdout) and returns the parsed result.
fn call_json(dir: &Dir, dockerfile: &str, mode: &str, extra: &[&str]) -> serde_json::Value {
    let out = build_cmd(dir, dockerfile)
        .args(["--call", mode])
        .args(extra)
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--call {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--call {mode} printed no JSON ({e}):\n{stdout}"))
}

#[test]
fn call_targets_lists_the_stages() {
    let dir = Dir::new("call_targets_lists_the_stages");
    let result = call_json(&dir, MULTI, "targets", &[]);
    let names: Vec<&str> = result["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["builder", "broken", "final"], "{result:#}");
    let targets = result["targets"].as_array().unwrap();
    assert_eq!(targets[2]["default"], true, "{result:#}");
    assert_eq!(targets[0]["default"], false, "{result:#}");
    assert_eq!(
        targets[0]["description"], "makes the artifact",
        "{result:#}"
    );

    // Plain text for people: nothing is built.
    let out = build_cmd_progress(&dir, MULTI, "plain")
        .args(["--call", "targets"])
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("TARGET")
            && stdout.contains("builder")
            && stdout.contains("final (default)"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("exit 7") && !stderr.contains("RUN mkdir"),
        "--call targets ran steps:\n{stderr}"
    );
}

#[test]
fn call_outline_lists_args_and_secrets() {
    let dir = Dir::new("call_outline_lists_args_and_secrets");
    let dockerfile = "ARG VERSION=1.2\n\
        FROM busybox AS app\n\
        ARG GREETING=hello\n\
        ARG NODEFAULT\n\
        RUN --mount=type=secret,id=token,required=true cat /run/secrets/token\n";
    let result = call_json(&dir, dockerfile, "outline", &[]);
    assert_eq!(result["name"], "app", "{result:#}");
    let args: Vec<(String, serde_json::Value)> = result["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_string(),
                a["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        args,
        vec![
            ("VERSION".to_string(), json!("1.2")),
            ("GREETING".to_string(), json!("hello")),
            ("NODEFAULT".to_string(), serde_json::Value::Null),
        ],
        "{result:#}"
    );
    assert_eq!(
        result["secrets"],
        json!([{"name": "token", "required": true}]),
        "{result:#}"
    );
    let out = build_cmd_progress(&dir, dockerfile, "plain")
        .args(["--call", "outline"])
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("GREETING") && stdout.contains("hello") && stdout.contains("VERSION"),
        "{stdout}"
    );
}

#[test]
fn call_outline_output_is_stable_json_and_text() {
    let dir = Dir::new("call_outline_output_is_stable_json_and_text");
    let dockerfile = "ARG VERSION=1.2\n\
        FROM busybox AS app\n\
        ARG GREETING=hello\n\
        ARG NODEFAULT\n\
        RUN --mount=type=secret,id=token,required=true --mount=type=ssh cat /run/secrets/token\n";
    let outline = |progress: &str| {
        let out = build_cmd_progress(&dir, dockerfile, progress)
            .args(["--call", "outline"])
            .output();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 outline")
    };
    let json = outline("rawjson");
    let expected = json!({
        "name": "app",
        "args": [
            {"name": "VERSION", "value": "1.2", "location": {"file": "Dockerfile", "start": 1}},
            {"name": "GREETING", "value": "hello", "location": {"file": "Dockerfile", "start": 3}},
            {"name": "NODEFAULT", "value": null, "location": {"file": "Dockerfile", "start": 4}},
        ],
        "secrets": [{"name": "token", "required": true}],
        "ssh": [{"name": "default"}],
        "sources": ["Dockerfile"],
    });
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("outline JSON");
    assert_eq!(parsed, expected, "{json}");
    let text = outline("plain");
    assert_eq!(text, "ARG\tDEFAULT\nVERSION\t1.2\nGREETING\thello\nNODEFAULT\t\n");
    // Stable: the same bytes on every run (keys sorted, nothing time- or path-dependent).
    for _ in 0..2 {
        assert_eq!(outline("rawjson"), json);
        assert_eq!(outline("plain"), text);
    }
}

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_the_image() {
    let dir = Dir::new("cache_mount_persists_across_builds_and_stays_out_of_the_image");
    let dockerfile = "FROM busybox\n\
        ARG N\n\
        RUN --mount=type=cache,target=/cache echo \"run $N\" >> /cache/log && cat /cache/log > /seen\n";
    let (rootfs, _) = build_rootfs(&dir, "one", dockerfile, &["--build-arg", "N=1"]);
    assert_eq!(fs::read_to_string(rootfs.join("seen")).unwrap(), "run 1\n");
    assert!(
        !rootfs.join("cache/log").exists(),
        "the cache mount's content is in the image"
    );
    let (rootfs, _) = build_rootfs(&dir, "two", dockerfile, &["--build-arg", "N=2"]);
    assert_eq!(
        fs::read_to_string(rootfs.join("seen")).unwrap(),
        "run 1\nrun 2\n"
    );
    // Another id is another cache.
    let other = dockerfile.replace("target=/cache", "target=/cache,id=other");
    let (rootfs, _) = build_rootfs(&dir, "three", &other, &["--build-arg", "N=3"]);
    assert_eq!(fs::read_to_string(rootfs.join("seen")).unwrap(), "run 3\n");
}

/// True if `needle` occurs in any blob of the OCI archive (gzip layers decompressed).
fn archive_contains(archive: &Path, scratch: &Path, needle: &[u8]) -> bool {
    let layout = scratch.join("scan");
    fs::create_dir_all(&layout).unwrap();
    tar::Archive::new(fs::File::open(archive).unwrap())
        .unpack(&layout)
        .unwrap();
    let mut stack = vec![layout];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut bytes = fs::read(&path).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                    &mut plain,
                )
                .unwrap();
                bytes = plain;
            }
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
    }
    false
}

#[test]
fn secret_mount_is_readable_but_never_in_the_image_or_cache_key() {
    let dir = Dir::new("secret_mount_is_readable_but_never_in_the_image_or_cache_key");
    let secret = dir.path().parent().unwrap().join("token");
    fs::write(&secret, "s3cr3t-value-one").unwrap();
    let dockerfile = "FROM busybox\n\
        RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /len \\\n\
         && tr a-z A-Z < /run/secrets/token > /transformed\n";
    let flag = format!("id=token,src={}", secret.display());
    let (archive, _) = build_oci(&dir, "one", dockerfile, &["--secret", &flag]);
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u1"));
    assert_eq!(fs::read_to_string(rootfs.join("len")).unwrap().trim(), "16");
    assert_eq!(
        fs::read_to_string(rootfs.join("transformed")).unwrap(),
        "S3CR3T-VALUE-ONE"
    );
    assert!(
        !rootfs.join("run/secrets/token").exists(),
        "the secret file is in the image"
    );
    assert!(
        !archive_contains(&archive, &out_path(&dir, "scan1"), b"s3cr3t-value"),
        "the secret's bytes are in the image"
    );

    // Its value is not part of the cache key: a new value reuses the step.
    fs::write(&secret, "s3cr3t-value-two").unwrap();
    let (_, steps) = build_oci(&dir, "two", dockerfile, &["--secret", &flag]);
    assert_eq!(
        steps.executed_matching("RUN"),
        Vec::<&str>::new(),
        "{steps:#?}"
    );
}

#[test]
fn required_secret_missing_fails_the_step() {
    let dir = Dir::new("required_secret_missing_fails_the_step");
    let dockerfile =
        "FROM busybox\nRUN --mount=type=secret,id=absent,required=true cat /run/secrets/absent\n";
    let out = build_cmd(&dir, dockerfile)
        .args(["-o", "type=oci,dest=x.tar"])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("absent"), "{stderr}");
}

/// A Dockerfile breaking five build-check rules, one RUN marking whether anything ran.
const LINTED: &str = "FROM busybox as Builder\n\
    ENV GREETING=$UNDEFINED_THING\n\
    MAINTAINER someone@example.com\n\
    RUN echo lint-step-ran > /ran\n\
    CMD echo hi\n";

/// The (rule, line) of each violation in [`LINTED`], in line order.
const LINTED_RULES: [(&str, u64); 5] = [
    ("StageNameCasing", 1),
    ("FromAsCasing", 1),
    ("UndefinedVar", 2),
    ("MaintainerDeprecated", 3),
    ("JSONArgsRecommended", 5),
];

/// Runs `--call check` with `progress` and returns (exit code, stdout, stderr).
fn call_check(dir: &Dir, dockerfile: &str, progress: &str) -> (Option<i32>, String, String) {
    let out = build_cmd_progress(dir, dockerfile, progress)
        .args(["--call", "check"])
        .output();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn call_check_prints_each_warning_at_its_line_and_fails_as_buildx_does() {
    let dir = Dir::new("call_check_prints_each_warning_at_its_line_and_fails_as_buildx_does");
    let (code, stdout, stderr) = call_check(&dir, LINTED, "plain");
    // buildx ends `--call check` with 1 when it found violations (BuildKit's
    // `result.statuscode`); a build with the same warnings succeeds (below).
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = LINTED.lines().collect();
    for (rule, line) in LINTED_RULES {
        let heading = stdout
            .find(&format!(
                "WARNING: {rule} - https://docs.docker.com/go/dockerfile/rule/"
            ))
            .unwrap_or_else(|| panic!("no {rule} warning:\n{stdout}"));
        let after = &stdout[heading..];
        let location = format!("Dockerfile:{line}\n");
        let source = format!("{line:>4} | >>> {}", lines[line as usize - 1]);
        let block = &after[..after.find("\n\n").unwrap_or(after.len())];
        assert!(
            block.contains(&location),
            "{rule}: no {location:?}:\n{block}"
        );
        assert!(block.contains(&source), "{rule}: no {source:?}:\n{block}");
    }
    assert!(
        stdout.contains("Check complete, 5 warnings have been found!"),
        "{stdout}"
    );
    assert!(!stdout.contains("ERROR"), "{stdout}");
    assert!(
        !stderr.contains("lint-step-ran"),
        "--call check ran a step:\n{stderr}"
    );

    // JSON with rawjson progress: the same violations, in line order.
    let (code, stdout, stderr) = call_check(&dir, LINTED, "rawjson");
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--call check printed no JSON ({e}):\n{stdout}"));
    let found: Vec<(&str, u64)> = result["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| {
            (
                w["rule"].as_str().unwrap_or_default(),
                w["location"]["start"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(found, LINTED_RULES, "{result:#}");
    assert!(result.get("error").is_none(), "{result:#}");
    assert_eq!(
        result["warnings"][2]["detail"],
        "Usage of undefined variable '$UNDEFINED_THING'"
    );

    // A clean Dockerfile passes.
    let clean = "FROM busybox AS builder\nENV GREETING=hello\nCMD [\"echo\", \"hi\"]\n";
    let (code, stdout, stderr) = call_check(&dir, clean, "plain");
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "Check complete, no warnings found.\n");
}

#[test]
fn build_with_check_warnings_succeeds_and_check_error_true_fails_it() {
    let dir = Dir::new("build_with_check_warnings_succeeds_and_check_error_true_fails_it");
    // A plain build reports the warnings with their lines, and succeeds.
    let out = build_cmd_progress(&dir, LINTED, "plain")
        .arg("-o")
        .arg(format!(
            "type=oci,dest={}",
            out_path(&dir, "warned.tar").display()
        ))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for (rule, line) in LINTED_RULES {
        let warning = stderr
            .lines()
            .find(|l| l.starts_with(&format!("WARNING: {rule}: ")))
            .unwrap_or_else(|| panic!("no {rule} warning:\n{stderr}"));
        assert!(
            warning.ends_with(&format!("(Dockerfile:{line})")),
            "{warning}"
        );
    }
    let rootfs = unpack_oci_archive(&out_path(&dir, "warned.tar"), &out_path(&dir, "u"));
    assert_eq!(
        fs::read_to_string(rootfs.join("ran")).unwrap(),
        "lint-step-ran\n"
    );

    // rawjson carries them as `warning` events.
    let out = build_cmd(&dir, LINTED).output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warnings: Vec<(String, u64)> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "warning")
        .map(|v| {
            let rule = v["rule"].as_str().unwrap_or_default().to_string();
            (
                rule,
                v["location"]["ranges"][0]["start"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = LINTED_RULES
        .iter()
        .map(|(r, l)| (r.to_string(), *l))
        .collect();
    assert_eq!(warnings, expected, "{stderr}");

    // `# check=error=true`: the same Dockerfile fails before any step runs, at the first
    // violation, naming every rule; `--call check` fails too.
    let strict = format!("# check=error=true\n{LINTED}");
    let dest = out_path(&dir, "strict.tar");
    let out = build_cmd_progress(&dir, &strict, "plain")
        .arg("-o")
        .arg(format!("type=oci,dest={}", dest.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!dest.exists(), "a failed build wrote its output");
    let error = stderr
        .lines()
        .rfind(|l| l.starts_with("ERROR:"))
        .unwrap_or_else(|| panic!("no ERROR:\n{stderr}"));
    assert_eq!(
        error,
        "ERROR: Dockerfile:2: lint violation found for rules: FromAsCasing, JSONArgsRecommended, \
         MaintainerDeprecated, StageNameCasing, UndefinedVar"
    );
    assert!(stderr.contains(">>> FROM busybox as Builder"), "{stderr}");
    let ran = stderr
        .lines()
        .any(|l| l.starts_with('#') && l.contains("RUN echo lint-step-ran"));
    assert!(!ran, "a step ran:\n{stderr}");
    let (code, stdout, stderr) = call_check(&dir, &strict, "plain");
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("ERROR: lint violation found for rules: FromAsCasing"),
        "{stdout}"
    );
    let (code, stdout, _) = call_check(&dir, &strict, "rawjson");
    assert_eq!(code, Some(1), "{stdout}");
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("UndefinedVar")),
        "{result:#}"
    );

    // Skipping every violated rule makes error=true harmless.
    let skip = "# check=skip=StageNameCasing,FromAsCasing,UndefinedVar,MaintainerDeprecated,JSONArgsRecommended;error=true\n";
    let skipped = format!("{skip}{LINTED}");
    let (code, stdout, stderr) = call_check(&dir, &skipped, "plain");
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "Check complete, no warnings found.\n");
    build_oci(&dir, "skipped", &skipped, &[]);
}

/// Seconds since the epoch of a rawjson `at` (`{"secs_since_epoch", "nanos_since_epoch"}`).
fn event_time(at: &serde_json::Value) -> f64 {
    let secs = at["secs_since_epoch"]
        .as_u64()
        .unwrap_or_else(|| panic!("no secs_since_epoch in {at}"));
    let nanos = at["nanos_since_epoch"]
        .as_u64()
        .unwrap_or_else(|| panic!("no nanos_since_epoch in {at}"));
    secs as f64 + nanos as f64 / 1e9
}

/// The (start, completion) times of the one executed step whose name contains `needle`.
fn run_interval(stderr: &str, needle: &str) -> (f64, f64) {
    let (mut started, mut completed) = (Vec::new(), Vec::new());
    for line in stderr.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let event = &v["event"];
        if v["kind"] != "solver" || !event["name"].as_str().is_some_and(|n| n.contains(needle)) {
            continue;
        }
        match event["type"].as_str() {
            Some("vertex-started") => started.push(event_time(&event["at"])),
            Some("vertex-completed") => completed.push(event_time(&event["at"])),
            _ => {}
        }
    }
    assert_eq!(
        (started.len(), completed.len()),
        (1, 1),
        "{needle}: not started and completed once:\n{stderr}"
    );
    (started[0], completed[0])
}

#[test]
fn independent_stages_run_in_parallel() {
    let dir = Dir::new("independent_stages_run_in_parallel");
    let stages = ["one", "two", "three", "four"];
    let mut dockerfile = String::new();
    for stage in stages {
        dockerfile.push_str(&format!(
            "FROM busybox AS {stage}\nRUN sleep 1 && echo {stage} > /{stage}\n"
        ));
    }
    dockerfile.push_str("FROM busybox\n");
    for stage in stages {
        dockerfile.push_str(&format!("COPY --from={stage} /{stage} /{stage}\n"));
    }
    let archive = out_path(&dir, "img.tar");
    let out = build_cmd(&dir, &dockerfile)
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let intervals: Vec<(f64, f64)> = stages
        .iter()
        .map(|stage| run_interval(&stderr, &format!("RUN sleep 1 && echo {stage} ")))
        .collect();
    for (stage, (start, end)) in stages.iter().zip(&intervals) {
        assert!(
            end - start >= 0.9,
            "{stage}: the step took {}s, under its sleep",
            end - start
        );
    }
    // All four were running at once: the last to start started before the first to finish did.
    let latest_start = intervals.iter().map(|i| i.0).fold(f64::MIN, f64::max);
    let earliest_end = intervals.iter().map(|i| i.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "the sleep steps ran one after another: (start, end) = {intervals:?}"
    );
    let rootfs = unpack_oci_archive(&archive, &out_path(&dir, "u"));
    for stage in stages {
        assert_eq!(
            fs::read_to_string(rootfs.join(stage)).unwrap(),
            format!("{stage}\n")
        );
    }
}
