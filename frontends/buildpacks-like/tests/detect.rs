//! Detection: which provider a tree gets, why, and the errors for trees nothing recognizes.

use hoist_buildpacks::{make_plan, Error, MemTree, Plan, Settings};

fn plan(tree: &MemTree) -> Plan {
    make_plan(tree, &Settings::default()).unwrap_or_else(|e| panic!("no plan: {e}"))
}

fn decision<'a>(plan: &'a Plan, what: &str) -> Vec<(&'a str, &'a str)> {
    plan.decisions
        .iter()
        .filter(|d| d.decision == what)
        .map(|d| (d.value.as_str(), d.reason.as_str()))
        .collect()
}

#[test]
fn python_from_requirements_txt() {
    let tree = MemTree::new()
        .with("requirements.txt", "flask\n")
        .with("app.py", "");
    let p = plan(&tree);
    assert_eq!(p.provider, "python");
    let provider = decision(&p, "provider");
    assert_eq!(provider[0].0, "python");
    assert!(
        provider[0]
            .1
            .starts_with("requirements.txt (first match in the default order"),
        "{provider:?}"
    );
    assert_eq!(
        decision(&p, "package-manager"),
        [("pip", "requirements.txt")]
    );
    assert_eq!(p.start.command, "python app.py");
}

#[test]
fn python_version_sources_in_order() {
    let base = MemTree::new()
        .with("requirements.txt", "")
        .with("main.py", "");
    let p = plan(
        &base
            .clone()
            .with(".python-version", "3.10.4\n")
            .with("runtime.txt", "python-3.9.1"),
    );
    assert_eq!(
        decision(&p, "python-version"),
        [("3.10", ".python-version")]
    );
    assert_eq!(p.builder_image.as_deref(), Some("python:3.10-bookworm"));
    assert_eq!(p.run_image, "python:3.10-slim-bookworm");
    let p = plan(&base.clone().with("runtime.txt", "python-3.9.1\n"));
    assert_eq!(decision(&p, "python-version"), [("3.9", "runtime.txt")]);
    let p = plan(&base);
    assert_eq!(decision(&p, "python-version")[0].0, "3.12");
}

#[test]
fn python_lock_files_pick_the_package_manager() {
    let pyproject =
        "[project]\nname = \"x\"\ndependencies = [\"a\"]\n[project.scripts]\nx = \"x:main\"\n";
    let uv = plan(
        &MemTree::new()
            .with("pyproject.toml", pyproject)
            .with("uv.lock", ""),
    );
    assert_eq!(decision(&uv, "package-manager"), [("uv", "uv.lock")]);
    assert_eq!(uv.steps[0].inputs, ["pyproject.toml", "uv.lock"]);
    assert_eq!(
        uv.start.command,
        "python -c 'import sys; from x import main; sys.exit(main())'"
    );
    let poetry = plan(
        &MemTree::new()
            .with("pyproject.toml", pyproject)
            .with("poetry.lock", ""),
    );
    assert_eq!(
        decision(&poetry, "package-manager"),
        [("poetry", "poetry.lock")]
    );
    let lock = plan(
        &MemTree::new()
            .with("requirements.lock", "a==1\n")
            .with("requirements.txt", "a\n")
            .with("app.py", ""),
    );
    assert_eq!(
        decision(&lock, "package-manager"),
        [("pip", "requirements.lock")]
    );
    let bare = plan(&MemTree::new().with("pyproject.toml", pyproject));
    assert_eq!(bare.steps[0].files[0].contents, "a\n");
}

#[test]
fn node_from_package_json_with_each_lock_file() {
    let pkg = r#"{"name": "a", "engines": {"node": "^20.3"}, "scripts": {"start": "node s.js"}}"#;
    for (lock, manager) in [
        ("package-lock.json", "npm"),
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
    ] {
        let p = plan(&MemTree::new().with("package.json", pkg).with(lock, ""));
        assert_eq!(p.provider, "node");
        assert_eq!(decision(&p, "package-manager"), [(manager, lock)]);
        assert_eq!(p.steps[0].inputs, ["package.json", lock]);
        assert_eq!(
            decision(&p, "node-version"),
            [("20", "package.json engines.node \"^20.3\"")]
        );
        assert_eq!(p.start.command, "node s.js");
    }
    let p = plan(
        &MemTree::new()
            .with("package.json", r#"{"main": "m.js"}"#)
            .with(".nvmrc", "v18.1.0\n"),
    );
    assert_eq!(decision(&p, "node-version"), [("18", ".nvmrc")]);
    assert_eq!(
        decision(&p, "package-manager"),
        [("npm", "no lock file (npm install)")]
    );
    assert_eq!(p.start.command, "node m.js");
}

#[test]
fn go_from_go_mod() {
    let p = plan(
        &MemTree::new()
            .with("go.mod", "module example.com/api/v3\n\ngo 1.21\n")
            .with("main.go", ""),
    );
    assert_eq!(p.provider, "go");
    assert_eq!(decision(&p, "go-version"), [("1.21", "go.mod go 1.21")]);
    assert_eq!(p.start.command, "/app/bin/api");
    assert_eq!(p.steps[0].inputs, ["go.mod"]);
    assert_eq!(p.app.from, "build");
}

#[test]
fn static_sites_from_index_html_or_public() {
    let p = plan(&MemTree::new().with("index.html", ""));
    assert_eq!(p.provider, "static");
    assert!(p.start.command.ends_with("-h /app"), "{}", p.start.command);
    assert!(p.builder_image.is_none());
    let p = plan(&MemTree::new().with("public/index.html", ""));
    assert_eq!(p.provider, "static");
    assert!(
        p.start.command.ends_with("-h /app/public"),
        "{}",
        p.start.command
    );
    // A public/ directory without an index page is not a site.
    let err = make_plan(
        &MemTree::new().with("public/a.css", ""),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NothingDetected { .. }), "{err}");
}

#[test]
fn procfile_apps_start_web_then_worker_then_first() {
    let p = plan(&MemTree::new().with("Procfile", "clock: ./c\nworker: ./w\nweb: ./s\n"));
    assert_eq!(p.provider, "procfile");
    assert_eq!(
        (p.start.process.as_str(), p.start.command.as_str()),
        ("web", "./s")
    );
    let p = plan(&MemTree::new().with("Procfile", "clock: ./c\nworker: ./w\n"));
    assert_eq!(p.start.process, "worker");
    let p = plan(&MemTree::new().with("Procfile", "clock: ./c\nother: ./o\n"));
    assert_eq!(p.start.process, "clock");
    let p = plan(&MemTree::new().with("start.sh", "#!/bin/sh\n"));
    assert_eq!(p.start.command, "./start.sh");
}

#[test]
fn a_python_app_with_a_package_json_for_assets_is_python() {
    let tree = MemTree::new()
        .with("requirements.txt", "django\n")
        .with("manage.py", "")
        .with("package.json", r#"{"scripts": {"build": "esbuild"}}"#);
    let p = plan(&tree);
    assert_eq!(p.provider, "python");
    assert_eq!(
        decision(&p, "also-matched"),
        [("node", "package.json; not used: python comes first")]
    );
}

#[test]
fn the_order_can_be_overridden() {
    let tree = MemTree::new()
        .with("requirements.txt", "")
        .with("app.py", "")
        .with("package.json", r#"{"scripts": {"start": "node i.js"}}"#);
    let by_arg = Settings {
        providers: Some(vec!["node".into(), "python".into()]),
        ..Settings::default()
    };
    let p = make_plan(&tree, &by_arg).unwrap();
    assert_eq!(p.provider, "node");
    assert!(
        decision(&p, "provider")[0]
            .1
            .contains("build-arg BP_PROVIDERS: node, python"),
        "{:?}",
        p.decisions
    );

    let toml = "[[io.buildpacks.group]]\nid = \"heroku/nodejs\"\n";
    let p = plan(&tree.clone().with("project.toml", toml));
    assert_eq!(p.provider, "node");
    // Only the listed providers are tried.
    assert!(decision(&p, "also-matched").is_empty(), "{:?}", p.decisions);

    let bad = Settings {
        providers: Some(vec!["ruby".into()]),
        ..Settings::default()
    };
    let err = make_plan(&tree, &bad).unwrap_err().to_string();
    assert_eq!(err, "unknown provider \"ruby\" in build-arg BP_PROVIDERS (known: python, node, go, static, procfile)");
}

#[test]
fn an_empty_tree_lists_what_was_looked_for() {
    let err = make_plan(&MemTree::new(), &Settings::default())
        .unwrap_err()
        .to_string();
    eqnice(
        "the build context is empty; looked for, in order:\n\
         \x20 python: requirements.txt, requirements.lock, pyproject.toml, uv.lock, poetry.lock\n\
         \x20 node: package.json\n\
         \x20 go: go.mod\n\
         \x20 static: index.html, public/index.html\n\
         \x20 procfile: Procfile, start.sh\n\
         add one of these files, or build with a Dockerfile (-f PATH or --frontend dockerfile)",
        &err,
    );
}

#[test]
fn an_unrecognized_tree_says_what_it_holds() {
    let tree = MemTree::new().with("notes.txt", "").with("src/a.rb", "");
    let err = make_plan(&tree, &Settings::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("no provider recognized the build context (it holds: notes.txt, src/); looked for, in order:\n"), "{err}");
}

#[test]
fn a_missing_start_command_says_how_to_provide_one() {
    let tree = MemTree::new()
        .with("requirements.txt", "")
        .with("lib.py", "");
    let err = make_plan(&tree, &Settings::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no start command for this python app (looked for: Procfile, [project.scripts] in \
         pyproject.toml, app.py, main.py, manage.py); add a Procfile with a line such as \
         `web: python app.py`, or pass --build-arg BP_START_COMMAND='python app.py'"
    );
    let with_start = Settings {
        start_command: Some("python lib.py".into()),
        ..Settings::default()
    };
    let p = make_plan(&tree, &with_start).unwrap();
    assert_eq!(
        decision(&p, "start"),
        [("python lib.py", "build-arg BP_START_COMMAND")]
    );
}

#[test]
fn bp_process_picks_a_procfile_process() {
    let tree = MemTree::new().with("Procfile", "web: ./s\nworker: ./w\n");
    let s = Settings {
        process: Some("worker".into()),
        ..Settings::default()
    };
    assert_eq!(make_plan(&tree, &s).unwrap().start.command, "./w");
    let s = Settings {
        process: Some("cron".into()),
        ..Settings::default()
    };
    let err = make_plan(&tree, &s).unwrap_err().to_string();
    assert_eq!(
        err,
        "BP_PROCESS=\"cron\" is not a process type of the Procfile (it defines: web, worker)"
    );
}

#[test]
fn bad_manifests_name_the_file() {
    let err = make_plan(
        &MemTree::new().with("package.json", "{"),
        &Settings::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("package.json: "), "{err}");
    let err = make_plan(
        &MemTree::new().with("go.mod", "go 1.22\n"),
        &Settings::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "go.mod: no module line (want `module example.com/app`)"
    );
    let err = make_plan(
        &MemTree::new().with("Procfile", "web ./s\n"),
        &Settings::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(err, "Procfile:1: want NAME: COMMAND");
}

#[test]
fn dependency_steps_copy_only_manifests_and_caches_are_mounts() {
    let trees = [
        MemTree::new()
            .with("requirements.txt", "")
            .with("app.py", ""),
        MemTree::new()
            .with("package.json", r#"{"main": "a.js"}"#)
            .with("package-lock.json", "{}"),
        MemTree::new().with("go.mod", "module m\n"),
    ];
    for tree in trees {
        let p = plan(&tree);
        let deps = &p.steps[0];
        assert!(!deps.inputs.iter().any(|i| i == "."), "{deps:?}");
        assert!(!deps.cache_mounts.is_empty(), "{deps:?}");
        assert!(
            deps.commands.iter().all(|c| !c.contains("cache")),
            "{deps:?}"
        );
        assert_eq!(p.user, "1000:1000");
    }
}

fn eqnice(expected: &str, got: &str) {
    assert!(expected == got, "expected:\n{expected}\ngot:\n{got}");
}
