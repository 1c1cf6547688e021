//! Benchmark: what explaining cache misses costs on a no-op rebuild.
//!
//! Builds one Dockerfile (10 stages of `COPY`/`WORKDIR` on `scratch` over a 1,000-file context,
//! merged in a final stage: 35 steps) with two engines in two state directories, one with
//! [`EngineConfig::explain`] on and one with it off; warms both, then rebuilds alternately
//! (every step cached) and prints, for each, the median and mean wall time and this process's
//! CPU time per rebuild, and the overhead of explaining. Target: under 5%.
//!
//! ```text
//! cargo run --release -p hoist-engine --example bench_explain -- [ROUNDS]
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use hoist_engine::{BuildRequest, Engine, EngineConfig, Progress};

/// Stages of the Dockerfile.
const STAGES: usize = 10;

/// The context: 10 directories of 100 files.
fn make_context(dir: &Path) -> std::io::Result<()> {
    for d in 0..STAGES {
        for f in 0..100 {
            let path = dir.join(format!("src/d{d}/f{f:03}.txt"));
            std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
            std::fs::write(path, format!("file {d} {f}\n").repeat(20))?;
        }
    }
    let mut df = String::new();
    for s in 0..STAGES {
        df.push_str(&format!(
            "FROM scratch AS s{s}\nWORKDIR /w{s}\nCOPY src/d{s} ./d\n"
        ));
    }
    df.push_str("FROM scratch\n");
    for s in 0..STAGES {
        df.push_str(&format!("COPY --from=s{s} /w{s} /w{s}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), df)
}

/// User + system CPU time of this process (all threads).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // After the command name: state is not numeric, so utime/stime are fields 11 and 12 here.
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// One build; returns its wall time.
async fn build(engine: &Engine, context: &Path) -> Result<Duration, hoist_engine::Error> {
    let started = Instant::now();
    engine
        .build(
            BuildRequest::dockerfile(context.to_path_buf()),
            Progress::discard(),
        )
        .await?;
    Ok(started.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(1).max(1)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let root = tempfile::Builder::new()
        .prefix("bench-explain")
        .tempdir_in("/var/tmp")?;
    let context = root.path().join("context");
    make_context(&context)?;

    let engine_with = |explain: bool| -> Result<Engine, hoist_engine::Error> {
        let mut config =
            EngineConfig::new(
                root.path()
                    .join(if explain { "state-on" } else { "state-off" }),
            );
        config.explain = explain;
        Engine::open(config)
    };
    let on = engine_with(true)?;
    let off = engine_with(false)?;
    // Warm both: the first build executes every step, the second warms the checksum caches.
    for engine in [&on, &off] {
        build(engine, &context).await?;
        build(engine, &context).await?;
    }

    let (mut wall_on, mut wall_off) = (Vec::new(), Vec::new());
    let (mut cpu_on, mut cpu_off) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        // Alternate which goes first, so drift on a busy machine hits both alike.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for explain in order {
            let cpu = cpu_time();
            let wall = build(if explain { &on } else { &off }, &context).await?;
            let used = cpu_time().saturating_sub(cpu);
            if explain {
                wall_on.push(wall);
                cpu_on += used;
            } else {
                wall_off.push(wall);
                cpu_off += used;
            }
        }
    }
    let n = u32::try_from(rounds).unwrap_or(1).max(1);
    let (mean_on, mean_off) = (mean(&wall_on), mean(&wall_off));
    let (med_on, med_off) = (median(&mut wall_on), median(&mut wall_off));
    let pct = |a: Duration, b: Duration| (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0;
    println!(
        "no-op rebuild of a {}-stage Dockerfile over a 1,000-file context, {rounds} rounds each",
        STAGES + 1
    );
    println!(
        "{:<22} {:>12} {:>12} {:>14}",
        "", "median", "mean", "cpu/rebuild"
    );
    for (label, med, mean, cpu) in [
        ("explain off (peer)", med_off, mean_off, cpu_off / n),
        ("explain on", med_on, mean_on, cpu_on / n),
    ] {
        println!(
            "{label:<22} {:>10.2}ms {:>10.2}ms {:>12.2}ms",
            med.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3
        );
    }
    println!(
        "overhead of explaining: median {:+.1}%, mean {:+.1}%, cpu {:+.1}% (target < 5%)",
        pct(med_on, med_off),
        pct(mean_on, mean_off),
        pct(cpu_on, cpu_off)
    );
    Ok(())
}
