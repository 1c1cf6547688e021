//! The Python SDK (sdk/python): its unit tests, and the example TOML frontend built into a
//! component with componentize-py and run by `hoist build` on real runc and overlayfs, the image
//! checked from the outside with umoci and skopeo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::util::*;

const TOML_FRONTEND: &str = "sdk/python/examples/toml-frontend";

/// `$HOIST_FIXTURES/python`, else /var/cache/hoist/fixtures/python: built components (by input
/// hash) and their compiled forms, kept across test runs.
fn python_fixtures() -> PathBuf {
    std::env::var_os("HOIST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hoist/fixtures"))
        .join("python")
}

/// The TOML example frontend as a component, built once per process by `sdk/python/build.sh`
/// (which caches by input hash under [`python_fixtures`]).
fn toml_frontend() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let cache = python_fixtures();
        let out = cache.join("out").join("tests-toml-frontend.wasm");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let root = workspace_root();
        run_ok(
            Command::new("bash")
                .current_dir(&root)
                .arg(root.join("sdk/python/build.sh"))
                .arg(TOML_FRONTEND)
                .arg("-o")
                .arg(&out)
                .env("HOIST_PY_CACHE", &cache),
        );
        out
    })
}

/// A Dir holding the example project (hoist.toml and greet.sh from the example's demo/).
fn demo_project(name: &str) -> Dir {
    let dir = Dir::new(name);
    let demo = workspace_root().join(TOML_FRONTEND).join("demo");
    for file in ["hoist.toml", "greet.sh"] {
        dir.write_file(file, std::fs::read(demo.join(file)).unwrap());
    }
    dir
}

/// `hoist build . -f FILE` with the busybox fixture as the named context `busybox`.
fn toml_build(dir: &Dir, file: &str) -> TestCommand {
    let mut cmd = dir.command();
    cmd.args(["build", ".", "-f", file, "--progress=plain", "--state-dir"])
        .arg(dir.state_dir())
        .arg("--build-context")
        .arg(format!("busybox={}", busybox_image().oci_layout_ref()));
    cmd
}

/// Compiling the ~18 MB Python component takes the debug-built CLI about a minute: the
/// compiled forms hoist writes (`STATE/frontends/<component sha256>-<engine hash>.cwasm`, the
/// name covering the wasmtime version and settings) are kept in the fixtures and copied into a
/// test's state directory before its first build, and back after it.
fn sync_compiled(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).unwrap();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let dest = to.join(&name);
        if name.to_string_lossy().ends_with(".cwasm") && !dest.exists() {
            let tmp = to.join(format!(
                ".{}.tmp-{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            if std::fs::copy(entry.path(), &tmp).is_ok() {
                let _ = std::fs::rename(&tmp, &dest);
            }
        }
    }
}

fn ran_tests(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn python_sdk_unit_tests_pass() {
    let root = workspace_root();
    let sdk = root.join("sdk/python");
    run_ok(
        Command::new("bash")
            .arg(sdk.join("build.sh"))
            .arg("--bindings"),
    );
    let path = format!(
        "{}:{}:{}",
        sdk.join("build/bindings").display(),
        sdk.join("src").display(),
        root.join(TOML_FRONTEND).display()
    );
    for dir in [sdk.join("tests"), root.join(TOML_FRONTEND)] {
        let out = Command::new("python3")
            .args(["-m", "unittest", "discover", "-s"])
            .arg(&dir)
            .env("PYTHONPATH", &path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "unittest in {}:\n{stderr}",
            dir.display()
        );
        assert!(
            ran_tests(&stderr) >= 5,
            "too few tests ran in {}:\n{stderr}",
            dir.display()
        );
    }
}

/// The published frontend: pushed with `hoist frontend push`, selected by the build file's
/// first line, and also run from the file (`--frontend file:`). One state directory
/// throughout, so the component is compiled (or its compiled form seeded) once.
#[test]
fn toml_frontend_pushed_and_selected_by_syntax_builds_an_image() {
    let reg = Registry::start();
    let dir = demo_project("toml_frontend_pushed_and_selected_by_syntax_builds_an_image");
    // Shared with the frontend host tests (host/frontend/tests/python_sdk.rs): same wasmtime,
    // same settings, same file names.
    let compiled = python_fixtures().join("compiled");
    sync_compiled(&compiled, &dir.state_dir().join("frontends"));
    let reference = format!("{}/hoist/toml-frontend:1", reg.host());
    let pushed = dir
        .command()
        .args(["frontend", "push"])
        .arg(toml_frontend())
        .arg(&reference)
        .stdout();
    assert!(pushed.contains("hoist:frontend@1.0.0"), "{pushed}");

    // The artifact's config lists what the component imports: the gateway and nothing of WASI.
    let inspected = dir
        .command()
        .args(["frontend", "inspect", "--json", &reference])
        .stdout();
    let info: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let mut imports: Vec<&str> = info["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    imports.sort_unstable();
    assert_eq!(
        imports,
        ["hoist:frontend/gateway@1.0.0", "hoist:frontend/types@1.0.0"],
        "{info:#}"
    );

    let text = dir.read("hoist.toml");
    dir.write_file("hoist.toml", format!("# syntax={reference}\n{text}"));
    let archive = out_path(&dir, "app.tar");
    let meta = out_path(&dir, "meta.json");
    toml_build(&dir, "hoist.toml")
        .args(["--build-arg", "GREETING=bonjour", "--metadata-file"])
        .arg(&meta)
        .arg("-o")
        .arg(format!("type=oci,dest={}", archive.display()))
        .stdout();
    sync_compiled(&dir.state_dir().join("frontends"), &compiled);
    check_demo_image(&dir, &archive, "bonjour");
    let meta: serde_json::Value = serde_json::from_str(&dir.read(&meta)).unwrap();
    assert_eq!(
        meta["hoist.frontend.digest"], info["component"]["digest"],
        "{meta:#}"
    );

    // Errors come back located in the build file (the syntax line shifts them by one).
    let broken = dir
        .read("hoist.toml")
        .replace("from = \"build\"", "from = \"biuld\"");
    dir.write_file("broken.toml", broken);
    let out = toml_build(&dir, "broken.toml").assert_err();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.toml:23")
            && stderr.contains("copy from unknown stage 'biuld' (stages before it: build)"),
        "{stderr}"
    );

    // The same component from the file: the default greeting this time.
    let from_file = out_path(&dir, "from-file.tar");
    toml_build(&dir, "hoist.toml")
        .arg(format!("--frontend=file:{}", toml_frontend().display()))
        .arg("-o")
        .arg(format!("type=oci,dest={}", from_file.display()))
        .stdout();
    check_demo_image(&dir, &from_file, "hello");
}

/// The demo image: files made by both stages, the config from `[image]` and the base image.
fn check_demo_image(dir: &Dir, archive: &Path, greeting: &str) {
    let stem = archive.file_stem().unwrap().to_string_lossy();
    let rootfs = unpack_oci_archive(archive, &out_path(dir, format!("{stem}-unpacked")));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/greeting.txt")).unwrap(),
        format!("{greeting} from a Python frontend\n")
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/VERSION")).unwrap(),
        format!("1.0 ({greeting})\n")
    );
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "the base image's files are there"
    );
    assert!(
        !rootfs.join("src").exists(),
        "the build stage is not in the image"
    );
    let config = skopeo_inspect(&format!("oci-archive:{}", archive.display()), &["--config"]);
    let c = &config["config"];
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["cat", "/app/greeting.txt"]),
        "{config:#}"
    );
    assert_eq!(c["WorkingDir"], "/app", "{config:#}");
    assert_eq!(c["Labels"]["org.example.frontend"], "toml", "{config:#}");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"APP_MODE=demo"), "{env:?}");
    assert!(
        env.iter().any(|e| e.starts_with("PATH=")),
        "base image PATH kept: {env:?}"
    );
}
