//! The engine benchmark of issue 2, in one program: (a) a fully cached solve of synthetic graphs
//! of 1,000 and 10,000 vertices, (b) four independent 1-second exec steps through real runc on
//! overlayfs, (c) the tree hash of a 1 GiB, 20,000-file directory, cold and unchanged-warm, and
//! (d) the peak RSS of each (every part runs in its own child process, which reports its VmHWM).
//!
//! ```text
//! cargo run --release -p hoist-engine --example bench_engine -- [--drop-caches] [--parts a,b,c]
//! ```
//!
//! Needs root, runc and overlayfs for (b); `/bin/busybox` (Debian's busybox-static) is the
//! rootfs of its containers, put together with LLB file ops. (c) generates its tree once under
//! `/var/tmp/hoist-bench-checksum` (shared with `bench_checksum`). Nothing is asserted about
//! speed: the program prints figures next to their targets.

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_llb::*;
use hoist_solver::*;

#[path = "../../solver/examples/support/synthetic.rs"]
mod synthetic;
use synthetic::{graph, Noop};
#[path = "support/tree.rs"]
mod tree;

type Res<T> = Result<T, Box<dyn Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--part") {
        let part = args.get(i + 1).ok_or("--part needs a name")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(run_part(part, &args))?;
        println!("  peak RSS of this part (VmHWM): {}", vm_hwm());
        return Ok(());
    }
    let parts = args
        .iter()
        .position(|a| a == "--parts")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| "a,b,c".to_string(), Clone::clone);
    let me = std::env::current_exe()?;
    for part in parts.split(',') {
        let mut child = Command::new(&me);
        child.arg("--part").arg(part);
        if args.iter().any(|a| a == "--drop-caches") {
            child.arg("--drop-caches");
        }
        let status = child.status()?;
        if !status.success() {
            println!("  part {part} failed: {status}");
        }
    }
    Ok(())
}

async fn run_part(part: &str, args: &[String]) -> Res<()> {
    match part {
        "a" => cached_solves().await,
        "b" => parallel_execs().await,
        "c" => tree_hash(args.iter().any(|a| a == "--drop-caches")),
        other => Err(format!("unknown part {other:?} (a, b or c)").into()),
    }
}

// ---------------------------------------------------------------------------------------------
// (a) fully cached solves

/// An exec of `args` on the root filesystem of op `root`, writing output 0.
fn exec_op(args: Vec<String>, root: u32) -> ExecOp {
    ExecOp {
        args,
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        hostname: String::new(),
        network: NetworkMode::None,
        security: SecurityMode::Sandbox,
        mounts: vec![Mount {
            dest: "/".into(),
            input: Some(OpRef {
                op: root,
                output: 0,
            }),
            selector: String::new(),
            readonly: false,
            output: Some(0),
            kind: MountKind::Bind,
        }],
    }
}

async fn cached_solves() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let solver = Solver::new(&db, Arc::new(Noop), SolverLimits::default())?;
    println!("(a) fully cached solve of a synthetic graph (no-op executor, sled index)");
    for (n, target) in [(1_000usize, "< 50 ms"), (10_000, "< 500 ms")] {
        let def = graph(n);
        let t = Instant::now();
        let cold = solver
            .solve(&def, SolveOptions::default(), ProgressSender::discard())
            .await?;
        let cold_time = t.elapsed();
        let mut times = Vec::new();
        for _ in 0..9 {
            let t = Instant::now();
            let r = solver
                .solve(&def, SolveOptions::default(), ProgressSender::discard())
                .await?;
            times.push(t.elapsed());
            if r.stats.executed != 0 || r.output != cold.output {
                return Err("a cached solve executed something".into());
            }
        }
        times.sort();
        println!(
            "  {n:>6} vertices: cached best {:>8.2} ms, median {:>8.2} ms (target {target}); cold {:.0} ms",
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(cold_time)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (b) four independent 1-second exec steps through runc

async fn parallel_execs() -> Res<()> {
    let busybox = std::fs::read("/bin/busybox")
        .map_err(|e| format!("/bin/busybox (apt-get install busybox-static): {e}"))?;
    let state = tempfile::Builder::new()
        .prefix("hoist-bench-engine-")
        .tempdir_in("/var/tmp")?;
    let engine =
        hoist_engine::Engine::open(hoist_engine::EngineConfig::new(state.path().to_path_buf()))?;
    let def = four_sleeps(busybox);
    let progress = hoist_engine::Progress::discard;
    println!("(b) four independent `sleep 1` steps in runc containers, merged (base cached)");
    let warm = engine.solve_definition(&def, false, progress()).await?;
    println!("  warm-up: executed {} vertices", warm.stats.executed);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let solved = engine.solve_definition(&def, false, progress()).await?;
        times.push(t.elapsed());
        if solved.stats.executed != 5 {
            return Err(format!(
                "expected 4 execs and the merge to run, ran {}",
                solved.stats.executed
            )
            .into());
        }
    }
    times.sort();
    println!(
        "  total: best {:.3} s, median {:.3} s (target < 1.15 s on 2 cores; floor 1.0 s)",
        times[0].as_secs_f64(),
        times[1].as_secs_f64()
    );
    Ok(())
}

/// A busybox root made with file ops, four `sleep 1` execs on it (never cached), their merge.
fn four_sleeps(busybox: Vec<u8>) -> Definition {
    let file = |action| FileAction::Symlink(action);
    let base = Op::new(OpKind::File(FileOp {
        base: None,
        actions: vec![
            FileAction::Mkdir(MkdirAction {
                path: "/bin".into(),
                mode: 0o755,
                make_parents: true,
                owner: None,
                timestamp: None,
            }),
            FileAction::Mkfile(MkfileAction {
                path: "/bin/busybox".into(),
                mode: 0o755,
                data: busybox,
                owner: None,
                timestamp: None,
            }),
            file(SymlinkAction {
                target: "busybox".into(),
                path: "/bin/sleep".into(),
                owner: None,
                timestamp: None,
            }),
            file(SymlinkAction {
                target: "busybox".into(),
                path: "/bin/sh".into(),
                owner: None,
                timestamp: None,
            }),
        ],
    }));
    let mut ops = vec![base];
    for i in 0..4 {
        let mut exec = exec_op(vec!["/bin/sleep".into(), "1".into()], 0);
        exec.env.push(format!("STEP={i}"));
        let mut op = Op::new(OpKind::Exec(exec));
        op.ignore_cache = true;
        op.description = Some(format!("sleep 1 #{i}"));
        ops.push(op);
    }
    let inputs = (1..=4).map(|op| OpRef { op, output: 0 }).collect();
    ops.push(Op::new(OpKind::Merge(MergeOp { inputs })));
    Definition {
        ops,
        output: Some(OpRef { op: 5, output: 0 }),
    }
}

// ---------------------------------------------------------------------------------------------
// (c) tree hash of 1 GiB in 20,000 files

fn tree_hash(drop_caches: bool) -> Res<()> {
    use hoist_engine::checksum::{tree_checksum, ChecksumCache};
    use hoist_engine::context::IncludeAll;
    let dir = tree::default_dir();
    let total = tree::generate(&dir)?;
    println!(
        "(c) tree hash of {} ({} files, {:.2} GiB)",
        dir.display(),
        tree::FILES,
        total as f64 / (1u64 << 30) as f64
    );
    if drop_caches {
        Command::new("sync").status()?;
        std::fs::write("/proc/sys/vm/drop_caches", "3")?;
    }
    let db_dir = tempfile::tempdir()?;
    let db = sled::open(db_dir.path())?;
    let cache = ChecksumCache::new(db.open_tree("checksums")?);
    let t = Instant::now();
    let cold = tree_checksum(&dir, &IncludeAll, &cache)?;
    let cold_time = t.elapsed();
    println!(
        "  cold ({}): {:.0} ms, {:.0} MiB/s, {} files read",
        if drop_caches {
            "page cache dropped"
        } else {
            "page cache as it was"
        },
        ms(cold_time),
        total as f64 / (1 << 20) as f64 / cold_time.as_secs_f64(),
        cold.rehashed.len()
    );
    std::thread::sleep(hoist_engine::checksum::RACY_WINDOW);
    tree_checksum(&dir, &IncludeAll, &cache)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let warm = tree_checksum(&dir, &IncludeAll, &cache)?;
        times.push(t.elapsed());
        if warm.digest != cold.digest || !warm.rehashed.is_empty() {
            return Err("the warm hash differs or re-read files".into());
        }
    }
    times.sort();
    println!(
        "  warm (unchanged): best {:.1} ms, median {:.1} ms (target < 100 ms)",
        ms(times[0]),
        ms(times[2])
    );
    let t = Instant::now();
    tree::read_all(&dir)?;
    println!(
        "  peer: plain read of every file, 1 thread: {:.0} ms",
        ms(t.elapsed())
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
