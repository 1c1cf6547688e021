//! Building guest frontends for tests and benchmarks (not used by the host at run time).
//!
//! Tests and benchmarks need real components: the SDK example and the misbehaving frontends
//! under `host/frontend/test-frontends/`. [`build_guest`] compiles a workspace package to
//! `wasm32-wasip2` with cargo once per process and returns the `.wasm` path. Recipe for other
//! crates' tests (e.g. the CLI's):
//!
//! ```no_run
//! let wasm = hoist_frontend_host::test_support::build_guest("hello-frontend").unwrap();
//! let bytes = std::fs::read(wasm).unwrap();
//! ```
//!
//! The wasm target directory is `$HOIST_WASM_TARGET_DIR`, else `$CARGO_TARGET_DIR/wasm`, else
//! `<workspace>/target/wasm`, so guest builds never contend with the host build's lock. Guests
//! are built without debug info (`CARGO_PROFILE_RELEASE_DEBUG=false`, `..._STRIP=debuginfo`).
//!
//! [`MemoryGateway`] runs a loaded frontend without an engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

mod memory_gateway;

pub use memory_gateway::MemoryGateway;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// The target directory guests are built in.
pub fn wasm_target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOIST_WASM_TARGET_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("wasm"),
        None => workspace_root().join("target").join("wasm"),
    }
}

/// Builds workspace package `package` (a `cdylib`) for `wasm32-wasip2` with the workspace's
/// `frontend` profile (as frontend authors are told to), once per process, and returns the path
/// of its `.wasm` component.
pub fn build_guest(package: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = built.get(package) {
        return r.clone();
    }
    let r = run_cargo(package);
    built.insert(package.to_string(), r.clone());
    r
}

fn run_cargo(package: &str) -> Result<PathBuf, String> {
    let target_dir = wasm_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--profile",
            "frontend",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|e| format!("running cargo for {package}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build of {package} for wasm32-wasip2 failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("frontend")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(format!(
            "cargo built {package} but {} is missing",
            wasm.display()
        ))
    }
}

/// The directory of cached Python frontend components: `$HOIST_FIXTURES/python`, else
/// `/var/cache/hoist/fixtures/python`.
pub fn python_cache_dir() -> PathBuf {
    std::env::var_os("HOIST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hoist/fixtures"))
        .join("python")
}

/// Builds the Python frontend in `app_dir` (relative to the workspace root, e.g.
/// `sdk/python/examples/hello`) with `sdk/python/build.sh`, once per process, and returns the
/// `.wasm` path. The script keys its cache ([`python_cache_dir`]) on the hash of every input,
/// so an unchanged frontend is compiled by componentize-py once per machine, not per test run;
/// it creates the componentize-py virtualenv when missing.
pub fn build_python_guest(app_dir: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = built.get(app_dir) {
        return r.clone();
    }
    let r = run_python_build(app_dir);
    built.insert(app_dir.to_string(), r.clone());
    r
}

fn run_python_build(app_dir: &str) -> Result<PathBuf, String> {
    let cache = python_cache_dir();
    let out_dir = cache.join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let name = app_dir.trim_end_matches('/').replace('/', "_");
    // build.sh renames a finished file into place, so concurrent test binaries writing the same
    // (identical) component never expose a partial one.
    let wasm = out_dir.join(format!("{name}.wasm"));
    let root = workspace_root();
    let out = Command::new("bash")
        .current_dir(&root)
        .arg(root.join("sdk/python/build.sh"))
        .arg(app_dir)
        .arg("-o")
        .arg(&wasm)
        .env("HOIST_PY_CACHE", &cache)
        .output()
        .map_err(|e| format!("running sdk/python/build.sh for {app_dir}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sdk/python/build.sh {app_dir} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(wasm)
}
