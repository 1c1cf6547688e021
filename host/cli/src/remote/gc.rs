//! `hoist du --addr ADDR` and `hoist prune --addr ADDR`: the daemon's DiskUsage and Prune RPCs,
//! their answers turned back into the engine's [`DiskUsage`] and [`PruneReport`] so that
//! `gc_cmd` prints them exactly as it prints the embedded engine's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_api::proto::{self, DiskUsageRequest, PruneRequest};
use hoist_api::{Address, ClientTls};
use hoist_engine::{DiskUsage, PruneOptions, PruneReport, UsageItem, UsageKind};

use super::connect;

/// What the daemon's build cache holds.
pub async fn disk_usage(address: &Address, tls: &ClientTls) -> anyhow::Result<DiskUsage> {
    let mut control = connect(address, tls).await?;
    let reply = control
        .disk_usage(DiskUsageRequest {})
        .await
        .map_err(|status| rpc_error(address, "disk usage", &status))?
        .into_inner();
    Ok(DiskUsage {
        items: items_of(reply.records),
    })
}

/// Frees the daemon's build cache as `options` say.
pub async fn prune(
    address: &Address,
    tls: &ClientTls,
    options: &PruneOptions,
) -> anyhow::Result<PruneReport> {
    let mut control = connect(address, tls).await?;
    let reply = control
        .prune(prune_request(options))
        .await
        .map_err(|status| rpc_error(address, "prune", &status))?
        .into_inner();
    Ok(PruneReport {
        removed: items_of(reply.removed),
        reclaimed: reply.reclaimed_bytes,
    })
}

/// A failed RPC, naming the daemon and what was asked.
fn rpc_error(address: &Address, what: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("hoistd at {address}: {what}: {}", status.message())
}

/// The wire form of prune options: `keep_storage` 0 means no floor, the age filter travels as
/// `until=MILLISms` (the engine's duration syntax).
fn prune_request(options: &PruneOptions) -> PruneRequest {
    PruneRequest {
        all: options.all,
        keep_storage: options.keep_storage.unwrap_or(0),
        filters: options
            .until
            .map(|until| format!("until={}ms", until.as_millis()))
            .into_iter()
            .collect(),
    }
}

/// The engine's items for wire records; a kind this client does not know (a newer daemon's) is
/// left out with a warning rather than misfiled.
fn items_of(records: Vec<proto::UsageRecord>) -> Vec<UsageItem> {
    let mut unknown = Vec::new();
    let items = records
        .into_iter()
        .filter_map(|record| {
            let Some(kind) = UsageKind::from_name(&record.kind) else {
                unknown.push(record.kind);
                return None;
            };
            Some(item_of(kind, record))
        })
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        eprintln!(
            "hoist: warning: hoistd reported entries of kinds this client does not know, left out: {}",
            unknown.join(", ")
        );
    }
    items
}

/// One wire record as an engine item.
fn item_of(kind: UsageKind, record: proto::UsageRecord) -> UsageItem {
    let seconds = u64::try_from(record.last_used_unix)
        .ok()
        .filter(|&s| s > 0)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    UsageItem {
        kind,
        id: record.id,
        size: record.size,
        created: record.created_unix_nanos.and_then(time_of),
        last_used: record.last_used_unix_nanos.and_then(time_of).or(seconds),
        in_use: record.in_use,
        description: record.description,
    }
}

/// The time `nanos` nanoseconds after the epoch (none before it).
fn time_of(nanos: i64) -> Option<SystemTime> {
    let nanos = u64::try_from(nanos).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_kind_times_and_flags() {
        let record = proto::UsageRecord {
            id: "sha256:abc".into(),
            kind: "snapshot".into(),
            size: 42,
            in_use: true,
            last_used_unix: 7,
            description: "build step layer".into(),
            created_unix_nanos: Some(1_500_000_000),
            last_used_unix_nanos: Some(7_250_000_000),
        };
        let newer = proto::UsageRecord {
            kind: "something-new".into(),
            ..record.clone()
        };
        let old_daemon = proto::UsageRecord {
            kind: "cache-record".into(),
            created_unix_nanos: None,
            last_used_unix_nanos: None,
            ..record.clone()
        };
        let items = items_of(vec![record, newer, old_daemon]);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].kind, UsageKind::Snapshot);
        assert!(items[0].in_use && items[0].size == 42 && items[0].id == "sha256:abc");
        assert_eq!(
            items[0].created,
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(
            items[0].last_used,
            Some(UNIX_EPOCH + Duration::from_millis(7250))
        );
        assert_eq!(items[1].kind, UsageKind::CacheRecord);
        assert_eq!(items[1].created, None);
        assert_eq!(
            items[1].last_used,
            Some(UNIX_EPOCH + Duration::from_secs(7))
        );
    }

    #[test]
    fn prune_options_travel_in_the_engines_syntax() {
        let options = PruneOptions {
            all: true,
            keep_storage: Some(1 << 30),
            until: Some(Duration::from_secs(90)),
        };
        let wire = prune_request(&options);
        assert!(wire.all);
        assert_eq!(wire.keep_storage, 1 << 30);
        let mut back = PruneOptions::default();
        for filter in &wire.filters {
            back.apply_filter(filter).unwrap();
        }
        assert_eq!(back.until, options.until);
        assert!(prune_request(&PruneOptions::default()).filters.is_empty());
    }
}
