//! Plan snapshots: each example app under tests/fixtures/buildpacks/NAME/ has its plan in
//! NAME.plan.json (or its error in NAME.error.txt), compared exactly. After a deliberate
//! change, rewrite them with `HOIST_BLESS=1 cargo test -p hoist-buildpacks --test plans`.

use std::path::{Path, PathBuf};

use hoist_buildpacks::{make_plan, MemTree, Settings};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/buildpacks")
}

#[test]
fn every_example_app_matches_its_snapshot() {
    let bless = std::env::var_os("HOIST_BLESS").is_some();
    let mut apps: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/buildpacks")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    apps.sort();
    assert!(
        apps.len() >= 10,
        "expected the example apps, found {apps:?}"
    );
    let mut mismatches = Vec::new();
    for app in &apps {
        let name = app
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let tree = MemTree::from_dir(app).expect("read the app");
        let (file, got) = match make_plan(&tree, &Settings::default()) {
            Ok(plan) => (
                format!("{name}.plan.json"),
                format!("{}\n", plan.to_json_pretty()),
            ),
            Err(e) => (format!("{name}.error.txt"), format!("{e}\n")),
        };
        let path = fixtures().join(&file);
        if bless {
            std::fs::write(&path, &got).expect("write snapshot");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => {
                mismatches.push(format!("{file} differs:\n--- want\n{want}\n--- got\n{got}"))
            }
            Err(_) => mismatches.push(format!("{file} is missing; got:\n{got}")),
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
