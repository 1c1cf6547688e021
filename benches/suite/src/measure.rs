//! Running one command and measuring it: wall time, and peak RSS and CPU time of its process tree.
//!
//! `getrusage(RUSAGE_CHILDREN)` reports the largest peak RSS among a process's waited-for
//! descendants, accumulated over its whole life; so each measured command runs under a fresh
//! measuring process (this binary re-executed with [`MEASURE_ARG`]) whose only descendants are
//! that command and whatever it spawns (runc, buildah's helpers). The figure is the peak RSS of
//! the largest single process of the tree, as `/usr/bin/time` reports it.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use nix::sys::resource::{getrusage, UsageWho};

/// First argument that makes this binary act as the measuring process.
pub const MEASURE_ARG: &str = "__measure";

/// What one measured command cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Measurement {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Peak resident set size of the largest process of the tree, KiB.
    pub max_rss_kib: u64,
    /// User CPU seconds of the tree.
    pub user_s: f64,
    /// System CPU seconds of the tree.
    pub sys_s: f64,
}

/// Runs `cmd` (program, arguments, environment and working directory are taken from it) under a
/// measuring process, with stdout and stderr appended to `log`; fails if it exits non-zero.
pub fn run_measured(cmd: &Command, log: &Path) -> Result<Measurement> {
    let usage_file = log.with_extension("rusage");
    let mut child = Command::new(std::env::current_exe().context("path of this benchmark binary")?);
    child
        .arg(MEASURE_ARG)
        .arg(&usage_file)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        child.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => child.env(key, v),
            None => child.env_remove(key),
        };
    }
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open log {}", log.display()))?;
    child
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let start = Instant::now();
    let status = child.status().with_context(|| format!("run {cmd:?}"))?;
    let wall_s = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "{cmd:?} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail(log, 25)
        );
    }
    let text = fs::read_to_string(&usage_file)
        .with_context(|| format!("read {}", usage_file.display()))?;
    let fields: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [rss, user_s, sys_s] = fields[..] else {
        bail!("malformed usage record {}: {text:?}", usage_file.display());
    };
    Ok(Measurement {
        wall_s,
        max_rss_kib: rss as u64,
        user_s,
        sys_s,
    })
}

/// The measuring process: `MEASURE_ARG USAGE_FILE -- PROGRAM ARGS...`. Runs the program, writes
/// "max_rss_kib user_s sys_s" of its descendants to USAGE_FILE and exits with its exit code.
pub fn measuring_process(args: &[OsString]) -> Result<i32> {
    let [usage_file, sep, program, rest @ ..] = args else {
        bail!("usage: {MEASURE_ARG} USAGE_FILE -- PROGRAM [ARGS...]");
    };
    if sep != "--" {
        bail!("usage: {MEASURE_ARG} USAGE_FILE -- PROGRAM [ARGS...]");
    }
    let status = Command::new(program)
        .args(rest)
        .status()
        .with_context(|| format!("run {program:?}"))?;
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    let record = format!(
        "{} {:.3} {:.3}\n",
        usage.max_rss(),
        secs(usage.user_time()),
        secs(usage.system_time())
    );
    fs::write(usage_file, record).with_context(|| format!("write {usage_file:?}"))?;
    Ok(status.code().unwrap_or(128))
}

/// The last `n` lines of a text file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
