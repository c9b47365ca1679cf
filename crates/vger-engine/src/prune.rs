//! `snapshot delete` and `prune`: removing snapshot objects. The space
//! they held is freed by `compact`.

use serde::Serialize;
use vger_format::id::SnapshotId;

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
    if repo.storage().receipt_times_trusted() {
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
        decisions.extend(apply(&policy, &group, now));
    }
    let mut deleted = 0;
    if let Some(lock) = &lock {
        for d in decisions.iter().filter(|d| !d.keep) {
            lock.check_alive()?;
            let id = SnapshotId::from_hex(&d.id)?;
            repo.storage().delete(&id.storage_key())?;
            deleted += 1;
        }
    }
    let kept = decisions.iter().filter(|d| d.keep).count();
    Ok(PruneReport { decisions, deleted, kept, dry_run: opts.dry_run, time_disagreements })
}
