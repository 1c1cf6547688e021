//! Benchmark: time to solve a fully cached synthetic graph of 1,000 and 10,000 vertices.
//!
//! Run with `cargo run --release -p hoist-solver --example bench_solver`. Prints, per size, the
//! cold solve (no-op executor, every vertex executed and recorded) and the best and median of
//! cached re-solves, plus the process's peak RSS (`VmHWM`). Targets: < 50 ms and < 500 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hoist_llb::*;
use hoist_solver::*;

struct Noop;

impl OpExecutor for Noop {
    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async move { Ok(vec![ResultId(format!("snap-{}", job.cache_key.0.hex()))]) })
    }
}

/// A layered DAG, 10 ops wide: the first layer sources, then execs on the op 10 places back
/// with a read-only mount of a pseudo-random earlier op; the output merges the last layer.
fn graph(n: usize) -> Definition {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut ops = Vec::with_capacity(n);
    for i in 0..n - 1 {
        let op = if i < 10 {
            Op::new(OpKind::Source(SourceOp {
                identifier: format!("docker-image://registry.example/g{n}/img{i}:latest"),
                include_patterns: vec![],
                exclude_patterns: vec![],
                follow_paths: vec![],
                attrs: vec![],
            }))
        } else {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let other = u32::try_from((seed >> 33) % i as u64).unwrap_or(0);
            let prev = u32::try_from(i - 10).unwrap_or(0);
            Op::new(OpKind::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), format!("make step-{i}")],
                env: vec!["PATH=/usr/bin:/bin".into(), format!("STEP={i}")],
                cwd: "/src".into(),
                user: String::new(),
                hostname: String::new(),
                network: NetworkMode::None,
                security: SecurityMode::Sandbox,
                mounts: vec![
                    Mount {
                        dest: "/".into(),
                        input: Some(OpRef {
                            op: prev,
                            output: 0,
                        }),
                        selector: String::new(),
                        readonly: false,
                        output: Some(0),
                        kind: MountKind::Bind,
                    },
                    Mount {
                        dest: "/other".into(),
                        input: Some(OpRef {
                            op: other,
                            output: 0,
                        }),
                        selector: String::new(),
                        readonly: true,
                        output: None,
                        kind: MountKind::Bind,
                    },
                ],
            }))
        };
        let mut op = op;
        op.description = Some(format!("[step {i}]"));
        ops.push(op);
    }
    // The output: a merge of the last layer, so every op is needed.
    let last = u32::try_from(n - 1).unwrap_or(0);
    let inputs = (last - 10..last)
        .map(|op| OpRef { op, output: 0 })
        .collect();
    ops.push(Op::new(OpKind::Merge(MergeOp { inputs })));
    Definition {
        ops,
        output: Some(OpRef {
            op: last,
            output: 0,
        }),
    }
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("hoist-bench-solver-{}", std::process::id()));
    let db = sled::open(&dir)?;
    let solver = Solver::new(&db, Arc::new(Noop), SolverLimits::default())?;
    println!("size,cold_ms,cached_best_ms,cached_median_ms,target_ms,peak_rss");
    for (n, target) in [(1_000usize, 50.0), (10_000, 500.0)] {
        let def = graph(n);
        let t = Instant::now();
        let cold = solver
            .solve(&def, SolveOptions::default(), ProgressSender::discard())
            .await?;
        let cold_ms = ms(t.elapsed());
        assert_eq!(cold.stats.executed, n);
        let mut times = Vec::new();
        for _ in 0..9 {
            let t = Instant::now();
            let r = solver
                .solve(&def, SolveOptions::default(), ProgressSender::discard())
                .await?;
            times.push(ms(t.elapsed()));
            assert_eq!(r.stats.executed, 0);
            assert_eq!(r.output, cold.output);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{n},{cold_ms:.1},{:.2},{:.2},{target},{}",
            times[0],
            times[times.len() / 2],
            vm_hwm()
        );
    }
    drop(solver);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
