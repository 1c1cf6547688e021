//! Times the Dockerfile converter natively: a generated 500-line, 20-stage Dockerfile goes
//! through `convert()` and `State::definition()`, 20 times; the median is printed.
//!
//! Run with `cargo run --release -p hoist-dockerfile --example bench_convert`. Base images come
//! from an in-memory resolver, so this measures the frontend's own work only. The in-component
//! figure (wasm32-wasip2 under the frontend host, gateway calls included) is printed by
//! `cargo run --release -p hoist-builtin-frontends --example bench_component`.

use std::time::{Duration, Instant};

mod support;
use support::{generate, STAGES};

use hoist_dockerfile::convert::{self, ConvertOptions, ImageResolver, ResolvedImage};
use hoist_frontend_sdk::types::Platform;

/// Timed runs.
const RUNS: usize = 20;

/// Serves one small config for every reference.
struct Resolver;

impl ImageResolver for Resolver {
    fn resolve(&mut self, reference: &str, _: Option<&Platform>) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage {
            canonical_ref: format!("docker.io/library/{reference}"),
            digest: format!("sha256:{:064x}", reference.len()),
            config: r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"WorkingDir":"/","Cmd":["/bin/sh"]},"history":[{"created_by":"base"}]}"#.into(),
        })
    }
}

fn main() {
    let dockerfile = generate();
    let lines = dockerfile.lines().count();
    let opts = ConvertOptions {
        filename: "Dockerfile".into(),
        ..ConvertOptions::default()
    };
    let mut times = Vec::with_capacity(RUNS);
    let mut ops = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let converted = match convert::convert(&dockerfile, &opts, &mut Resolver) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("conversion failed: {e:?}");
                std::process::exit(1);
            }
        };
        let definition = converted.state.definition();
        times.push(start.elapsed());
        ops = definition.ops.len();
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "convert+definition: {lines} lines, {STAGES} stages, {ops} ops: median {} over {RUNS} runs \
         (min {}, max {}) [native]",
        fmt(median),
        fmt(times[0]),
        fmt(times[RUNS - 1]),
    );
}

/// A duration in milliseconds with three decimals.
fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
