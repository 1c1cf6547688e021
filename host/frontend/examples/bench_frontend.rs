//! Frontend host benchmark: cold load (compile), warm load (compiled file on disk), in-memory
//! load, instantiate-only, and the `build()` round trip of `sdk/examples/hello-frontend`.
//!
//! Run: `cargo run --release -p hoist-frontend-host --example bench_frontend [ITERATIONS]
//! [COMPONENT.wasm]`; with a component path (e.g. a Python frontend built by
//! `sdk/python/build.sh`) that component is measured instead of the Rust example.
//! Figures are printed, never asserted. Targets: warm bytes-on-disk → `build()` returned under
//! 5 ms; instantiate under 1 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_frontend_host::test_support::{build_guest, MemoryGateway};
use hoist_frontend_host::{FrontendHost, Gateway, HostConfig};

fn ms(d: Duration) -> String {
    format!("{:>9.3} ms", d.as_secs_f64() * 1e3)
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.0), p(0.5), p(0.95))
}

fn row(name: &str, v: Vec<Duration>) {
    let (min, med, p95) = stats(v);
    println!(
        "{name:<44} min {}  median {}  p95 {}",
        ms(min),
        ms(med),
        ms(p95)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let wasm = match std::env::args().nth(2) {
        Some(path) => std::path::PathBuf::from(path),
        None => build_guest("hello-frontend").unwrap_or_else(|e| panic!("{e}")),
    };
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    // Answers every solve at once: the benchmark measures the host, not an engine.
    let gateway: Arc<dyn Gateway> = Arc::new(MemoryGateway::default());
    let options = || vec![("build-arg:GREETING".to_string(), "bench".to_string())];

    // Cold: empty cache directory, so the component is compiled and written.
    let mut cold = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let host = FrontendHost::new(HostConfig::new(dir.path())).unwrap();
        host.load(&bytes).unwrap();
        cold.push(t.elapsed());
    }

    let dir = tempfile::tempdir().unwrap();
    FrontendHost::new(HostConfig::new(dir.path()))
        .unwrap()
        .load(&bytes)
        .unwrap();
    let cwasm_size: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    // Warm: a new host (as a new process would have) maps the compiled file.
    let mut warm_load = Vec::new();
    let mut warm_to_built = Vec::new();
    for _ in 0..iterations.min(50) {
        let host = FrontendHost::new(HostConfig::new(dir.path())).unwrap();
        let t = Instant::now();
        let f = host.load(&bytes).unwrap();
        warm_load.push(t.elapsed());
        f.build(options(), gateway.clone()).await.unwrap();
        warm_to_built.push(t.elapsed());
    }

    let host = FrontendHost::new(HostConfig::new(dir.path())).unwrap();
    let f = host.load(&bytes).unwrap();
    let mut mem_load = Vec::new();
    let mut inst = Vec::new();
    let mut build = Vec::new();
    for _ in 0..iterations {
        let t = Instant::now();
        host.load(&bytes).unwrap();
        mem_load.push(t.elapsed());
        let t = Instant::now();
        f.instantiate(gateway.clone()).await.unwrap();
        inst.push(t.elapsed());
        let t = Instant::now();
        f.build(options(), gateway.clone()).await.unwrap();
        build.push(t.elapsed());
    }

    println!(
        "component {}: {} bytes; compiled (.cwasm): {cwasm_size} bytes",
        wasm.display(),
        bytes.len()
    );
    println!("imports: {}", f.imports().join(", "));
    println!("iterations: {iterations}");
    row("cold load (new host + compile + cache write)", cold);
    row("warm load (new host, compiled file on disk)", warm_load);
    row("warm bytes-on-disk -> build() returned", warm_to_built);
    row("in-memory load (same host, digest hit)", mem_load);
    row("instantiate only", inst);
    row("build() round trip (instantiate + build)", build);
}
