//! Python frontends (built with `sdk/python/build.sh`, i.e. componentize-py) in the real host:
//! what they import, parity with the Rust SDK (same frontend, same LLB digests), and located
//! errors. Components are built once per machine (cached by input hash, see
//! `test_support::build_python_guest`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hoist_frontend_host::test_support::{
    build_guest, build_python_guest, python_cache_dir, MemoryGateway,
};
use hoist_frontend_host::{Error, Frontend, FrontendEvent, FrontendHost, HostConfig, LogLevel};
use hoist_llb::Definition;

const HELLO_PY: &str = "sdk/python/examples/hello";
const TOML_PY: &str = "sdk/python/examples/toml-frontend";

/// One host for the whole test binary, its compile cache kept beside the built components
/// (`test_support::python_cache_dir()/compiled`): a Python component is ~18 MB of wasm
/// (CPython inside) and takes a minute to compile in a debug build, so it is compiled once per
/// machine, not once per test.
fn host() -> &'static FrontendHost {
    static HOST: OnceLock<FrontendHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let dir = python_cache_dir().join("compiled");
        FrontendHost::new(HostConfig::new(dir)).unwrap()
    })
}

/// The component built from `app`, loaded once (the lock makes concurrent tests wait for one
/// compile instead of compiling the same component side by side).
fn load_python(app: &str) -> Frontend {
    static LOADED: OnceLock<Mutex<HashMap<String, Frontend>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    loaded
        .entry(app.to_string())
        .or_insert_with(|| {
            let wasm = build_python_guest(app).unwrap_or_else(|e| panic!("{e}"));
            host()
                .load(&std::fs::read(wasm).unwrap())
                .unwrap_or_else(|e| panic!("loading {app}: {e}"))
        })
        .clone()
}

fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The canonical digest of a definition's output op (position independent, see hoist_llb).
fn output_digest(def: &Definition) -> String {
    let digests = def.digests().unwrap();
    let out = def.output.expect("definition has an output");
    format!("{}#{}", digests[out.op as usize], out.output)
}

#[test]
fn python_component_imports_only_the_gateway() {
    let f = load_python(HELLO_PY);
    // --stub-wasi: no WASI import at all, so nothing beyond what the host provides.
    let mut imports = f.imports().to_vec();
    imports.sort();
    assert_eq!(
        imports,
        ["hoist:frontend/gateway@1.0.0", "hoist:frontend/types@1.0.0"]
    );
    assert!(
        f.exports()
            .iter()
            .any(|e| e == "hoist:frontend/builder@1.0.0"),
        "{:?}",
        f.exports()
    );
    assert_eq!(f.world_version(), "1.0.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_rust_hello_frontends_emit_identical_llb() {
    let rust = host()
        .load(&std::fs::read(build_guest("hello-frontend").unwrap()).unwrap())
        .unwrap();
    let python = load_python(HELLO_PY);
    let varied = options(&[
        ("build-arg:GREETING", "hi there ✓"),
        ("build-arg:BASE", "alpine:3"),
    ]);
    for opts in [vec![], varied] {
        let (rust_gw, py_gw) = (
            Arc::new(MemoryGateway::default()),
            Arc::new(MemoryGateway::default()),
        );
        let rust_out = rust.build(opts.clone(), rust_gw.clone()).await.unwrap();
        let py_out = python.build(opts.clone(), py_gw.clone()).await.unwrap();

        let (rust_defs, py_defs) = (rust_gw.solves(), py_gw.solves());
        assert_eq!(rust_defs.len(), 1, "{opts:?}");
        assert_eq!(py_defs.len(), 1, "{opts:?}");
        assert_eq!(
            output_digest(&py_defs[0]),
            output_digest(&rust_defs[0]),
            "{opts:?}"
        );
        // Not only the hashed parts: descriptions, locations and op order match too.
        assert_eq!(py_defs[0], rust_defs[0], "{opts:?}");
        assert_eq!(py_defs[0].ops.len(), 3);

        let config = |out: &hoist_frontend_host::BuildOutput| {
            let json = out.platforms[0].image_config.clone().unwrap();
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        };
        assert_eq!(config(&py_out), config(&rust_out), "{opts:?}");
        assert_eq!(py_out.platforms.len(), 1);
        assert_eq!(py_out.platforms[0].reference.as_deref(), Some("ref-0"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_log_lines_reach_the_gateway() {
    let python = load_python(HELLO_PY);
    let gw = Arc::new(MemoryGateway::default());
    python.build(vec![], gw.clone()).await.unwrap();
    let events = gw.events();
    assert!(
        events.contains(&FrontendEvent::Log(
            LogLevel::Info,
            "hello-frontend (python): solving".into()
        )),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn toml_frontend_turns_stages_into_llb() {
    let toml = load_python(TOML_PY);
    let text = std::fs::read_to_string(
        hoist_frontend_host::test_support::workspace_root()
            .join(TOML_PY)
            .join("demo/hoist.toml"),
    )
    .unwrap();
    let gw = Arc::new(MemoryGateway::default().with_file("hoist.toml", text.as_str()));
    let out = toml
        .build(options(&[("build-arg:GREETING", "hey")]), gw.clone())
        .await
        .unwrap();
    let solves = gw.solves();
    // The build file's context, then the build.
    assert_eq!(solves.len(), 2, "{solves:#?}");
    let def = &solves[1];
    def.validate().unwrap();
    let descriptions: Vec<&str> = def
        .ops
        .iter()
        .filter_map(|op| op.description.as_deref())
        .collect();
    assert!(
        descriptions.contains(&"[build 3/3] RUN sh greet.sh 'hey' > /src/greeting.txt"),
        "{descriptions:?}"
    );
    assert_eq!(gw.resolved(), ["busybox", "busybox"]);
    let config: serde_json::Value =
        serde_json::from_str(out.platforms[0].image_config.as_deref().unwrap()).unwrap();
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/app/greeting.txt"])
    );
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/bin", "APP_MODE=demo"])
    );
    // print() in a Python frontend is a build log line (the SDK redirects stdout).
    let events = gw.events();
    assert!(
        events.contains(&FrontendEvent::Log(
            LogLevel::Info,
            "toml-frontend: building hoist.toml".into()
        )),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_errors_keep_their_build_file_location() {
    let toml = load_python(TOML_PY);
    let bad = "[[stage]]\nname = \"a\"\nfrom = \n";
    let gw = Arc::new(MemoryGateway::default().with_file("build.toml", bad));
    let err = toml
        .build(options(&[("filename", "build.toml")]), gw)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Frontend { .. }), "{err:?}");
    let loc = err.location().expect("located");
    assert_eq!(loc.file, "build.toml");
    assert_eq!((loc.ranges[0].start, loc.ranges[0].end), (3, 3));
    assert!(
        err.to_string().starts_with("build.toml:3: invalid TOML"),
        "{err}"
    );

    // A missing build file: the host's not-found error, reworded by the frontend.
    let gw = Arc::new(MemoryGateway::default());
    let err = toml.build(vec![], gw).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("failed to read the build file 'hoist.toml'"),
        "{err}"
    );
}
