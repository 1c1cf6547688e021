//! `hoist du` and `hoist prune`: the build cache's disk usage and cleanup, printed as a table
//! (or JSON). The embedded engine's by default; with `--addr` a hoistd daemon's, through its
//! DiskUsage and Prune RPCs (`remote::gc`), printed by the same code.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use hoist_engine::{DiskUsage, Engine, EngineConfig, PruneReport, UsageItem, UsageKind};

use crate::flags::{DuFlags, DuFormat, EngineChoice, PruneFlags};

/// Runs `hoist du`.
pub fn du(engine: EngineChoice, flags: &DuFlags) -> anyhow::Result<ExitCode> {
    let usage = block_on(async move {
        match engine {
            EngineChoice::Embedded { state_dir } => Ok(open(state_dir)?.disk_usage().await?),
            EngineChoice::Remote { address, tls } => {
                crate::remote::gc::disk_usage(&address, &tls).await
            }
        }
    })?;
    let mut out = std::io::stdout().lock();
    match flags.format {
        DuFormat::Json => {
            let doc = serde_json::json!({
                "items": usage.items,
                "total": usage.total(),
                "reclaimable": usage.reclaimable(),
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        DuFormat::Table => {
            if flags.verbose {
                write_items(&mut out, &usage.items)?;
                writeln!(out)?;
            }
            write_totals(&mut out, &usage)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `hoist prune`.
pub fn prune(engine: EngineChoice, flags: &PruneFlags) -> anyhow::Result<ExitCode> {
    if !flags.force && std::io::stdin().is_terminal() {
        let what = if flags.all {
            "all build cache"
        } else {
            "all dangling build cache"
        };
        eprint!("WARNING! This will remove {what}. Are you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let options = flags.options();
    let report = block_on(async move {
        match engine {
            EngineChoice::Embedded { state_dir } => Ok(open(state_dir)?.prune(options).await?),
            EngineChoice::Remote { address, tls } => {
                crate::remote::gc::prune(&address, &tls, &options).await
            }
        }
    })?;
    let mut out = std::io::stdout().lock();
    if flags.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_prune(&mut out, &report)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` to its end on a fresh async runtime.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}

/// Opens the embedded engine on `state_dir`.
fn open(state_dir: PathBuf) -> anyhow::Result<Engine> {
    Ok(Engine::open(EngineConfig::new(state_dir))?)
}

fn write_items(out: &mut impl std::io::Write, items: &[UsageItem]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<13} {:<20} {:>10} {:<16} {:<6} DESCRIPTION",
        "KIND", "ID", "SIZE", "LAST USED", "IN USE"
    )?;
    let now = SystemTime::now();
    for item in items {
        let id = short_id(&item.id);
        let last = item
            .last_used
            .map_or_else(|| "-".to_string(), |t| ago(now, t));
        let in_use = if item.in_use { "yes" } else { "" };
        writeln!(
            out,
            "{:<13} {:<20} {:>10} {:<16} {:<6} {}",
            item.kind.name(),
            id,
            human(item.size),
            last,
            in_use,
            item.description
        )?;
    }
    Ok(())
}

fn write_totals(out: &mut impl std::io::Write, usage: &DiskUsage) -> std::io::Result<()> {
    writeln!(out, "{:<13} {:>7} {:>10}", "KIND", "COUNT", "SIZE")?;
    for kind in UsageKind::ALL {
        let (count, size) = usage.of_kind(kind);
        writeln!(out, "{:<13} {:>7} {:>10}", kind.name(), count, human(size))?;
    }
    writeln!(out, "Reclaimable:\t{}", human(usage.reclaimable()))?;
    writeln!(out, "Total:\t\t{}", human(usage.total()))
}

fn write_prune(out: &mut impl std::io::Write, report: &PruneReport) -> std::io::Result<()> {
    if !report.removed.is_empty() {
        write_items(out, &report.removed)?;
    }
    writeln!(
        out,
        "Total:\t{} reclaimed ({} items removed)",
        human(report.reclaimed),
        report.removed.len()
    )
}

/// The first 12 hex digits of a digest, else the id.
fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(19).collect()
}

/// `1.5GB`, `12.3MB`, `800B`: binary units, as docker prints sizes.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}{}", UNITS[unit]).replace(".000", "")
    }
}

/// `5 seconds ago`, `3 minutes ago`, `2 hours ago`, `4 days ago`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).map_or(0, |d| d.as_secs());
    let (n, unit) = match secs {
        0..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human(800), "800B");
        assert_eq!(human(1536), "1.500kB");
        assert_eq!(human(10 << 20), "10MB");
    }
}
