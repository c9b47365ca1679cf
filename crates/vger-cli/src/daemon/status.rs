//! What the daemon knows about itself and each repository: shared between
//! the scheduler (which writes it) and the HTTP server (which renders it as
//! the status page, `/api/status.json` and `/metrics`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::plan::RunReason;
use vger_app::cycle::{CycleSummary, Step, StepResult, StepStatus};

/// How many snapshots each repository lists as recent.
const RECENT_SNAPSHOTS: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub version: &'static str,
    pub pid: u32,
    pub hostname: String,
    pub config: String,
    pub started_at: DateTime<Utc>,
    /// The repository whose cycle is running, if any.
    pub running: Option<String>,
    /// Cycles run since the daemon started (one per repository run).
    pub cycles: u64,
    pub reloads: u64,
    /// The error of the last SIGHUP reload that was refused.
    pub last_reload_error: Option<String>,
    pub repositories: Vec<RepoStatus>,
    /// Where `--mount` serves the snapshots.
    pub mount_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoStatus {
    pub label: String,
    pub url: String,
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    pub next_run_reason: Option<RunReason>,
    pub last_run: Option<RunRecord>,
    /// When a backup last succeeded (from the state file, so also across restarts).
    pub last_success: Option<String>,
    /// Failed backups in a row (the number hooks see as `{consecutive_failures}`).
    pub consecutive_failures: u64,
    pub cycles: u64,
    pub failed_cycles: u64,
    /// Snapshots this daemon made since it started.
    pub snapshots_created: u64,
    pub sources: Vec<SourceStatus>,
    /// The newest first.
    pub recent_snapshots: VecDeque<SnapshotBrief>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub reason: RunReason,
    /// The slot this run belongs to (before jitter).
    pub scheduled_for: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// ok, partial (files were skipped) or failed.
    pub outcome: &'static str,
    pub steps: Vec<StepResult>,
}

/// The last backup of one source into one repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    pub label: String,
    /// ok, partial or failed.
    pub last_outcome: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_duration_seconds: Option<f64>,
    pub last_snapshot: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub added_bytes: u64,
    pub added_stored: u64,
    /// Files skipped in the last backup.
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotBrief {
    pub id: String,
    pub source: String,
    pub time: String,
    pub files: u64,
    pub bytes: u64,
    pub added_bytes: u64,
}

impl RepoStatus {
    pub fn new(label: &str, url: &str, schedule: &str) -> Self {
        RepoStatus {
            label: label.to_string(),
            url: url.to_string(),
            schedule: schedule.to_string(),
            next_run: None,
            next_run_reason: None,
            last_run: None,
            last_success: None,
            consecutive_failures: 0,
            cycles: 0,
            failed_cycles: 0,
            snapshots_created: 0,
            sources: Vec::new(),
            recent_snapshots: VecDeque::new(),
        }
    }

    /// Records a finished cycle; `sources` are the labels that go to this repository.
    pub fn record(&mut self, run: RunRecord, summary: &CycleSummary, sources: &[String]) {
        self.cycles += 1;
        if run.outcome == "failed" {
            self.failed_cycles += 1;
        }
        let backup_status =
            summary.steps.iter().find(|s| s.step == Step::Backup).map_or(StepStatus::Failed, |s| s.status);
        for label in sources {
            let made = summary.snapshots.iter().find(|m| &m.source_label == label);
            if !self.sources.iter().any(|s| &s.label == label) {
                self.sources.push(SourceStatus { label: label.clone(), ..Default::default() });
            }
            let Some(entry) = self.sources.iter_mut().find(|s| &s.label == label) else { continue };
            let Some(made) = made else {
                entry.last_outcome = "failed".into();
                continue;
            };
            let snapshot = &made.report.snapshot;
            let stats = &snapshot.stats;
            entry.last_outcome =
                if stats.errors > 0 || backup_status == StepStatus::Partial { "partial" } else { "ok" }.into();
            entry.last_success = Some(run.finished_at);
            entry.last_duration_seconds = duration(&snapshot.time, &snapshot.end_time);
            entry.last_snapshot = Some(vger_engine::snapshots::short_id(&made.report.snapshot_id));
            entry.files = stats.files;
            entry.bytes = stats.bytes;
            entry.added_bytes = stats.added_bytes;
            entry.added_stored = stats.added_stored;
            entry.errors = stats.errors;
            self.snapshots_created += 1;
            self.recent_snapshots.push_front(SnapshotBrief {
                id: entry.last_snapshot.clone().unwrap_or_default(),
                source: label.clone(),
                time: snapshot.time.clone(),
                files: entry.files,
                bytes: entry.bytes,
                added_bytes: entry.added_bytes,
            });
        }
        self.sources.retain(|s| sources.contains(&s.label));
        self.recent_snapshots.truncate(RECENT_SNAPSHOTS);
        self.last_run = Some(run);
    }
}

fn duration(start: &str, end: &str) -> Option<f64> {
    let parse = |v: &str| DateTime::parse_from_rfc3339(v).ok();
    let seconds = (parse(end)? - parse(start)?).num_milliseconds() as f64 / 1000.0;
    (seconds >= 0.0).then_some(seconds)
}

/// The status behind a lock, cheap to clone.
#[derive(Clone)]
pub struct StatusBoard(Arc<Mutex<DaemonStatus>>);

impl StatusBoard {
    pub fn new(status: DaemonStatus) -> Self {
        StatusBoard(Arc::new(Mutex::new(status)))
    }

    /// The status for writing; a panic elsewhere never makes it unreadable.
    pub fn lock(&self) -> MutexGuard<'_, DaemonStatus> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> DaemonStatus {
        self.lock().clone()
    }

    /// Runs `f` on the repository labelled `label`, if it is listed.
    pub fn with_repo(&self, label: &str, f: impl FnOnce(&mut RepoStatus)) {
        if let Some(r) = self.lock().repositories.iter_mut().find(|r| r.label == label) {
            f(r);
        }
    }
}
