//! Builds real frontend components (the SDK example and misbehaving test frontends) and runs
//! them against an in-memory gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hoist_frontend_host::limits::{MAX_DIR_ENTRIES, MAX_READ_BYTES};
use hoist_frontend_host::test_support::build_guest;
use hoist_frontend_host::{
    Error, FileStat, FrontendEvent, FrontendHost, FrontendSolved, Gateway, GatewayError,
    HostConfig, LogLevel, RefId, RefReader, ResolveMode, ResolvedImageConfig, Solver,
};
use hoist_llb::{
    Definition, ExecOp, FileAction, FileOp, MkdirAction, MkfileAction, Mount, MountKind,
    NetworkMode, Op, OpKind, OpRef, Platform, SecurityMode, SourceLocation, SourceOp,
};

/// An engine stand-in: counts solves, serves files from a map, records everything it is asked.
#[derive(Default)]
struct FakeGateway {
    files: HashMap<String, Vec<u8>>,
    dir_entries: usize,
    solves: Mutex<Vec<(Definition, bool)>>,
    paths: Mutex<Vec<String>>,
    events: Mutex<Vec<FrontendEvent>>,
}

impl FakeGateway {
    fn with_file(mut self, path: &str, data: Vec<u8>) -> Self {
        self.files.insert(path.to_string(), data);
        self
    }

    fn solves(&self) -> Vec<(Definition, bool)> {
        self.solves.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<FrontendEvent> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl Solver for FakeGateway {
    async fn solve(&self, def: Definition, evaluate: bool) -> Result<Option<RefId>, GatewayError> {
        let mut solves = self.solves.lock().unwrap();
        solves.push((def, evaluate));
        Ok(Some(format!("ref-{}", solves.len() - 1)))
    }

    async fn solve_frontend(
        &self,
        _source: String,
        _options: Vec<(String, String)>,
        _inputs: Vec<(String, Definition)>,
    ) -> Result<FrontendSolved, GatewayError> {
        Err(GatewayError::new("no frontends here"))
    }

    async fn resolve_image_config(
        &self,
        reference: String,
        platform: Option<Platform>,
        mode: ResolveMode,
    ) -> Result<ResolvedImageConfig, GatewayError> {
        let p = platform.map(|p| {
            format!(
                "{}/{}/{}",
                p.os,
                p.architecture,
                p.variant.unwrap_or_default()
            )
        });
        Ok(ResolvedImageConfig {
            canonical_ref: format!(
                "docker.io/library/{reference} {mode:?} {}",
                p.unwrap_or_default()
            ),
            digest: "sha256:00".into(),
            config: "{}".into(),
        })
    }
}

#[async_trait]
impl RefReader for FakeGateway {
    async fn read_file(
        &self,
        _reference: &RefId,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, GatewayError> {
        self.paths.lock().unwrap().push(path.to_string());
        let data = self
            .files
            .get(path)
            .ok_or_else(|| GatewayError::not_found(path))?;
        let start = usize::try_from(offset).unwrap().min(data.len());
        let end = usize::try_from(offset.saturating_add(length)).unwrap_or(usize::MAX);
        Ok(data[start..end.min(data.len())].to_vec())
    }

    async fn read_dir(
        &self,
        _reference: &RefId,
        path: &str,
        _pattern: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<FileStat>, GatewayError> {
        self.paths.lock().unwrap().push(path.to_string());
        // Ignores `limit` on purpose: the host must enforce the cap itself.
        Ok((0..self.dir_entries)
            .map(|i| stat(&format!("f{i}")))
            .collect())
    }

    async fn stat(&self, _reference: &RefId, path: &str) -> Result<FileStat, GatewayError> {
        self.paths.lock().unwrap().push(path.to_string());
        Ok(stat(path))
    }
}

impl Gateway for FakeGateway {
    fn inputs(&self) -> Vec<(String, Definition)> {
        let local = Op::new(OpKind::Source(SourceOp {
            identifier: "local://context".into(),
            include_patterns: vec![],
            exclude_patterns: vec!["target".into()],
            follow_paths: vec![],
            attrs: vec![],
        }));
        let def = Definition {
            ops: vec![local],
            output: Some(OpRef { op: 0, output: 0 }),
        };
        vec![("context".into(), def.clone()), ("dockerfile".into(), def)]
    }

    fn report(&self, event: FrontendEvent) {
        self.events.lock().unwrap().push(event);
    }
}

fn stat(path: &str) -> FileStat {
    FileStat {
        path: path.into(),
        mode: 0o100644,
        size: 1,
        mtime_ns: 0,
        uid: 0,
        gid: 0,
        link_target: None,
    }
}

fn wasm(package: &str) -> Vec<u8> {
    let path = build_guest(package).unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(path).unwrap()
}

fn host(dir: &tempfile::TempDir, config: impl FnOnce(&mut HostConfig)) -> FrontendHost {
    let mut cfg = HostConfig::new(dir.path());
    config(&mut cfg);
    FrontendHost::new(cfg).unwrap()
}

fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn op(kind: OpKind, description: &str) -> Op {
    Op {
        description: Some(description.into()),
        ..Op::new(kind)
    }
}

/// What `hello-frontend` must produce for `GREETING=hoist`, written out by hand.
fn expected_hello() -> Definition {
    let busybox = op(
        OpKind::Source(SourceOp {
            identifier: "docker-image://busybox:latest".into(),
            include_patterns: vec![],
            exclude_patterns: vec![],
            follow_paths: vec![],
            attrs: vec![],
        }),
        "[1/3] FROM busybox:latest",
    );
    let mut run = op(
        OpKind::Exec(ExecOp {
            args: vec!["sh".into(), "-c".into(), "echo built > /built".into()],
            env: vec!["GREETING=hoist".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: NetworkMode::None,
            security: SecurityMode::Sandbox,
            mounts: vec![Mount {
                dest: "/".into(),
                input: Some(OpRef { op: 0, output: 0 }),
                selector: String::new(),
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            }],
        }),
        "[2/3] RUN echo built > /built",
    );
    run.location = Some(SourceLocation {
        file: "Hellofile".into(),
        ranges: vec![hoist_llb::LineRange { start: 2, end: 2 }],
    });
    let write = op(
        OpKind::File(FileOp {
            base: Some(OpRef { op: 1, output: 0 }),
            actions: vec![
                FileAction::Mkdir(MkdirAction {
                    path: "/app".into(),
                    mode: 0o755,
                    make_parents: true,
                    owner: None,
                    timestamp: None,
                }),
                FileAction::Mkfile(MkfileAction {
                    path: "/app/greeting".into(),
                    mode: 0o644,
                    data: b"hoist\n".to_vec(),
                    owner: None,
                    timestamp: None,
                }),
            ],
        }),
        "[3/3] WRITE /app/greeting",
    );
    Definition {
        ops: vec![busybox, run, write],
        output: Some(OpRef { op: 2, output: 0 }),
    }
}

async fn build_hello(host: &FrontendHost) -> (hoist_frontend_host::BuildOutput, Arc<FakeGateway>) {
    let frontend = host.load(&wasm("hello-frontend")).unwrap();
    let gw = Arc::new(FakeGateway::default());
    let out = frontend
        .build(opts(&[("build-arg:GREETING", "hoist")]), gw.clone())
        .await
        .unwrap_or_else(|e| panic!("hello build failed: {e}"));
    (out, gw)
}

#[tokio::test]
async fn hello_frontend_produces_expected_definition_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let (out, gw) = build_hello(&host).await;

    let solves = gw.solves();
    assert_eq!(solves.len(), 1, "one solve");
    let (def, evaluate) = &solves[0];
    assert!(!evaluate);
    assert_eq!(def, &expected_hello());
    let digests = def.digests().unwrap();
    assert_eq!(digests, expected_hello().digests().unwrap());
    assert_eq!(digests.len(), 3);

    assert_eq!(out.platforms.len(), 1);
    let p = &out.platforms[0];
    assert_eq!(p.reference.as_deref(), Some("ref-0"));
    assert_eq!(p.platform, None);
    let config: serde_json::Value =
        serde_json::from_str(p.image_config.as_deref().unwrap()).unwrap();
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.contains(&"GREETING=hoist".into()), "{config}");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/app/greeting"])
    );

    assert!(gw.events().contains(&FrontendEvent::Log(
        LogLevel::Info,
        "hello-frontend: solving".into()
    )));
}

#[tokio::test]
async fn frontend_reports_world_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let bytes = wasm("hello-frontend");
    let f = host.load(&bytes).unwrap();
    assert_eq!(f.world_version(), "1.0.0");
    assert!(f.digest().starts_with("sha256:") && f.digest().len() == 7 + 64);
    assert!(
        f.imports()
            .iter()
            .any(|i| i == "hoist:frontend/gateway@1.0.0"),
        "{:?}",
        f.imports()
    );
    assert!(
        f.exports()
            .iter()
            .any(|e| e == "hoist:frontend/builder@1.0.0"),
        "{:?}",
        f.exports()
    );
}

#[tokio::test]
async fn compiled_component_is_cached_on_disk_and_reused_by_a_new_host() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wasm("hello-frontend");
    let first = host(&dir, |_| {});
    first.load(&bytes).unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].extension().is_some_and(|e| e == "cwasm"));
    let before = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();

    // A second host stands for a new process: it must map the file, not recompile and rewrite.
    let second = host(&dir, |_| {});
    let f = second.load(&bytes).unwrap();
    let after = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    assert_eq!(before, after);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let gw = Arc::new(FakeGateway::default());
    f.build(Vec::new(), gw.clone()).await.unwrap();
    assert_eq!(gw.solves().len(), 1);
}

#[tokio::test]
async fn corrupt_cache_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wasm("hello-frontend");
    host(&dir, |_| {}).load(&bytes).unwrap();
    let cached = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&cached, b"garbage").unwrap();
    let f = host(&dir, |_| {}).load(&bytes).unwrap();
    assert!(std::fs::metadata(&cached).unwrap().len() > 1000);
    f.build(Vec::new(), Arc::new(FakeGateway::default()))
        .await
        .unwrap();
}

async fn hostile(host: &FrontendHost, gw: Arc<FakeGateway>, pairs: &[(&str, &str)]) -> Error {
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    match f.build(opts(pairs), gw).await {
        Ok(out) => panic!("hostile build {pairs:?} succeeded: {out:?}"),
        Err(e) => {
            eprintln!("{pairs:?}: {e}");
            e
        }
    }
}

/// The host that just refused a hostile build must serve the next build normally.
async fn still_serves(host: &FrontendHost) {
    let (out, _) = build_hello(host).await;
    assert_eq!(out.platforms.len(), 1);
}

#[tokio::test]
async fn endless_loop_stops_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |c| c.deadline = Duration::from_millis(300));
    let e = hostile(&host, Arc::new(FakeGateway::default()), &[("mode", "loop")]).await;
    assert!(e.is_deadline(), "{e}");
    assert!(e.to_string().contains("deadline of 300ms"), "{e}");
    still_serves(&host).await;
}

#[tokio::test]
async fn memory_growth_past_the_cap_is_a_memory_limit_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |c| c.memory_limit = 64 << 20);
    let e = hostile(&host, Arc::new(FakeGateway::default()), &[("mode", "grow")]).await;
    assert!(e.is_memory_limit(), "{e}");
    assert!(e.to_string().contains("limit is 67108864 bytes"), "{e}");
    still_serves(&host).await;
}

#[tokio::test]
async fn out_of_range_index_is_refused_before_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let gw = Arc::new(FakeGateway::default());
    let e = hostile(&host, gw.clone(), &[("mode", "out-of-range")]).await;
    assert!(e.is_frontend(), "{e}");
    assert!(e.to_string().contains("invalid definition"), "{e}");
    assert!(gw.solves().is_empty());
    still_serves(&host).await;
}

#[tokio::test]
async fn forward_reference_is_refused_before_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let gw = Arc::new(FakeGateway::default());
    let e = hostile(&host, gw.clone(), &[("mode", "forward-ref")]).await;
    assert!(e.to_string().contains("invalid definition"), "{e}");
    assert!(gw.solves().is_empty());
    still_serves(&host).await;
}

#[tokio::test]
async fn relative_escape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let gw = Arc::new(FakeGateway::default());
    let e = hostile(
        &host,
        gw.clone(),
        &[("mode", "read"), ("path", "../../etc/passwd")],
    )
    .await;
    assert!(e.to_string().contains("escapes the result's root"), "{e}");
    assert!(gw.paths().is_empty(), "gateway saw {:?}", gw.paths());
    still_serves(&host).await;
}

#[tokio::test]
async fn absolute_paths_stay_inside_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let gw = Arc::new(FakeGateway::default());
    let e = hostile(
        &host,
        gw.clone(),
        &[("mode", "read"), ("path", "/../../etc/passwd")],
    )
    .await;
    assert!(e.to_string().contains("escapes the result's root"), "{e}");
    // `/etc/passwd` means the result's own etc/passwd: the gateway gets a relative path.
    let e = hostile(
        &host,
        gw.clone(),
        &[("mode", "read"), ("path", "/etc/passwd")],
    )
    .await;
    assert!(e.to_string().contains("etc/passwd: no such file"), "{e}");
    assert_eq!(gw.paths(), ["etc/passwd"]);
    still_serves(&host).await;
}

#[tokio::test]
async fn reads_are_served_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    let gw = Arc::new(FakeGateway::default().with_file("Dockerfile", b"FROM scratch\n".to_vec()));

    let out = f
        .build(
            opts(&[("mode", "read"), ("path", "./Dockerfile")]),
            gw.clone(),
        )
        .await;
    assert_eq!(
        out.unwrap().metadata,
        [("read".to_string(), b"FROM scratch\n".to_vec())]
    );

    let at_limit = MAX_READ_BYTES.to_string();
    let out = f
        .build(
            opts(&[("mode", "read-range"), ("length", &at_limit)]),
            gw.clone(),
        )
        .await;
    assert_eq!(out.unwrap().metadata[0].1, b"FROM scratch\n");

    let over = (MAX_READ_BYTES + 1).to_string();
    let e = hostile(
        &host,
        gw.clone(),
        &[("mode", "read-range"), ("length", &over)],
    )
    .await;
    assert!(e.to_string().contains("MAX_READ_BYTES"), "{e}");

    let gib = (1u64 << 30).to_string();
    let e = hostile(
        &host,
        gw.clone(),
        &[("mode", "read-range"), ("length", &gib)],
    )
    .await;
    assert!(
        e.to_string()
            .contains("read of 1073741824 bytes is more than the limit"),
        "{e}"
    );
    still_serves(&host).await;
}

#[tokio::test]
async fn whole_file_reads_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    let size = usize::try_from(MAX_READ_BYTES).unwrap();
    let gw = Arc::new(
        FakeGateway::default()
            .with_file("exact", vec![7; size])
            .with_file("big", vec![7; size + 1]),
    );
    let out = f
        .build(opts(&[("mode", "read"), ("path", "exact")]), gw.clone())
        .await
        .unwrap();
    assert_eq!(out.metadata[0].1.len(), size);
    let e = hostile(&host, gw, &[("mode", "read"), ("path", "big")]).await;
    assert!(
        e.to_string().contains("/big is larger than 16777216 bytes"),
        "{e}"
    );
}

#[tokio::test]
async fn directory_listings_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    let gw = Arc::new(FakeGateway {
        dir_entries: MAX_DIR_ENTRIES,
        ..FakeGateway::default()
    });
    let out = f.build(opts(&[("mode", "read-dir")]), gw).await.unwrap();
    assert_eq!(out.metadata[0].1, MAX_DIR_ENTRIES.to_string().as_bytes());
    let gw = Arc::new(FakeGateway {
        dir_entries: MAX_DIR_ENTRIES + 1,
        ..FakeGateway::default()
    });
    let e = hostile(&host, gw, &[("mode", "read-dir")]).await;
    assert!(e.to_string().contains("MAX_DIR_ENTRIES"), "{e}");
}

#[tokio::test]
async fn panic_is_a_trap_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let e = hostile(
        &host,
        Arc::new(FakeGateway::default()),
        &[("mode", "panic")],
    )
    .await;
    assert!(matches!(e, Error::Trap { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(
        msg.contains("hostile frontend panicked on purpose"),
        "{msg}"
    );
    still_serves(&host).await;
}

#[tokio::test]
async fn frontend_errors_keep_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let e = hostile(
        &host,
        Arc::new(FakeGateway::default()),
        &[("mode", "nonsense")],
    )
    .await;
    assert!(e.is_frontend());
    assert_eq!(
        e.location().map(|l| l.to_string()).as_deref(),
        Some("Hostilefile:1")
    );
    assert_eq!(e.to_string(), "Hostilefile:1: unknown mode \"nonsense\"");
}

#[tokio::test]
async fn stdout_and_stderr_become_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    let gw = Arc::new(FakeGateway::default());
    f.build(opts(&[("mode", "print")]), gw.clone())
        .await
        .unwrap();
    let events = gw.events();
    assert!(
        events.contains(&FrontendEvent::Log(LogLevel::Info, "to stdout".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&FrontendEvent::Log(LogLevel::Warn, "to stderr".into())),
        "{events:?}"
    );
}

#[tokio::test]
async fn unknown_world_version_is_refused_with_the_version_needed() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let e = host.load(&wasm("future-frontend")).unwrap_err();
    assert!(matches!(e, Error::UnsupportedWorld { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("hoist:frontend@2.0.0") && msg.contains("1.x"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing cached"
    );
    still_serves(&host).await;
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let e = host.load(b"FROM busybox\nRUN true\n").unwrap_err();
    assert!(matches!(e, Error::NotWasm), "{e}");
    let e = host.load(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(matches!(e, Error::NotComponent { .. }), "{e}");
    assert!(e.to_string().contains("wasm32-wasip2"), "{e}");
    let e = host.load(b"\0asm\x0d\0\x01\0garbage").unwrap_err();
    assert!(matches!(e, Error::Compile { .. }), "{e}");
    still_serves(&host).await;
}

#[tokio::test]
async fn every_gateway_import_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let f = host.load(&wasm("hostile-frontend")).unwrap();
    let gw = Arc::new(FakeGateway::default());
    let out = f
        .build(opts(&[("mode", "tour")]), gw.clone())
        .await
        .unwrap();
    let meta: HashMap<String, String> = out
        .metadata
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(meta["inputs"], "context,dockerfile");
    assert_eq!(
        meta["canonical"],
        "docker.io/library/busybox Pull linux/arm64/v8"
    );
    assert_eq!(meta["stat"], "bin/sh");
    assert_eq!(meta["subrequest"], "no frontends here");
    let warned = gw.events().into_iter().find_map(|e| match e {
        FrontendEvent::Warn(w) => Some(w),
        _ => None,
    });
    let w = warned.expect("a warning");
    assert_eq!(w.rule.as_deref(), Some("StageNameCasing"));
    assert_eq!(
        w.location.map(|l| l.to_string()).as_deref(),
        Some("Dockerfile:1-2")
    );
}

#[tokio::test]
async fn live_references_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, |_| {});
    let gw = Arc::new(FakeGateway::default());
    let e = hostile(&host, gw.clone(), &[("mode", "hoard")]).await;
    let msg = e.to_string();
    let held = hoist_frontend_host::MAX_LIVE_REFS;
    assert!(msg.contains(&format!("after {held} references")), "{msg}");
    assert!(msg.contains("MAX_LIVE_REFS"), "{msg}");
    assert_eq!(gw.solves().len(), held + 1);
    still_serves(&host).await;
}
