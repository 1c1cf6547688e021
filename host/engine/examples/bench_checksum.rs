//! Benchmark of `hoist_engine::checksum::tree_checksum` on a generated context of about 1 GiB in
//! 20,000 files (under /var/tmp, reused between runs).
//!
//! Prints, for one invocation: the cold run (empty checksum cache; with `--drop-caches` the page
//! cache is dropped first, so it reads from disk), a cold-cache run with the page cache warm, the
//! warm run (unchanged tree, cache filled), a peer (`sha256sum` over the same files, two
//! processes) and a plain read of every file for the disk/page-cache speed, then the peak RSS.
//! Each line gives wall time and this process's CPU time (user + system, all threads, from
//! /proc/self/stat), the latter meaningful even on a machine busy with other work.
//!
//! ```text
//! cargo run --release -p hoist-engine --example bench_checksum -- [--dir PATH] [--drop-caches]
//! ```

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hoist_engine::checksum::{tree_checksum, ChecksumCache};
use hoist_engine::context::IncludeAll;

#[path = "support/tree.rs"]
mod tree;
use tree::FILES;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map_or_else(tree::default_dir, PathBuf::from);
    let drop_caches = args.iter().any(|a| a == "--drop-caches");

    let total = tree::generate(&dir)?;
    println!(
        "tree: {} ({FILES} files, {:.2} GiB)",
        dir.display(),
        gib(total)
    );
    if drop_caches {
        Command::new("sync").status()?;
        fs::write("/proc/sys/vm/drop_caches", "3")?;
    }
    let cold = run_checksum(
        &dir,
        &fresh_cache()?,
        if drop_caches { "cold (disk)" } else { "cold" },
        total,
    )?;
    let cache = fresh_cache()?;
    run_checksum(&dir, &cache, "cold cache, warm page cache", total)?;
    let warm = run_checksum(&dir, &cache, "warm (unchanged)", total)?;
    assert_eq!(cold, warm, "digest changed between runs");
    peer_sha256sum(&dir, total)?;
    plain_read(&dir, total)?;
    println!(
        "peak RSS (VmHWM): {}",
        vm_hwm().unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}

/// A checksum cache in a temporary sled database.
fn fresh_cache() -> Result<ChecksumCache, Box<dyn Error>> {
    let db = sled::Config::new().temporary(true).open()?;
    Ok(ChecksumCache::new(db.open_tree("checksums")?))
}

/// Runs and reports one tree checksum; its digest.
fn run_checksum(
    dir: &Path,
    cache: &ChecksumCache,
    label: &str,
    total: u64,
) -> Result<String, Box<dyn Error>> {
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let result = tree_checksum(dir, &IncludeAll, cache)?;
    let elapsed = started.elapsed();
    let cpu = cpu_ms().zip(cpu_before).map_or(f64::NAN, |(a, b)| a - b);
    println!(
        "{label:<28} {:>9.1} ms wall {:>8.0} ms cpu  {:>6.0} MiB/s  read {} files, reused {}",
        ms(elapsed),
        cpu,
        mib_per_s(total, elapsed),
        result.rehashed.len(),
        result.reused
    );
    Ok(result.digest)
}

/// Times `sha256sum` over the tree's files (two processes), the peer.
fn peer_sha256sum(dir: &Path, total: u64) -> Result<(), Box<dyn Error>> {
    let script =
        "find \"$1\" -type f -name '*.bin' -print0 | xargs -0 -n 1000 -P 2 sha256sum > /dev/null";
    let cpu_before = cpu_ms_of(Waited::Children);
    let started = Instant::now();
    let status = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(dir)
        .status()?;
    let elapsed = started.elapsed();
    let cpu = cpu_ms_of(Waited::Children)
        .zip(cpu_before)
        .map_or(f64::NAN, |(a, b)| a - b);
    println!(
        "{:<28} {:>9.1} ms wall {cpu:>8.0} ms cpu  {:>6.0} MiB/s  ({status})",
        "peer: sha256sum -P2",
        ms(elapsed),
        mib_per_s(total, elapsed)
    );
    Ok(())
}

/// Times reading every file once, single-threaded, without hashing.
fn plain_read(dir: &Path, total: u64) -> Result<(), Box<dyn Error>> {
    let cpu_before = cpu_ms();
    let started = Instant::now();
    tree::read_all(dir)?;
    let elapsed = started.elapsed();
    let cpu = cpu_ms().zip(cpu_before).map_or(f64::NAN, |(a, b)| a - b);
    println!(
        "{:<28} {:>9.1} ms wall {cpu:>8.0} ms cpu  {:>6.0} MiB/s",
        "plain read (1 thread)",
        ms(elapsed),
        mib_per_s(total, elapsed)
    );
    Ok(())
}

/// Whose CPU time [`cpu_ms_of`] reports.
#[derive(Clone, Copy)]
enum Waited {
    /// This process, all threads.
    This,
    /// Children this process waited for (and their waited-for children).
    Children,
}

/// CPU time (user + system, all threads, exited ones included) of this process, in ms.
fn cpu_ms() -> Option<f64> {
    cpu_ms_of(Waited::This)
}

/// CPU time in ms from /proc/self/stat: utime+stime or cutime+cstime (proc(5) fields 14-17).
fn cpu_ms_of(whose: Waited) -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Field n of proc(5) is at index n - 3 here (the list starts at field 3, the state).
    let first = match whose {
        Waited::This => 11,
        Waited::Children => 13,
    };
    let ticks =
        fields.get(first)?.parse::<f64>().ok()? + fields.get(first + 1)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10.0)
}

/// The `VmHWM` line of /proc/self/status.
fn vm_hwm() -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().to_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}
