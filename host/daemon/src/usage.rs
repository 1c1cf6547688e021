//! DiskUsage and Prune: the engine's cache accounting and garbage collection (`Engine::disk_usage`,
//! `Engine::prune`), as RPCs. Nothing is counted or removed here: the engine owns its GC.

use std::time::{SystemTime, UNIX_EPOCH};

use hoist_api::proto;
use hoist_engine::{PruneOptions, UsageItem};
use tonic::Status;

use crate::Daemon;

/// What the build cache holds.
pub async fn disk_usage(daemon: &Daemon) -> Result<proto::DiskUsageResponse, Status> {
    let usage = daemon
        .engine
        .disk_usage()
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(proto::DiskUsageResponse {
        total_bytes: usage.total(),
        reclaimable_bytes: usage.reclaimable(),
        records: usage.items.iter().map(record_of).collect(),
    })
}

/// Frees build cache as `request` says: `all`, `keep_storage` (0 = no floor), `filters`
/// (`until=DURATION`); a bad filter is the caller's error.
pub async fn prune(
    daemon: &Daemon,
    request: proto::PruneRequest,
) -> Result<proto::PruneResponse, Status> {
    let mut options = PruneOptions {
        all: request.all,
        keep_storage: (request.keep_storage > 0).then_some(request.keep_storage),
        until: None,
    };
    for filter in &request.filters {
        options
            .apply_filter(filter)
            .map_err(|e| Status::invalid_argument(format!("filter {filter:?}: {e}")))?;
    }
    let report = daemon
        .engine
        .prune(options)
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(proto::PruneResponse {
        removed: report.removed.iter().map(record_of).collect(),
        reclaimed_bytes: report.reclaimed,
    })
}

/// The wire form of one engine usage item.
fn record_of(item: &UsageItem) -> proto::UsageRecord {
    let last_used_unix = item
        .last_used
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    proto::UsageRecord {
        id: item.id.clone(),
        kind: item.kind.name().to_string(),
        size: item.size,
        in_use: item.in_use,
        last_used_unix,
        description: item.description.clone(),
        created_unix_nanos: item.created.and_then(unix_nanos),
        last_used_unix_nanos: item.last_used.and_then(unix_nanos),
    }
}

/// Nanoseconds since the epoch, if `time` is after it and before 2262.
fn unix_nanos(time: SystemTime) -> Option<i64> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok()
}
