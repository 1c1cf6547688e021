//! Dockerfile → LLB *inside the built-in component*: the embedded `hoist_dockerfile.wasm` is
//! loaded by the frontend host and `build()` runs on a generated 500-line, 20-stage Dockerfile
//! (the same one `bench_convert` converts natively), with a gateway that answers at once: the
//! Dockerfile read, `.dockerignore` (absent), each `resolve-image-config`, and the final solve.
//! So the figure is the frontend's work plus the WIT crossings, not an engine's.
//!
//! Run: `cargo run --release -p hoist-builtin-frontends --example bench_component [RUNS]`.
//! Prints min / median / p95 of a warm `build()` (component compiled and cached, a fresh
//! instance per build as the engine makes), of instantiation alone, and the native converter
//! beside it for comparison. Target: warm `build()` under 20 ms. Figures are printed, never
//! asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_dockerfile::convert::{self, ConvertOptions, ImageResolver, ResolvedImage};
use hoist_frontend_host::test_support::MemoryGateway;
use hoist_frontend_host::{FrontendHost, Gateway, HostConfig};
use hoist_frontend_sdk::types::Platform as SdkPlatform;

#[path = "../../dockerfile/examples/support/mod.rs"]
mod support;

/// The base image config every reference resolves to.
const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"WorkingDir":"/","Cmd":["/bin/sh"]},"history":[{"created_by":"base"}]}"#;

/// The native converter's resolver, answering like the gateway (`MemoryGateway`).
struct NativeResolver;

impl ImageResolver for NativeResolver {
    fn resolve(
        &mut self,
        reference: &str,
        _: Option<&SdkPlatform>,
    ) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            canonical_ref: reference.to_string(),
            digest: format!("sha256:{:064x}", reference.len()),
            config: CONFIG.into(),
        })
    }
}

fn ms(d: Duration) -> String {
    format!("{:>8.3} ms", d.as_secs_f64() * 1e3)
}

fn row(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<46} min {}  median {}  p95 {}",
        ms(at(0.0)),
        ms(at(0.5)),
        ms(at(0.95))
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let dockerfile = support::generate();
    let lines = dockerfile.lines().count();
    let gateway = Arc::new(
        MemoryGateway::default()
            .with_file("Dockerfile", dockerfile.as_str())
            .with_image_config(CONFIG),
    );
    let as_gateway: Arc<dyn Gateway> = gateway.clone();
    let options = || vec![("filename".to_string(), "Dockerfile".to_string())];

    let cache = tempfile::tempdir().expect("temp dir");
    let host = FrontendHost::new(HostConfig::new(cache.path())).expect("frontend host");
    let t = Instant::now();
    let frontend = host
        .load(hoist_builtin_frontends::DOCKERFILE)
        .expect("load the built-in component");
    let cold = t.elapsed();

    // One build to check it converts at all (and to warm caches), then the timed ones.
    frontend
        .build(options(), as_gateway.clone())
        .await
        .unwrap_or_else(|e| panic!("build failed: {e}"));
    let ops = gateway.solves().last().map_or(0, |def| def.ops.len());
    let resolved_before = gateway.resolved().len();
    let mut builds = Vec::with_capacity(runs);
    let mut instantiations = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        frontend
            .instantiate(as_gateway.clone())
            .await
            .expect("instantiate");
        instantiations.push(t.elapsed());
        let t = Instant::now();
        frontend
            .build(options(), as_gateway.clone())
            .await
            .expect("build");
        builds.push(t.elapsed());
    }
    let resolves = (gateway.resolved().len() - resolved_before) / runs.max(1);

    let opts = ConvertOptions {
        filename: "Dockerfile".into(),
        ..ConvertOptions::default()
    };
    let mut native = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let converted =
            convert::convert(&dockerfile, &opts, &mut NativeResolver).expect("native convert");
        let _ = converted.state.definition();
        native.push(t.elapsed());
    }

    println!(
        "Dockerfile: {lines} lines, {} stages -> {ops} LLB ops; {resolves} resolve-image-config calls per build",
        support::STAGES
    );
    println!(
        "component: {} bytes; first load (compile) {}",
        hoist_builtin_frontends::DOCKERFILE.len(),
        ms(cold)
    );
    println!("runs: {runs}");
    row("warm build() in the component (instantiate+build)", builds);
    row("  of which instantiate only", instantiations);
    row("native convert()+definition() (no WASM)", native);
}
