//! Builds the built-in frontends for `wasm32-wasip2` with a nested cargo and embeds the
//! components, with the sha256 of each (`OUT_DIR/digests.rs`).
//!
//! The nested cargo uses its own target directory (under OUT_DIR) so it never waits on the lock
//! of the outer build's target directory. It builds with the workspace's `frontend` profile (no
//! DWARF, size-optimised): with the release profile's line tables the Dockerfile frontend was
//! 6.4 MB instead of 0.74, and every byte of it is mapped into hoist's binary and read by the
//! compiler.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// The frontends to embed: (package name, artifact file stem).
const FRONTENDS: &[(&str, &str)] = &[
    ("hoist-dockerfile", "hoist_dockerfile"),
    ("hoist-buildpacks", "hoist_buildpacks"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.join("../..");
    for watched in ["frontends/dockerfile", "frontends/buildpacks-like", "sdk", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out_dir.join("wasm-target");
    let mut digests = String::new();
    for (package, stem) in FRONTENDS {
        let wasm = build_component(&workspace, &target_dir, package, stem);
        let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()));
        let dest = out_dir.join(format!("{stem}.wasm"));
        std::fs::write(&dest, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
        let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        digests.push_str(&format!(
            "/// The sha256 of `{stem}.wasm`.\npub const {}_SHA256: &str = \"{digest}\";\n",
            stem.to_uppercase()
        ));
    }
    let dest = out_dir.join("digests.rs");
    std::fs::write(&dest, digests).unwrap_or_else(|e| panic!("write {}: {e}", dest.display()));
}

/// Runs `cargo build --profile frontend --target wasm32-wasip2 -p PACKAGE` and returns the
/// component path.
fn build_component(workspace: &Path, target_dir: &Path, package: &str, stem: &str) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--profile", "frontend", "--target", "wasm32-wasip2", "-p", package])
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .unwrap_or_else(|e| panic!("running cargo for {package}: {e}"));
    if !status.success() {
        panic!(
            "building the {package} frontend for wasm32-wasip2 failed \
             (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    target_dir.join("wasm32-wasip2/frontend").join(format!("{stem}.wasm"))
}
