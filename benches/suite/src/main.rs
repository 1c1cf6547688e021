//! hoist's benchmark suite: builds the same contexts with hoist and with buildah, alternating
//! the two within one invocation, and prints medians, ratios hoist/buildah and peak RSS.
//!
//! Run as root from the workspace root (see `docs/benchmarks.md`):
//!
//! ```text
//! cargo run --release -p hoist-bench-suite
//! ```
//!
//! Everything is made offline: the base image (Debian's busybox-static, assembled with umoci)
//! is pushed to a private `docker-registry` on 127.0.0.1, both builders pull it from there.
//! Each builder keeps its state in its own directory, wiped before every cold build. Settings
//! come from the environment: `REPS` (3), `REPS_SLOW` (`REPS`: repetitions of the slow groups
//! `bigcopy` and `stages`), `SCENARIOS` (all: `simple,parallel,bigcopy,stages,
//! solver`), `BIG_FILES` (20000), `BIG_MIB` (1024), `BENCH_WORK` (`/var/tmp/hoist-bench`),
//! `BENCH_OUT` (`benches/suite/runs/<date>`), `HOIST_BIN` (else `cargo build --release`).
//! Its own timing is not a test: nothing here asserts a speed.

mod fixtures;
mod measure;
mod report;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::fixtures::Registry;
use crate::measure::{measuring_process, Measurement, MEASURE_ARG};
use crate::report::{Report, Sample};
use crate::tools::{Kind, Tool};

/// The suite's settings, from the environment.
struct Settings {
    /// Repetitions of each scenario per tool.
    reps: usize,
    /// Repetitions of the slow groups (`bigcopy`, `stages`), at most `reps`.
    reps_slow: usize,
    /// Scenario groups to run.
    groups: Vec<String>,
    /// Files in scenario 5's context.
    big_files: usize,
    /// Bytes in scenario 5's context.
    big_bytes: u64,
    /// Scratch directory: fixtures, tool states, logs.
    work: PathBuf,
    /// Where the results (JSON and Markdown) are written.
    out: PathBuf,
}

/// All scenario groups, in the order they run.
const ALL_GROUPS: [&str; 5] = ["simple", "parallel", "bigcopy", "stages", "solver"];

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == MEASURE_ARG) {
        match measuring_process(&args[1..]) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("measure: {e:#}");
                std::process::exit(125);
            }
        }
    }
    if let Err(e) = run() {
        eprintln!("hoist-bench-suite: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let settings = settings()?;
    check_tools()?;
    let hoist = hoist_binary()?;
    std::fs::create_dir_all(&settings.work)?;
    let logs = settings.work.join("logs");
    std::fs::create_dir_all(&logs)?;
    let tool = |kind, label: &str, extra: &[&str], program: PathBuf| Tool {
        kind,
        label: label.into(),
        extra: extra.iter().map(|s| s.to_string()).collect(),
        state: settings
            .work
            .join("state")
            .join(label.replace([' ', '='], "_")),
        program,
        logs: logs.join(label.replace([' ', '='], "_")),
    };
    let hoist = tool(Kind::Hoist, "hoist", &[], hoist);
    let buildah = tool(Kind::Buildah, "buildah", &[], "buildah".into());
    let buildah_jobs = tool(
        Kind::Buildah,
        "buildah --jobs=4",
        &["--jobs=4"],
        "buildah".into(),
    );
    for t in [&hoist, &buildah, &buildah_jobs] {
        std::fs::create_dir_all(&t.logs)?;
    }

    let mut report = Report::new(settings.reps, settings.reps_slow, &[&hoist, &buildah])?;
    eprintln!("{}", report.machine_line());

    let registry_dir = settings.work.join("registry");
    fixtures::remove_tree(&registry_dir)?;
    let registry = Registry::start(&registry_dir)?;
    let layout = settings.work.join("base-oci");
    fixtures::make_base_image(&layout, &settings.work)?;
    let base = registry.push_layout(&layout, "busybox:latest")?;
    eprintln!("base image {base} (busybox-static, made with umoci)");

    let ctx = settings.work.join("contexts");
    let result = run_groups(
        &settings,
        &ctx,
        &base,
        &[&hoist, &buildah],
        &buildah_jobs,
        &mut report,
    );
    for t in [&hoist, &buildah, &buildah_jobs] {
        let _ = t.wipe();
    }
    drop(registry);
    result?;

    report.finish();
    print!("{}", report.markdown());
    std::fs::create_dir_all(&settings.out)?;
    let json = settings.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(settings.out.join("summary.md"), report.markdown())?;
    eprintln!("results: {} and summary.md beside it", json.display());
    Ok(())
}

/// Runs every selected group; in odd repetitions buildah goes first, in even ones hoist.
fn run_groups(
    settings: &Settings,
    ctx: &Path,
    base: &str,
    pair: &[&Tool; 2],
    buildah_jobs: &Tool,
    report: &mut Report,
) -> Result<()> {
    let selected = |g: &str| settings.groups.iter().any(|x| x == g);
    let simple = ctx.join("simple");
    let parallel = ctx.join("parallel");
    let big = ctx.join("big");
    let stages = ctx.join("stages");
    if selected("bigcopy") {
        eprintln!(
            "making the {} files, {} MiB context ...",
            settings.big_files,
            settings.big_bytes >> 20
        );
        fixtures::big_context(&big, base, settings.big_files, settings.big_bytes)?;
    }
    if selected("stages") {
        let lines = fixtures::stages_context(&stages, base)?;
        eprintln!("scenario 6 Dockerfile: {lines} lines, 20 stages");
    }
    for rep in 1..=settings.reps {
        let wants = |g: &str| {
            selected(g) && (rep <= settings.reps_slow || !matches!(g, "bigcopy" | "stages"))
        };
        let order: Vec<&Tool> = if rep % 2 == 1 {
            vec![pair[0], pair[1]]
        } else {
            vec![pair[1], pair[0]]
        };
        for tool in &order {
            let mut record = |id: &str, m: Measurement| {
                eprintln!(
                    "  rep {rep} {:<22} {:<8} {:>8.2}s  {:>8} KiB",
                    tool.label, id, m.wall_s, m.max_rss_kib
                );
                report.add(Sample {
                    scenario: id.into(),
                    tool: tool.label.clone(),
                    rep,
                    m,
                });
            };
            if wants("simple") {
                fixtures::simple_context(&simple, base)?;
                tool.wipe()?;
                tool.prime(base, ctx)?;
                record(
                    "1-cold",
                    tool.build(&simple, "simple", &format!("s1-cold-{rep}"))?,
                );
                record(
                    "2-noop",
                    tool.build(&simple, "simple", &format!("s2-noop-{rep}"))?,
                );
                fixtures::write(
                    &simple,
                    fixtures::SIMPLE_EDITED_FILE,
                    format!("#!/bin/sh\necho edit {rep}\n"),
                )?;
                record(
                    "3-edit",
                    tool.build(&simple, "simple", &format!("s3-edit-{rep}"))?,
                );
            }
            if wants("parallel") {
                fixtures::parallel_context(&parallel, base)?;
                tool.wipe()?;
                tool.prime(base, ctx)?;
                record(
                    "4-stages",
                    tool.build(&parallel, "parallel", &format!("s4-{rep}"))?,
                );
            }
            if wants("bigcopy") {
                tool.wipe()?;
                tool.prime(base, ctx)?;
                record(
                    "5-cold",
                    tool.build(&big, "big", &format!("s5-cold-{rep}"))?,
                );
                touch(&big.join(fixtures::big_touched_file(settings.big_files)))?;
                record(
                    "5-touch",
                    tool.build(&big, "big", &format!("s5-touch-{rep}"))?,
                );
            }
            if wants("stages") {
                tool.wipe()?;
                tool.prime(base, ctx)?;
                record(
                    "6-cold",
                    tool.build(&stages, "stages", &format!("s6-cold-{rep}"))?,
                );
                record(
                    "6-noop",
                    tool.build(&stages, "stages", &format!("s6-noop-{rep}"))?,
                );
            }
            tool.wipe()?;
        }
        if wants("parallel") {
            // buildah's own parallel mode, for reference beside its default.
            buildah_jobs.wipe()?;
            buildah_jobs.prime(base, ctx)?;
            let m = buildah_jobs.build(&parallel, "parallel", &format!("s4-{rep}"))?;
            eprintln!(
                "  rep {rep} {:<22} {:<8} {:>8.2}s  {:>8} KiB",
                buildah_jobs.label, "4-stages", m.wall_s, m.max_rss_kib
            );
            report.add(Sample {
                scenario: "4-stages".into(),
                tool: buildah_jobs.label.clone(),
                rep,
                m,
            });
            buildah_jobs.wipe()?;
        }
    }
    if selected("solver") {
        report.solver = Some(solver_bench()?);
    }
    Ok(())
}

/// Sets a file's modification time to now without changing its contents.
fn touch(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.set_modified(std::time::SystemTime::now())
        .with_context(|| format!("touch {}", path.display()))
}

/// Scenario 7: the solver's own benchmark (a fully cached 10,000-vertex graph, no-op executor).
fn solver_bench() -> Result<report::SolverFigures> {
    eprintln!("scenario 7: cargo run --release -p hoist-solver --example bench_solver");
    let out = fixtures::run_ok(Command::new(cargo()).current_dir(workspace_root()).args([
        "run",
        "-q",
        "--release",
        "-p",
        "hoist-solver",
        "--example",
        "bench_solver",
    ]))?;
    let line = out
        .lines()
        .find(|l| l.starts_with("10000,"))
        .with_context(|| format!("bench_solver printed no 10000-vertex row:\n{out}"))?;
    report::SolverFigures::parse(line)
}

fn settings() -> Result<Settings> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let reps = env("REPS")
        .map(|v| v.parse())
        .transpose()
        .context("REPS")?
        .unwrap_or(3);
    let reps_slow = env("REPS_SLOW")
        .map(|v| v.parse())
        .transpose()
        .context("REPS_SLOW")?
        .unwrap_or(reps);
    let groups: Vec<String> = match env("SCENARIOS") {
        Some(v) => v.split(',').map(|s| s.trim().to_string()).collect(),
        None => ALL_GROUPS.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad) = groups.iter().find(|g| !ALL_GROUPS.contains(&g.as_str())) {
        bail!(
            "SCENARIOS: unknown group {bad:?}; known: {}",
            ALL_GROUPS.join(",")
        );
    }
    let big_files = env("BIG_FILES")
        .map(|v| v.parse())
        .transpose()
        .context("BIG_FILES")?
        .unwrap_or(20_000);
    let big_mib: u64 = env("BIG_MIB")
        .map(|v| v.parse())
        .transpose()
        .context("BIG_MIB")?
        .unwrap_or(1024);
    let work = env("BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/hoist-bench".into());
    let date = chrono::Utc::now().format("%Y-%m-%d-%H%M").to_string();
    let out = env("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("benches/suite/runs").join(date));
    Ok(Settings {
        reps,
        reps_slow: reps_slow.min(reps),
        groups,
        big_files,
        big_bytes: big_mib << 20,
        work,
        out,
    })
}

/// Fails with the apt-get line to run if a needed program is missing or we are not root.
fn check_tools() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root: both builders mount overlayfs and run runc");
    }
    let needed = [
        ("buildah", "buildah"),
        ("runc", "runc"),
        ("umoci", "umoci"),
        ("skopeo", "skopeo"),
        ("docker-registry", "docker-registry"),
        ("/bin/busybox", "busybox-static"),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(prog, _)| Command::new(prog).arg("--help").output().is_err())
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        bail!("missing programs; apt-get install -y {}", missing.join(" "));
    }
    Ok(())
}

/// The hoist binary: `HOIST_BIN`, else a release build made now from this workspace.
fn hoist_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HOIST_BIN") {
        return Ok(bin.into());
    }
    eprintln!("cargo build --release --bin hoist ...");
    let out = fixtures::run_ok(Command::new(cargo()).current_dir(workspace_root()).args([
        "build",
        "--release",
        "--bin",
        "hoist",
        "--message-format",
        "json-render-diagnostics",
    ]))?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "hoist")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build reported no hoist executable")
}

/// The cargo running us, or `cargo`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The workspace root: two levels above this package.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}
