//! The buildpacks-like frontend end to end: source trees with no Dockerfile become images
//! that run. Apps are built on the busybox fixture (a Procfile app) and on a Python base made
//! locally from Debian's packages (tests/fixtures/make-debian-python.sh, cached under
//! /var/cache/hoist/fixtures), then run with runc from a umoci bundle.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::{
    busybox_image, out_path, run_ok, skopeo_inspect, unpack_oci_archive, workspace_root, Dir,
    Steps, TestCommand,
};

/// `hoist build .` in `dir` with rawjson progress and no -f or --frontend: the context has no
/// Dockerfile, so the buildpacks frontend is picked.
fn bp_build(dir: &Dir) -> TestCommand {
    let mut cmd = dir.command();
    cmd.args(["build", ".", "--progress=rawjson", "--state-dir"])
        .arg(dir.state_dir());
    cmd
}

/// Runs `cmd` with an OCI archive output at `<dir>/<name>.tar`; panics with the steps on failure.
fn build_archive(dir: &Dir, mut cmd: TestCommand, name: &str) -> (PathBuf, Steps, String) {
    let archive = out_path(dir, format!("{name}.tar"));
    let out = cmd
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let steps = Steps::parse(&stderr);
    assert!(
        out.status.success(),
        "build failed ({}):\n{}",
        out.status,
        steps.readable(&stderr)
    );
    (archive, steps, stderr)
}

/// Unpacks the image with umoci and runs its entrypoint with runc (as the image's user, in its
/// working directory, with its environment); returns stdout.
fn run_image(dir: &Dir, archive: &Path, name: &str) -> String {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let rootfs = unpack_oci_archive(archive, &out_path(dir, format!("{name}-unpacked")));
    let bundle = rootfs.parent().expect("bundle dir").to_path_buf();
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).expect("config.json")).expect("json");
    config["process"]["terminal"] = false.into();
    // Run with the image's own environment, as `docker run` does: umoci's generated spec sets
    // HOME from the rootfs's /etc/passwd even when the image config's Env sets it.
    let image_env = image_config(archive)["config"]["Env"].clone();
    config["process"]["env"] = image_env;
    fs::write(&config_path, serde_json::to_vec(&config).expect("json")).expect("write config.json");
    let id = format!(
        "hoist-bp-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    );
    let out = run_ok(
        Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&id),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image config of an OCI archive, as skopeo reads it.
fn image_config(archive: &Path) -> serde_json::Value {
    skopeo_inspect(&format!("oci-archive:{}", archive.display()), &["--config"])
}

#[test]
fn procfile_app_on_busybox_runs_as_non_root() {
    let dir = Dir::new("bp_procfile_app");
    dir.write_file(
        "Procfile",
        "worker: echo worker\nweb: echo \"web on $HOME as $(id -u):$(id -g) in $(pwd)\"; cat message.txt\n",
    );
    dir.write_file("message.txt", "hello from the app\n");
    dir.write_file(
        "project.toml",
        "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"secret.txt\"]\n",
    );
    dir.write_file("secret.txt", "must not ship\n");
    let mut cmd = bp_build(&dir);
    cmd.arg("--build-context")
        .arg(format!("busybox={}", busybox_image().oci_layout_ref()))
        .args(["--build-arg", "BP_RUN_IMAGE=busybox"]);
    let (archive, _, stderr) = build_archive(&dir, cmd, "app");
    assert!(
        stderr.contains("building with the built-in buildpacks frontend"),
        "the progress output does not say which frontend was chosen:\n{stderr}"
    );
    assert!(
        stderr.contains("buildpacks: provider = procfile (Procfile"),
        "{stderr}"
    );

    let output = run_image(&dir, &archive, "app");
    assert_eq!(
        output,
        "web on /app as 1000:1000 in /app\nhello from the app\n"
    );

    let config = image_config(&archive);
    let c = &config["config"];
    assert_eq!(c["User"], "1000:1000", "{config:#}");
    assert_eq!(c["WorkingDir"], "/app", "{config:#}");
    assert!(
        c["Env"].as_array().expect("Env").iter().any(|e| e == "HOME=/app"),
        "{config:#}"
    );
    let entrypoint: Vec<&str> = c["Entrypoint"]
        .as_array()
        .expect("Entrypoint")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(entrypoint[..2], ["/bin/sh", "-c"], "{config:#}");
    let labels = &c["Labels"];
    let plan: serde_json::Value = serde_json::from_str(
        labels["io.hoist.buildpacks.plan"]
            .as_str()
            .expect("plan label"),
    )
    .expect("plan json");
    assert_eq!(plan["provider"], "procfile");
    assert_eq!(plan["start"]["process"], "web");
    let run_image = labels["io.hoist.buildpacks.run-image"]
        .as_str()
        .expect("run-image label");
    assert!(
        run_image.starts_with("oci-layout://") && run_image.contains("@sha256:"),
        "{run_image}"
    );

    let rootfs = out_path(&dir, "app-unpacked/bundle/rootfs");
    assert!(
        !rootfs.join("app/secret.txt").exists(),
        "project.toml exclude was ignored"
    );
    assert!(
        rootfs.join("app/message.txt").is_file(),
        "the app layer is missing"
    );
}

#[test]
fn plan_call_prints_the_plan_without_building() {
    let app = workspace_root().join("tests/fixtures/buildpacks/python-pip");
    let want =
        fs::read_to_string(workspace_root().join("tests/fixtures/buildpacks/python-pip.plan.json"))
            .expect("the python-pip snapshot");
    let dir = Dir::new("bp_plan_call");
    let got = dir
        .command()
        .args([
            "build",
            "--call",
            "plan",
            "--frontend",
            "buildpacks",
            "--state-dir",
        ])
        .arg(dir.state_dir())
        .arg(&app)
        .stdout();
    assert!(
        got == want,
        "--call plan differs from the snapshot:\n{}",
        crate::util::line_diff(&want, &got)
    );
    // Nothing was built: no image was resolved, no step ran.
    let out = dir
        .command()
        .args(["build", "--call=plan", "--progress=rawjson", "--state-dir"])
        .arg(dir.state_dir())
        .arg(&app)
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let steps = Steps::parse(&stderr);
    assert!(
        steps.executed_matching("[buildpacks").is_empty(),
        "{}",
        steps.readable(&stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--call plan prints JSON");
    assert_eq!(json["provider"], "python");
}

#[test]
fn an_empty_context_lists_what_was_looked_for() {
    let dir = Dir::new("bp_empty_context");
    dir.mkdir("ctx");
    let out = dir
        .command()
        .args(["build", "ctx", "--progress=plain", "--state-dir"])
        .arg(dir.state_dir())
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the build context is empty; looked for, in order:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("python: requirements.txt, requirements.lock, pyproject.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("procfile: Procfile, start.sh"), "{stderr}");
}

#[test]
fn a_missing_start_command_says_how_to_provide_one() {
    let dir = Dir::new("bp_missing_start");
    dir.write_file("requirements.txt", "\n");
    dir.write_file("lib.py", "X = 1\n");
    let out = bp_build(&dir).output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no start command for this python app"),
        "{stderr}"
    );
    assert!(stderr.contains("BP_START_COMMAND"), "{stderr}");
}

/// The Python base image, made once per machine (a few minutes the first time).
fn python_base() -> PathBuf {
    let layout = PathBuf::from("/var/cache/hoist/fixtures/debian-python");
    if !layout.join("index.json").is_file() {
        run_ok(
            Command::new(workspace_root().join("tests/fixtures/make-debian-python.sh"))
                .arg(&layout),
        );
    }
    layout
}

#[test]
fn python_app_runs_and_an_app_change_reuses_the_dependency_step() {
    let base = python_base();
    let dir = Dir::new("bp_python_app");
    dir.write_file(
        "requirements.txt",
        "# no third-party packages: the tests have no PyPI\n",
    );
    dir.write_file(
        "app.py",
        "import os, sys\nprint(f\"v1 prefix={sys.prefix} uid={os.getuid()} cwd={os.getcwd()}\")\n",
    );
    let build = |name: &str| {
        let mut cmd = bp_build(&dir);
        cmd.arg("--build-context")
            .arg(format!(
                "python-base=oci-layout://{}:bookworm",
                base.display()
            ))
            .args([
                "--build-arg",
                "BP_BUILDER_IMAGE=python-base",
                "--build-arg",
                "BP_RUN_IMAGE=python-base",
            ]);
        build_archive(&dir, cmd, name)
    };
    let (first, steps, stderr) = build("v1");
    assert_eq!(
        steps
            .executed_matching("install dependencies: python3 -m venv")
            .len(),
        1,
        "{}",
        steps.readable(&stderr)
    );
    assert_eq!(
        run_image(&dir, &first, "v1"),
        "v1 prefix=/app/.venv uid=1000 cwd=/app\n"
    );
    let config = image_config(&first);
    assert!(
        config["config"]["Env"]
            .as_array()
            .expect("Env")
            .iter()
            .any(|e| e
                .as_str()
                .is_some_and(|e| e.starts_with("PATH=/app/.venv/bin:"))),
        "{config:#}"
    );

    // Only app code changes: the dependency step comes from the cache, the app layer is new.
    dir.write_file("app.py", "import sys\nprint(f\"v2 prefix={sys.prefix}\")\n");
    let (second, steps, stderr) = build("v2");
    assert!(
        steps.executed_matching("install dependencies").is_empty(),
        "{}",
        steps.readable(&stderr)
    );
    assert_eq!(
        steps
            .cached_matching("install dependencies: python3 -m venv")
            .len(),
        1,
        "{}",
        steps.readable(&stderr)
    );
    assert_eq!(
        steps.executed_matching("app: /app from context").len(),
        1,
        "{}",
        steps.readable(&stderr)
    );
    assert_eq!(run_image(&dir, &second, "v2"), "v2 prefix=/app/.venv\n");
}
