//! Times the Dockerfile converter natively: a generated 500-line, 20-stage Dockerfile goes
//! through `convert()` and `State::definition()`, 20 times; the median is printed.
//!
//! Run with `cargo run --release -p hoist-dockerfile --example bench_convert`. Base images come
//! from an in-memory resolver, so this measures the frontend's own work only. The in-component
//! figure (wasm32-wasip2 under the frontend host, gateway calls included) is measured by the
//! lead through the frontend host, not here.

use std::time::{Duration, Instant};

use hoist_dockerfile::convert::{self, ConvertOptions, ImageResolver, ResolvedImage};
use hoist_frontend_sdk::types::Platform;

/// Stages in the generated Dockerfile.
const STAGES: usize = 20;
/// Lines per stage (the first stage's block includes the global ARGs).
const LINES_PER_STAGE: usize = 25;
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

/// A Dockerfile of `STAGES` stages of `LINES_PER_STAGE` lines each: every stage builds on an
/// image or the previous stage, and copies from the one before.
fn generate() -> String {
    let mut out = Vec::new();
    out.push("ARG ALPINE=3.19".to_string());
    out.push("ARG GO=1.22".to_string());
    for i in 0..STAGES {
        let start = out.len();
        let base = match i % 3 {
            0 => "alpine:${ALPINE}".to_string(),
            1 => "golang:${GO}".to_string(),
            _ => format!("s{}", i - 1),
        };
        out.push(format!("FROM {base} AS s{i}"));
        out.push("ARG ALPINE".into());
        out.push(format!("ARG STAGE={i}"));
        out.push(format!("ENV STAGE_DIR=/build/s{i} MODE=release"));
        out.push("WORKDIR $STAGE_DIR".into());
        out.push(format!("LABEL stage=\"s{i}\" alpine=$ALPINE"));
        out.push("COPY go.mod go.sum ./".into());
        out.push(format!("COPY --chown=1000:1000 src/s{i}/ ./src/"));
        out.push("RUN --mount=type=cache,target=/root/.cache \\".into());
        out.push("    --mount=type=secret,id=token \\".into());
        out.push(format!("    make -C src stage={i} mode=$MODE"));
        if i > 0 {
            out.push(format!(
                "COPY --from=s{} /build/s{}/out ./deps/",
                i - 1,
                i - 1
            ));
        } else {
            out.push("COPY vendor/ ./vendor/".into());
        }
        out.push("RUN <<EOF".into());
        out.push("set -eu".into());
        out.push(format!("echo stage {i} > out/VERSION"));
        out.push("EOF".into());
        out.push(format!("EXPOSE {}", 8000 + i));
        out.push("USER 1000:1000".into());
        out.push("HEALTHCHECK --interval=30s CMD [\"/bin/true\"]".into());
        out.push("VOLUME /data".into());
        out.push("ENV PATH=$STAGE_DIR/bin:$PATH".into());
        while out.len() - start < LINES_PER_STAGE - 2 - usize::from(i == 0) * 2 {
            out.push(format!("RUN echo filler {} > /dev/null", out.len()));
        }
        out.push("ENTRYPOINT [\"/app\"]".into());
        out.push("CMD [\"--help\"]".into());
    }
    out.join("\n") + "\n"
}

/// A duration in milliseconds with three decimals.
fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
