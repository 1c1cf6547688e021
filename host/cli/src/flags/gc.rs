//! The flags of `hoist du` and `hoist prune`: the state directory's disk usage and cleanup.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// How `hoist du` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DuFormat {
    /// A table per item, then totals by kind.
    #[default]
    Table,
    /// One JSON document: every item, the totals and the reclaimable bytes.
    Json,
}

/// `hoist du`.
#[derive(Debug, Args)]
#[command(
    about = "Show what the build cache takes on disk: records, snapshots, blobs, cache mounts"
)]
pub struct DuFlags {
    /// Output format.
    #[arg(long, value_enum, default_value_t = DuFormat::Table)]
    pub format: DuFormat,
    /// List every item, not only the totals.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `hoist prune`.
#[derive(Debug, Args)]
#[command(
    about = "Remove build cache: step results, cache mounts, and with --all base images and unused blobs"
)]
pub struct PruneFlags {
    /// Also remove base-image layers and every blob nothing refers to.
    #[arg(short, long)]
    pub all: bool,
    /// Keep this much storage (e.g. 10GB), removing least recently used cache first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub keep_storage: Option<u64>,
    /// Only remove what matches: until=DURATION (last used longer ago than that, e.g. 24h).
    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<Duration>,
    /// Do not ask for confirmation (it is only asked on a terminal).
    #[arg(short, long)]
    pub force: bool,
    /// Print JSON: the items removed and the bytes reclaimed.
    #[arg(long)]
    pub json: bool,
}

impl PruneFlags {
    /// The engine's prune options for these flags.
    pub fn options(&self) -> hoist_engine::PruneOptions {
        hoist_engine::PruneOptions {
            all: self.all,
            keep_storage: self.keep_storage,
            until: self.filters.iter().min().copied(),
        }
    }
}

/// Parses `--keep-storage`.
fn parse_size(s: &str) -> Result<u64, String> {
    hoist_engine::gc::parse_size(s)
}

/// Parses `--filter until=DURATION` into the duration.
fn parse_filter(s: &str) -> Result<Duration, String> {
    let mut options = hoist_engine::PruneOptions::default();
    options.apply_filter(s)?;
    options
        .until
        .ok_or_else(|| format!("filter {s:?} selects nothing"))
}

#[cfg(test)]
mod tests {
    use crate::flags::{parse, Command};

    #[test]
    fn prune_flags_parse() {
        let cli = parse([
            "hoist",
            "prune",
            "--all",
            "--keep-storage",
            "1GB",
            "--filter",
            "until=24h",
            "-f",
        ])
        .unwrap();
        let Command::Prune(flags) = cli.command else {
            panic!("not prune")
        };
        let options = flags.options();
        assert!(options.all && flags.force);
        assert_eq!(options.keep_storage, Some(1 << 30));
        assert_eq!(options.until, Some(std::time::Duration::from_secs(86_400)));
    }

    #[test]
    fn prune_refuses_bad_values() {
        for bad in [
            &["--keep-storage", "lots"][..],
            &["--filter", "until=soon"],
            &["--filter", "label=x"],
        ] {
            let mut args = vec!["hoist", "prune"];
            args.extend_from_slice(bad);
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn du_flags_parse() {
        let cli = parse(["hoist", "du", "--format", "json"]).unwrap();
        let Command::Du(flags) = cli.command else {
            panic!("not du")
        };
        assert_eq!(flags.format, super::DuFormat::Json);
    }
}
