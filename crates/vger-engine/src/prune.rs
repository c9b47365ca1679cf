//! `snapshot delete` and `prune`: removing snapshot objects. The space
//! they held is freed by `compact`. On storage that records receipt times
//! (vger-server), prune holds back a run that a burst of snapshots would
//! turn into a purge of older ones ([`guard`]).

pub mod guard;

use std::collections::HashMap;

use serde::Serialize;
use vger_format::id::{SnapshotId, SNAPSHOTS_PREFIX};

use self::guard::FloodReport;

use crate::lock::RepoLock;
use crate::repository::Repository;
use crate::retention::{apply, Decision, RetentionPolicy};
use crate::snapshots;
use crate::{EngineError, Result};

/// Deletes the given snapshots (under an exclusive lock).
pub fn delete_snapshots(repo: &Repository, ids: &[SnapshotId]) -> Result<()> {
    let lock = RepoLock::exclusive(repo, "snapshot delete")?;
    for id in ids {
        lock.check_alive()?;
        repo.storage().delete(&id.storage_key())?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub decisions: Vec<Decision>,
    pub deleted: usize,
    pub kept: usize,
    pub dry_run: bool,
    /// Snapshots whose recorded time disagrees with when the server
    /// received them; retention used the server's time.
    pub time_disagreements: Vec<String>,
    /// Snapshots that arrived in a burst, and what the policy would delete
    /// only because of them.
    pub flood: FloodReport,
    /// Nothing was deleted: the policy would have deleted snapshots only
    /// because of a burst (see `flood`), and `force` was not given.
    pub refused: bool,
}

/// How far a snapshot's own time may be from the server's receipt time
/// before the server's is used (clocks drift; imports with `--time` into a
/// vger-server repository are judged by their upload time).
const RECEIPT_TOLERANCE_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    pub dry_run: bool,
    /// Only snapshots of this source label.
    pub source: Option<String>,
    /// Delete what the policy says even when a burst of snapshots is what
    /// pushes older ones out.
    pub force: bool,
}

/// Applies `policy` per source label (or a per-label policy from
/// `policy_for`) and deletes what no rule keeps.
pub fn prune(
    repo: &Repository,
    policy_for: &dyn Fn(&str) -> Result<RetentionPolicy>,
    opts: &PruneOptions,
) -> Result<PruneReport> {
    let lock = if opts.dry_run { None } else { Some(RepoLock::exclusive(repo, "prune")?) };
    let mut all = snapshots::list(repo)?;
    let mut time_disagreements = Vec::new();
    let receipts_trusted = repo.storage().receipt_times_trusted();
    if receipts_trusted {
        for s in &mut all {
            let Some(received) = s.stored_at else { continue };
            let claimed = chrono::DateTime::parse_from_rfc3339(&s.snapshot.time).map(|t| t.timestamp()).ok();
            let received = received as i64;
            if claimed.is_none_or(|c| (c - received).abs() > RECEIPT_TOLERANCE_SECS) {
                let server_time = chrono::DateTime::from_timestamp(received, 0).unwrap_or_default();
                time_disagreements.push(format!(
                    "snapshot {} claims {} but the server received it at {}; retention uses the server's time",
                    snapshots::short_id(&s.id),
                    s.snapshot.time,
                    server_time.to_rfc3339()
                ));
                s.snapshot.time = server_time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            }
        }
    }
    let mut labels: Vec<String> = all.iter().map(|s| s.snapshot.source_label.clone()).collect();
    labels.sort();
    labels.dedup();
    let now = chrono::Utc::now();
    let writers = match receipts_trusted {
        true => snapshot_writers(repo)?,
        false => HashMap::new(),
    };
    let mut flood = FloodReport::default();
    let mut decisions = Vec::new();
    for label in labels {
        if opts.source.as_ref().is_some_and(|l| *l != label) {
            continue;
        }
        let policy = policy_for(&label)?;
        if policy.is_empty() {
            return Err(EngineError::InvalidSetting(format!(
                "no retention rules apply to source `{label}`; set `retention:` (keep_daily, ...) or prune would delete every snapshot"
            )));
        }
        let group: Vec<_> = all.iter().filter(|s| s.snapshot.source_label == label).cloned().collect();
        if receipts_trusted {
            flood.check(&policy, &group, &writers, now);
        }
        decisions.extend(apply(&policy, &group, now));
    }
    let refused = !flood.held.is_empty() && !opts.force;
    let mut deleted = 0;
    if let Some(lock) = lock.as_ref().filter(|_| !refused) {
        for d in decisions.iter().filter(|d| !d.keep) {
            lock.check_alive()?;
            let id = SnapshotId::from_hex(&d.id)?;
            repo.storage().delete(&id.storage_key())?;
            deleted += 1;
        }
    }
    let kept = decisions.iter().filter(|d| d.keep).count();
    Ok(PruneReport { decisions, deleted, kept, dry_run: opts.dry_run, time_disagreements, flood, refused })
}

/// Who wrote each snapshot, as the storage recorded it (vger-server).
fn snapshot_writers(repo: &Repository) -> Result<HashMap<SnapshotId, String>> {
    Ok(repo
        .storage()
        .list(SNAPSHOTS_PREFIX)?
        .into_iter()
        .filter_map(|o| Some((SnapshotId::from_storage_key(&o.key)?, o.writer?)))
        .collect())
}
