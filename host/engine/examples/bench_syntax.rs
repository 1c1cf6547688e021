//! What a `# syntax=`-selected frontend adds to a fully cached build, against the built-in.
//!
//! Run as root (the engine mounts overlayfs), with Debian's `docker-registry` installed:
//!
//! ```text
//! cargo run --release -p hoist-engine --example bench_syntax [-- ROUNDS]
//! ```
//!
//! It starts a private registry on 127.0.0.1, pushes the Dockerfile frontend (the built-in's
//! bytes) and the SDK example, and times, in one engine (as a daemon runs them):
//!
//! * the built-in Dockerfile frontend on a fully cached build (`FROM scratch`, `COPY`);
//! * the same build with `# syntax=REG/bench/dockerfile:1`: first use (resolve, pull, compile;
//!   each sample a fresh component, made unique by a custom section) and later uses (the tag
//!   re-resolved against the registry every build), and by digest (no network);
//! * the SDK example (a small Rust frontend): resolve + pull + compile + instantiate-ready load.
//!
//! Figures are medians (min in brackets); "adds" is the difference to the built-in's median.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoist_engine::{BuildRequest, Engine, EngineConfig, Progress};
use hoist_frontend_oci::FrontendRegistry;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: usize) {
    let work = tempfile::Builder::new()
        .prefix("bench-syntax-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    let registry = RegistryProcess::start(work.path());
    let host = registry.host.clone();
    let engine = Engine::open(EngineConfig::new(work.path().join("state"))).expect("engine");
    let frontends = FrontendRegistry::new(Default::default());
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).expect("mkdir context");
    std::fs::write(context.join("a.txt"), "hello\n").expect("write a.txt");
    let body = "FROM scratch\nCOPY a.txt /a.txt\n";

    let dockerfile = hoist_builtin_frontends::DOCKERFILE;
    println!(
        "hoist bench_syntax: {rounds} rounds; Dockerfile frontend {} KiB; registry {host}",
        dockerfile.len() / 1024
    );

    // Warm: the build cache and the built-in's compiled form.
    build(&engine, &context, body).await;
    let builtin = sample(rounds, || build(&engine, &context, body)).await;

    // First uses: each a new component (same frontend, unique bytes) under a new tag.
    let mut first = Vec::new();
    let mut later_ref = String::new();
    let mut digest_ref = String::new();
    for i in 0..3 {
        let bytes = with_custom_section(dockerfile, &format!("bench-{i}-{}", std::process::id()));
        let reference = format!("{host}/bench/dockerfile-{i}:1");
        let pushed = frontends
            .push(&reference, &bytes, "dockerfile.wasm")
            .await
            .expect("push");
        let text = format!("# syntax={reference}\n{body}");
        let started = Instant::now();
        build(&engine, &context, &text).await;
        first.push(started.elapsed());
        later_ref = reference;
        digest_ref = format!("{host}/bench/dockerfile-{i}@{}", pushed.manifest_digest);
    }
    let by_tag_text = format!("# syntax={later_ref}\n{body}");
    let by_tag = sample(rounds, || build(&engine, &context, &by_tag_text)).await;
    let by_digest_text = format!("# syntax={digest_ref}\n{body}");
    let by_digest = sample(rounds, || build(&engine, &context, &by_digest_text)).await;

    // The SDK example: resolve + pull + compile + link, each sample a fresh component.
    let hello = std::fs::read(
        hoist_frontend_host::test_support::build_guest("hello-frontend")
            .expect("build hello-frontend"),
    )
    .expect("read hello-frontend");
    let mut hello_first = Vec::new();
    let mut hello_parts = Vec::new();
    for i in 0..rounds.min(9) {
        let bytes = with_custom_section(&hello, &format!("hello-{i}-{}", std::process::id()));
        let reference = format!("{host}/bench/hello-{i}:1");
        frontends
            .push(&reference, &bytes, "hello_frontend.wasm")
            .await
            .expect("push hello");
        let scratch = tempfile::tempdir_in(work.path()).expect("temp dir");
        let content = hoist_store::ContentStore::open(&scratch.path().join("content"))
            .expect("content store");
        let host_dir = scratch.path().join("compiled");
        let frontend_host =
            hoist_frontend_host::FrontendHost::new(hoist_frontend_host::HostConfig::new(host_dir))
                .expect("frontend host");
        let started = Instant::now();
        let resolved = frontends.resolve(&reference).await.expect("resolve");
        let resolve = started.elapsed();
        let digest = frontends.fetch(&resolved, &content).await.expect("fetch");
        let bytes = content.read(&digest).expect("read");
        let pull = started.elapsed() - resolve;
        frontend_host
            .load_known(digest.as_str(), &bytes)
            .expect("load");
        hello_first.push(started.elapsed());
        hello_parts.push([resolve, pull, started.elapsed() - resolve - pull]);
    }

    let base = median(&builtin);
    println!();
    println!(
        "{:<58} {:>10} {:>10} {:>10}",
        "fully cached build, frontend", "median", "(min)", "adds"
    );
    row("built-in Dockerfile frontend", &builtin, base);
    row(
        "# syntax=REG/…:1, first use (resolve+pull+compile)",
        &first,
        base,
    );
    row(
        "# syntax=REG/…:1, later uses (tag re-resolved)",
        &by_tag,
        base,
    );
    row(
        "# syntax=REG/…@sha256:…, later uses (no network)",
        &by_digest,
        base,
    );
    println!();
    println!(
        "{:<58} {:>10} {:>10}",
        "SDK example (hello-frontend) first use", "median", "(min)"
    );
    println!(
        "{:<58} {:>10} {:>10}",
        format!("resolve+pull+compile+link, {} KiB", hello.len() / 1024),
        ms(median(&hello_first)),
        ms(*hello_first.iter().min().unwrap_or(&Duration::ZERO))
    );
    let part = |i: usize| ms(median(&hello_parts.iter().map(|p| p[i]).collect::<Vec<_>>()));
    println!(
        "  of which resolve {}, pull {}, compile+cache+link {}",
        part(0),
        part(1),
        part(2)
    );
    println!();
    println!("targets: later uses within 10 ms of the built-in; first use of a Rust-built frontend within 200 ms");
    drop(engine);
    drop(registry);
}

/// One build of `dockerfile` in `context`, panicking on failure.
async fn build(engine: &Engine, context: &Path, dockerfile: &str) {
    std::fs::write(context.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let request = BuildRequest::dockerfile(context.to_path_buf());
    if let Err(e) = engine.build(request, Progress::discard()).await {
        panic!("build failed: {e}\n{dockerfile}");
    }
}

/// Times `rounds` runs of `f`.
async fn sample<F, Fut>(rounds: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        f().await;
        out.push(started.elapsed());
    }
    out
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, samples: &[Duration], base: Duration) {
    let m = median(samples);
    let adds = m.as_secs_f64() * 1000.0 - base.as_secs_f64() * 1000.0;
    let min = samples.iter().min().copied().unwrap_or_default();
    println!(
        "{name:<58} {:>10} {:>10} {:>+7.1} ms",
        ms(m),
        format!("({})", ms(min)),
        adds
    );
}

/// `bytes` with a custom section appended: the same component, a different digest.
fn with_custom_section(bytes: &[u8], name: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Debian's docker-registry on a free 127.0.0.1 port, stopped on drop.
struct RegistryProcess {
    child: Child,
    host: String,
}

impl RegistryProcess {
    fn start(dir: &Path) -> RegistryProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let storage = dir.join("registry");
        std::fs::create_dir_all(&storage).expect("mkdir registry");
        let config = dir.join("registry.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            storage.display()
        );
        std::fs::write(&config, yaml).expect("write registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RegistryProcess { child, host }
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
