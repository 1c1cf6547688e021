//! Benchmark: time to solve a fully cached synthetic graph of 1,000 and 10,000 vertices.
//!
//! Run with `cargo run --release -p hoist-solver --example bench_solver`. Prints, per size, the
//! cold solve (no-op executor, every vertex executed and recorded) and the best and median of
//! cached re-solves, plus the process's peak RSS (`VmHWM`). Targets: < 50 ms and < 500 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_solver::*;

#[path = "support/synthetic.rs"]
mod synthetic;
use synthetic::{graph, Noop};


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
