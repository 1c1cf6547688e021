//! Go apps: `go mod download` from `go.mod`/`go.sum` alone, then one static binary built from
//! the whole module; the Go version from go.mod's `toolchain` or `go` line. The run image holds
//! only the binary.

use std::collections::BTreeMap;

use super::{env, major_minor, present, Draft};
use crate::plan::{CacheMount, Decision, Layer, Step};
use crate::tree::SourceTree;
use crate::Error;

pub(super) const LOOKED_FOR: &str = "go.mod";

/// The Go version used when go.mod names none.
const DEFAULT_VERSION: &str = "1.23";

pub(super) fn detect(tree: &dyn SourceTree) -> Option<String> {
    present(tree, &["go.mod"])
}

pub(super) fn draft(tree: &dyn SourceTree) -> Result<Draft, Error> {
    let go_mod = tree.read_text("go.mod").unwrap_or_default();
    let module = directive(&go_mod, "module").ok_or_else(|| Error::Manifest {
        file: "go.mod".into(),
        message: "no module line (want `module example.com/app`)".into(),
    })?;
    let mut decisions = Vec::new();
    let version = go_version(&go_mod, &mut decisions);
    let binary_name = binary_name(&module);
    decisions.push(Decision::new(
        "binary",
        format!("/app/bin/{binary_name}"),
        format!("go.mod module {module}"),
    ));
    let binary = format!("/app/bin/{binary_name}");

    let mut inputs = vec!["go.mod".to_string()];
    if tree.has_file("go.sum") {
        inputs.push("go.sum".into());
    }
    let module_cache = CacheMount::new("/go/pkg/mod", "go-mod");
    let steps = vec![
        Step {
            name: "download modules".into(),
            after: None,
            inputs,
            files: Vec::new(),
            commands: vec!["go mod download".into()],
            env: BTreeMap::new(),
            cache_mounts: vec![module_cache.clone()],
            network: "host".into(),
        },
        Step {
            name: "build".into(),
            after: Some("download modules".into()),
            inputs: vec![".".into()],
            files: Vec::new(),
            commands: vec![format!("go build -trimpath -ldflags=-s -o {binary} .")],
            env: env([("CGO_ENABLED", "0")]),
            cache_mounts: vec![
                module_cache,
                CacheMount::new("/root/.cache/go-build", "go-build"),
            ],
            network: "host".into(),
        },
    ];
    Ok(Draft {
        decisions,
        builder_image: Some(format!("golang:{version}-bookworm")),
        run_image: "debian:bookworm-slim".into(),
        steps,
        layers: Vec::new(),
        source_excludes: Vec::new(),
        app: Layer::from_step("build", &binary),
        env: BTreeMap::new(),
        path: vec!["/app/bin".into()],
        ports: Vec::new(),
        default_start: Some((binary, "go.mod module (the built binary)".into())),
        start_looked_for: "Procfile, the built binary",
        start_example: "/app/bin/server",
    })
}

/// The argument of the first `NAME ARG` line of go.mod.
fn directive(go_mod: &str, name: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let line = line.split("//").next().unwrap_or("").trim();
        let rest = line.strip_prefix(name)?;
        rest.starts_with([' ', '\t'])
            .then(|| rest.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
}

fn go_version(go_mod: &str, decisions: &mut Vec<Decision>) -> String {
    if let Some(toolchain) = directive(go_mod, "toolchain") {
        if let Some(v) = toolchain.strip_prefix("go").and_then(major_minor) {
            decisions.push(Decision::new(
                "go-version",
                &v,
                format!("go.mod toolchain {toolchain}"),
            ));
            return v;
        }
    }
    if let Some(go) = directive(go_mod, "go") {
        if let Some(v) = major_minor(&go) {
            decisions.push(Decision::new("go-version", &v, format!("go.mod go {go}")));
            return v;
        }
    }
    decisions.push(Decision::new(
        "go-version",
        DEFAULT_VERSION,
        "default (no go line in go.mod)",
    ));
    DEFAULT_VERSION.to_string()
}

/// The binary's name: the module path's last element (a `/vN` major suffix skipped).
fn binary_name(module: &str) -> String {
    let mut parts = module.rsplit('/');
    let mut last = parts.next().unwrap_or("app");
    let is_major =
        |s: &str| s.len() > 1 && s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit());
    if is_major(last) {
        last = parts.next().unwrap_or(last);
    }
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        "app".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mod_directives() {
        let m = "module example.com/shop/v2 // the shop\n\ngo 1.22.3\ntoolchain go1.23.1\n";
        assert_eq!(
            directive(m, "module").as_deref(),
            Some("example.com/shop/v2")
        );
        assert_eq!(directive(m, "go").as_deref(), Some("1.22.3"));
        assert_eq!(binary_name("example.com/shop/v2"), "shop");
        assert_eq!(binary_name("hello"), "hello");
        let mut d = Vec::new();
        assert_eq!(go_version(m, &mut d), "1.23");
        assert_eq!(d[0].reason, "go.mod toolchain go1.23.1");
    }
}
