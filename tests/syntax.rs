//! Frontends from registries: `hoist frontend push|pull|inspect`, `# syntax=` selection by tag
//! and by digest, tags moving, the built-in answering Docker's names offline, the policy,
//! chaining, and the errors a bad reference gets. Against a real `docker-registry`.

use std::fs;
use std::path::PathBuf;

use crate::util::{build_cmd, sha256_digest, unpack_oci_archive, Dir, Registry, Steps};

/// The SDK example frontend, compiled to a component once per test process.
fn hello_wasm() -> PathBuf {
    hoist_frontend_host::test_support::build_guest("hello-frontend")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A misbehaving test frontend (its `forward` mode chains to another frontend).
fn hostile_wasm() -> PathBuf {
    hoist_frontend_host::test_support::build_guest("hostile-frontend")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The built-in Dockerfile frontend's bytes, written to a file in `dir`.
fn dockerfile_wasm(dir: &Dir) -> PathBuf {
    dir.write_file("dockerfile.wasm", hoist_builtin_frontends::DOCKERFILE)
}

/// `hoist frontend push FILE REF`; returns the manifest digest it printed.
fn push(dir: &Dir, file: &PathBuf, reference: &str) -> String {
    let out = dir
        .command()
        .args(["frontend", "push"])
        .arg(file)
        .arg(reference)
        .stdout();
    assert!(
        out.contains(&format!("pushed {reference}@sha256:")),
        "{out}"
    );
    out.lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest line in {out}"))
        .to_string()
}

/// The metadata file of a build, as JSON.
fn metadata(dir: &Dir) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("meta.json")).expect("metadata file"))
        .expect("metadata JSON")
}

/// Builds `dockerfile` in `dir` with `extra` flags, writing `meta.json`; panics on failure.
fn build_ok(dir: &Dir, dockerfile: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let out = build_cmd(dir, dockerfile)
        .args(extra)
        .arg("--metadata-file")
        .arg(dir.join("meta.json"))
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "build failed:\n{dockerfile}\n{}",
        Steps::parse(&stderr).readable(&stderr)
    );
    (metadata(dir), stderr)
}

/// Builds `dockerfile` expecting failure; returns stderr.
fn build_err(dir: &Dir, dockerfile: &str, extra: &[&str]) -> String {
    let out = build_cmd(dir, dockerfile).args(extra).assert_err();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `frontend` progress events of a rawjson stream: (reference, digest).
fn frontend_events(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "frontend")
        .map(|v| {
            (
                v["reference"].as_str().unwrap_or("").to_string(),
                v["digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn push_inspect_pull_and_build_with_the_dockerfile_frontend_by_tag_and_digest() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_dockerfile_by_tag_and_digest");
    let wasm = dockerfile_wasm(&dir);
    let component = sha256_digest(hoist_builtin_frontends::DOCKERFILE);
    let reference = format!("{}/frontends/dockerfile:1", reg.host());
    let manifest = push(&dir, &wasm, &reference);

    let inspect = dir
        .command()
        .args(["frontend", "inspect", &reference])
        .stdout();
    assert!(
        inspect.contains(&format!("Digest:     {manifest}")),
        "{inspect}"
    );
    assert!(
        inspect.contains(&format!(
            "Component:  {component} ({} bytes, dockerfile.wasm)",
            hoist_builtin_frontends::DOCKERFILE.len()
        )),
        "{inspect}"
    );
    assert!(
        inspect.contains("World:      hoist:frontend@1.0.0"),
        "{inspect}"
    );
    assert!(
        inspect.contains("  hoist:frontend/builder@1.0.0")
            && inspect.contains("  hoist:frontend/gateway@1.0.0"),
        "{inspect}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &dir.command()
            .args(["frontend", "inspect", "--json", &reference])
            .stdout(),
    )
    .unwrap();
    assert_eq!(json["component"]["digest"], component.as_str());
    assert_eq!(json["worldVersion"], "1.0.0");

    dir.command()
        .args(["frontend", "pull", &reference, "-o"])
        .arg(dir.join("pulled.wasm"))
        .stdout();
    assert_eq!(
        fs::read(dir.join("pulled.wasm")).unwrap(),
        hoist_builtin_frontends::DOCKERFILE
    );

    let dockerfile = format!("# syntax={reference}\nFROM busybox\nRUN echo by-tag > /which\n");
    let (meta, stderr) = build_ok(&dir, &dockerfile, &[]);
    assert_eq!(meta["hoist.frontend.digest"], component.as_str());
    assert_eq!(
        meta["hoist.frontend.reference"],
        format!("{reference}@{manifest}").as_str()
    );
    assert_eq!(
        frontend_events(&stderr),
        [(format!("{reference}@{manifest}"), component.clone())]
    );

    let by_digest = format!("{}/frontends/dockerfile@{manifest}", reg.host());
    let dockerfile = format!("# syntax={by_digest}\nFROM busybox\nRUN echo by-digest > /which\n");
    let (meta, _) = build_ok(&dir, &dockerfile, &[]);
    assert_eq!(meta["hoist.frontend.reference"], by_digest.as_str());
    assert_eq!(meta["hoist.frontend.digest"], component.as_str());

    // Pulled once, kept by digest: the component is in the content store.
    assert!(dir
        .state_dir()
        .join("content/blobs/sha256")
        .join(component.trim_start_matches("sha256:"))
        .is_file());
}

#[test]
fn the_sdk_example_runs_end_to_end_and_a_moved_tag_is_used_next_build() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_sdk_example");
    let base = crate::util::busybox_image().push(&reg);
    let reference = format!("{}/frontends/hello:1", reg.host());
    let hello_manifest = push(&dir, &hello_wasm(), &reference);
    let hello_component = sha256_digest(&fs::read(hello_wasm()).unwrap());

    let dockerfile =
        format!("# syntax={reference}\nthis is not a Dockerfile: the hello frontend ignores it\n");
    let archive = dir.join("hello.tar");
    let (meta, stderr) = build_ok(
        &dir,
        &dockerfile,
        &[
            "--build-arg",
            &format!("BASE={base}"),
            "--build-arg",
            "GREETING=bonjour",
            "-o",
            &format!("type=oci,dest={}", archive.display()),
        ],
    );
    assert_eq!(meta["hoist.frontend.digest"], hello_component.as_str());
    assert_eq!(
        meta["hoist.frontend.reference"],
        format!("{reference}@{hello_manifest}").as_str()
    );
    assert!(
        Steps::parse(&stderr)
            .executed_matching("RUN echo built")
            .len()
            == 1,
        "{stderr}"
    );

    // The files and config the frontend produced.
    let rootfs = unpack_oci_archive(&archive, &dir.join("hello-unpacked"));
    let bundle = rootfs.parent().expect("the rootfs is in umoci's bundle");
    assert_eq!(
        fs::read_to_string(rootfs.join("app/greeting")).unwrap(),
        "bonjour\n"
    );
    assert_eq!(fs::read_to_string(rootfs.join("built")).unwrap(), "built\n");
    assert!(rootfs.join("bin/busybox").is_file());
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let env = config["process"]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "GREETING=bonjour"), "{config}");
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["cat", "/app/greeting"])
    );

    // A later build by the same tag asks the registry one thing about the frontend: does the
    // tag still name that manifest (HEAD)? No manifest body, config or component again.
    let args = ["--build-arg", &format!("BASE={base}")];
    let frontend_requests = |since: usize| -> Vec<String> {
        reg.requests()[since..]
            .iter()
            .filter(|r| r.contains("/frontends/hello/"))
            .cloned()
            .collect()
    };
    let before = reg.requests().len();
    let (meta, _) = build_ok(&dir, &dockerfile, &args);
    assert_eq!(meta["hoist.frontend.digest"], hello_component.as_str());
    assert_eq!(
        frontend_requests(before),
        ["HEAD /v2/frontends/hello/manifests/1"]
    );

    // Move the tag to another frontend build: offline keeps the last resolution without asking
    // the registry, then the next online build re-resolves the tag and uses the new one.
    let dockerfile_manifest = push(&dir, &dockerfile_wasm(&dir), &reference);
    let offline = [args[0], args[1], "--frontend-offline"];
    let before = reg.requests().len();
    let (meta, _) = build_ok(&dir, &dockerfile, &offline);
    assert_eq!(
        meta["hoist.frontend.digest"],
        hello_component.as_str(),
        "offline keeps the old resolution"
    );
    assert_eq!(frontend_requests(before), Vec::<String>::new(), "offline");
    let moved = format!("# syntax={reference}\nFROM busybox\nRUN echo moved > /which\n");
    let before = reg.requests().len();
    let (meta, _) = build_ok(&dir, &moved, &args);
    let asked = frontend_requests(before);
    assert!(
        asked.iter().any(|r| r == "GET /v2/frontends/hello/manifests/1")
            && asked.iter().any(|r| r.starts_with("GET /v2/frontends/hello/blobs/")),
        "a moved tag is resolved in full: {asked:?}"
    );
    assert_eq!(
        meta["hoist.frontend.reference"],
        format!("{reference}@{dockerfile_manifest}").as_str()
    );
    assert_eq!(
        meta["hoist.frontend.digest"],
        sha256_digest(hoist_builtin_frontends::DOCKERFILE).as_str()
    );
}

#[test]
fn dockers_dockerfile_names_and_overrides_use_the_builtin_without_network() {
    let dir = Dir::new("syntax_builtin_names");
    for first_line in [
        "# syntax=docker/dockerfile:1",
        "# syntax=docker.io/docker/dockerfile:1.7-labs",
        "",
    ] {
        let dockerfile = format!("{first_line}\nFROM busybox\nRUN true\n");
        let (meta, stderr) = build_ok(&dir, &dockerfile, &[]);
        assert_eq!(
            meta["hoist.frontend.reference"], "builtin:dockerfile",
            "{first_line}"
        );
        assert_eq!(frontend_events(&stderr)[0].0, "builtin:dockerfile");
    }
    // `//syntax=` is a directive BuildKit detects for languages with `//` comments: it picks the
    // built-in offline, whose parser then refuses the line as BuildKit's does (a Dockerfile
    // comment starts with `#`).
    let err = build_err(
        &dir,
        "//syntax=docker/dockerfile-upstream:master\nFROM busybox\n",
        &[],
    );
    assert_eq!(frontend_events(&err)[0].0, "builtin:dockerfile", "{err}");
    assert!(
        err.contains("Dockerfile:1") && err.contains("unknown instruction"),
        "{err}"
    );
    // The build args override the directive: an unreachable syntax is never contacted.
    let unreachable = "# syntax=127.0.0.1:1/nowhere/frontend:1\nFROM busybox\nRUN true\n";
    for arg in [
        "BUILDKIT_SYNTAX=docker/dockerfile:1",
        "HOIST_SYNTAX=docker/dockerfile:1",
    ] {
        let (meta, _) = build_ok(&dir, unreachable, &["--build-arg", arg]);
        assert_eq!(
            meta["hoist.frontend.reference"], "builtin:dockerfile",
            "{arg}"
        );
    }
    // `--frontend dockerfile.v0` is what buildx sends: as in BuildKit, that frontend follows
    // the directive, so the unreachable registry is named, with the directive's line.
    let err = build_err(&dir, unreachable, &["--frontend", "dockerfile.v0"]);
    assert!(
        err.contains("registry 127.0.0.1:1 is unreachable")
            && err.contains("syntax directive on line 1 of Dockerfile"),
        "{err}"
    );
    let (meta, _) = build_ok(
        &dir,
        unreachable,
        &[
            "--frontend",
            "gateway.v0",
            "--opt",
            "source=docker/dockerfile:1",
        ],
    );
    assert_eq!(meta["hoist.frontend.reference"], "builtin:dockerfile");
}

#[test]
fn bad_syntax_references_fail_clearly() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_errors");
    let image = crate::util::busybox_image().push(&reg);

    let err = build_err(&dir, &format!("# syntax={image}\nFROM busybox\n"), &[]);
    assert!(
        err.contains(&format!(
            "{image} is not a WebAssembly frontend: it is a container image"
        )),
        "{err}"
    );
    assert!(
        err.contains("syntax directive on line 1 of Dockerfile"),
        "{err}"
    );

    let err = build_err(
        &dir,
        "# syntax=127.0.0.1:1/nowhere/frontend:1\nFROM busybox\n",
        &[],
    );
    assert!(err.contains("registry 127.0.0.1:1 is unreachable"), "{err}");

    let err = build_err(
        &dir,
        &format!(
            "# syntax={}/frontends/none:missing\nFROM busybox\n",
            reg.host()
        ),
        &[],
    );
    assert!(err.contains("not found"), "{err}");

    // A frontend for hoist:frontend@2 (pushed raw, as another tool would): refused from its
    // config, before the component is downloaded.
    let future = fs::read(
        hoist_frontend_host::test_support::build_guest("future-frontend")
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap();
    let config = serde_json::json!({
        "created": "2026-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
        "layerDigests": [sha256_digest(&future)],
        "component": {"exports": ["hoist:frontend/builder@2.0.0"], "imports": ["hoist:frontend/gateway@2.0.0"]},
    });
    raw_push(
        &reg,
        "frontends/future",
        "2",
        &future,
        &serde_json::to_vec(&config).unwrap(),
        None,
    );
    let err = build_err(
        &dir,
        &format!("# syntax={}/frontends/future:2\nFROM busybox\n", reg.host()),
        &[],
    );
    assert!(
        err.contains("hoist:frontend@2.0.0") && err.contains("serves hoist:frontend@1.x"),
        "{err}"
    );
    let blob = dir
        .state_dir()
        .join("content/blobs/sha256")
        .join(sha256_digest(&future).trim_start_matches("sha256:"));
    assert!(!blob.exists(), "the refused component was downloaded");
}

#[test]
fn an_artifact_written_by_another_tool_loads() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_other_tool");
    // `wkg oci push` layout: no component section in the config, no title annotation.
    let bytes = hoist_builtin_frontends::DOCKERFILE;
    let config = serde_json::json!({
        "created": "2026-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip2",
        "layerDigests": [sha256_digest(bytes)],
    });
    raw_push(
        &reg,
        "other/tool",
        "v1",
        bytes,
        &serde_json::to_vec(&config).unwrap(),
        Some("application/vnd.wasm.component.v1+wasm"),
    );
    let inspect = dir
        .command()
        .args([
            "frontend",
            "inspect",
            &format!("{}/other/tool:v1", reg.host()),
        ])
        .stdout();
    assert!(inspect.contains("not listed in the config"), "{inspect}");
    let (meta, _) = build_ok(
        &dir,
        &format!(
            "# syntax={}/other/tool:v1\nFROM busybox\nRUN true\n",
            reg.host()
        ),
        &[],
    );
    assert_eq!(meta["hoist.frontend.digest"], sha256_digest(bytes).as_str());
}

#[test]
fn a_frontend_reads_an_intermediate_result_and_picks_the_next_step() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_reads_intermediate");
    let base = crate::util::busybox_image().push(&reg);
    let dest = dir.join("out");
    let frontend = format!("file:{}", hostile_wasm().display());
    let (_, stderr) = build_ok(
        &dir,
        "the hostile frontend does not read its build file\n",
        &[
            "--frontend",
            &frontend,
            "--opt",
            "mode=decide",
            "--opt",
            &format!("base={base}"),
            "-o",
            &format!("type=local,dest={}", dest.display()),
        ],
    );
    // The frontend read /choice from the evaluated probe step and built on what it said.
    assert_eq!(fs::read_to_string(dest.join("choice")).unwrap(), "second\n");
    assert_eq!(
        fs::read_to_string(dest.join("picked")).unwrap(),
        "picked second\n"
    );
    // The probe ran once: the final solve reused the evaluated result.
    let steps = Steps::parse(&stderr);
    assert_eq!(steps.executed_matching("probe:").len(), 1, "{steps:#?}");
    assert_eq!(
        steps.executed_matching("decided: RUN echo picked second").len(),
        1,
        "{steps:#?}"
    );
}

#[test]
fn the_policy_allows_listed_registries_and_digests_only() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_policy");
    let reference = format!("{}/frontends/dockerfile:1", reg.host());
    let manifest = push(&dir, &dockerfile_wasm(&dir), &reference);
    let dockerfile = format!("# syntax={reference}\nFROM busybox\nRUN true\n");

    let err = build_err(
        &dir,
        &dockerfile,
        &["--allow-frontend", "registry.example/team/*"],
    );
    assert!(err.contains("refused by the frontend policy"), "{err}");
    assert!(err.contains("repository registry.example/team/*"), "{err}");

    let out = build_cmd(&dir, &dockerfile)
        .env(
            "HOIST_ALLOW_FRONTENDS",
            "127.0.0.1:1,sha256:".to_string() + &"0".repeat(64),
        )
        .assert_err();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry 127.0.0.1:1") && err.contains("digest sha256:000"),
        "{err}"
    );

    for rule in [
        reg.host().to_string(),
        format!("{}/frontends", reg.host()),
        manifest.clone(),
    ] {
        let (meta, _) = build_ok(&dir, &dockerfile, &["--allow-frontend", &rule]);
        assert_eq!(
            meta["hoist.frontend.reference"],
            format!("{reference}@{manifest}").as_str(),
            "{rule}"
        );
    }
    // Built-ins always run.
    build_ok(
        &dir,
        "# syntax=docker/dockerfile:1\nFROM busybox\n",
        &["--allow-frontend", "registry.example"],
    );
}

#[test]
fn a_named_context_replaces_the_frontend() {
    let dir = Dir::new("syntax_named_context");
    let dev = dir.mkdir("dev-frontend");
    fs::write(
        dev.join("frontend.wasm"),
        hoist_builtin_frontends::DOCKERFILE,
    )
    .unwrap();
    // Nothing serves this reference: the context answers for it.
    let dockerfile = "# syntax=127.0.0.1:1/team/frontend:1\nFROM busybox\nRUN true\n";
    let (meta, _) = build_ok(
        &dir,
        dockerfile,
        &[
            "--build-context",
            &format!("127.0.0.1:1/team/frontend:1={}", dev.display()),
        ],
    );
    assert_eq!(
        meta["hoist.frontend.digest"],
        sha256_digest(hoist_builtin_frontends::DOCKERFILE).as_str()
    );
    assert!(
        meta["hoist.frontend.reference"]
            .as_str()
            .unwrap()
            .starts_with("context:127.0.0.1:1/team/frontend:1"),
        "{meta}"
    );
}

#[test]
fn an_oci_layout_replaces_the_frontend_and_a_container_image_layout_is_refused() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_layout_context");
    let reference = format!("{}/frontends/dockerfile:1", reg.host());
    let manifest = push(&dir, &dockerfile_wasm(&dir), &reference);
    // The artifact copied into an OCI layout by another tool (skopeo), then the registry is
    // never asked: the syntax names an unreachable one.
    let layout = dir.join("frontend-layout");
    crate::util::run_ok(
        std::process::Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:1", layout.display())),
    );
    let dockerfile = "# syntax=127.0.0.1:1/team/frontend:1\nFROM busybox\nRUN true\n";
    let (meta, _) = build_ok(
        &dir,
        dockerfile,
        &[
            "--build-context",
            &format!("127.0.0.1:1/team/frontend:1=oci-layout://{}:1", layout.display()),
        ],
    );
    assert_eq!(
        meta["hoist.frontend.digest"],
        sha256_digest(hoist_builtin_frontends::DOCKERFILE).as_str()
    );
    let shown = meta["hoist.frontend.reference"].as_str().unwrap();
    assert!(shown.starts_with("context:127.0.0.1:1/team/frontend:1 (oci-layout://"), "{meta}");
    assert!(shown.ends_with(&format!("@{manifest})")), "{meta}");

    // A layout holding a container image is not a frontend.
    let image = crate::util::busybox_image().oci_layout_ref();
    let err = build_err(
        &dir,
        dockerfile,
        &["--build-context", &format!("127.0.0.1:1/team/frontend:1={image}")],
    );
    assert!(err.contains("it is a container image"), "{err}");
}

#[test]
fn a_frontend_runs_another_by_reference_and_a_loop_hits_the_depth_limit() {
    let reg = Registry::start();
    let dir = Dir::new("syntax_chaining");
    let dockerfile_ref = format!("{}/frontends/dockerfile:1", reg.host());
    push(&dir, &dockerfile_wasm(&dir), &dockerfile_ref);
    let hostile_ref = format!("{}/frontends/hostile:1", reg.host());
    push(&dir, &hostile_wasm(), &hostile_ref);

    // hostile (selected by # syntax) forwards to the Dockerfile frontend by reference.
    let dockerfile = format!("# syntax={hostile_ref}\nFROM busybox\nRUN echo chained > /which\n");
    let archive = dir.join("chained.tar");
    let (_, stderr) = build_ok(
        &dir,
        &dockerfile,
        &[
            "--opt",
            "mode=forward",
            "--opt",
            &format!("forward-to={dockerfile_ref}"),
            "-o",
            &format!("type=oci,dest={}", archive.display()),
        ],
    );
    let refs: Vec<String> = frontend_events(&stderr)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(
        refs[0].starts_with(&hostile_ref) && refs[1].starts_with(&dockerfile_ref),
        "{refs:?}"
    );
    let rootfs = unpack_oci_archive(&archive, &dir.join("chained-unpacked"));
    assert_eq!(
        fs::read_to_string(rootfs.join("which")).unwrap(),
        "chained\n"
    );

    // Forwarding to itself: a clear error at the depth limit, not a hang.
    let err = build_err(
        &dir,
        &dockerfile,
        &[
            "--opt",
            "mode=forward",
            "--opt",
            &format!("forward-to={hostile_ref}"),
        ],
    );
    assert!(
        err.contains("frontends call one another more than 8 deep"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{hostile_ref} -> {hostile_ref}")),
        "{err}"
    );
}

/// Pushes `component` with `config` as a Wasm artifact the way another tool would (no hoist
/// code involved): oci-client writes the blobs and an OCI image manifest, with `artifact_type`.
fn raw_push(
    reg: &Registry,
    repo: &str,
    tag: &str,
    component: &[u8],
    config: &[u8],
    artifact_type: Option<&str>,
) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::manifest::OciImageManifest;
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{}/{repo}:{tag}", reg.host())
        .parse()
        .expect("reference");
    let layers = [ImageLayer::new(
        component.to_vec(),
        "application/wasm".into(),
        None,
    )];
    let config = Config::new(
        config.to_vec(),
        "application/vnd.wasm.config.v0+json".into(),
        None,
    );
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.artifact_type = artifact_type.map(str::to_string);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(client.push(
            &reference,
            &layers,
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            Some(manifest),
        ))
        .unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
}
