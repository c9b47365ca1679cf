//! What the daemon knows about itself and each repository: shared between
//! the scheduler (which writes it) and the HTTP server (which renders it as
//! the status page, `/api/status.json` and `/metrics`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::plan::RunReason;
use crate::commands::run::{RepoSummary, StepResult};

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
    pub fn record(&mut self, run: RunRecord, summary: &RepoSummary, sources: &[String]) {
        self.cycles += 1;
        if run.outcome == "failed" {
            self.failed_cycles += 1;
        }
        let backup_status = summary.steps.iter().find(|s| s.step == "backup").map_or("failed", |s| s.status);
        for label in sources {
            let report = summary.snapshots.iter().find(|r| r["source_label"].as_str() == Some(label.as_str()));
            if !self.sources.iter().any(|s| &s.label == label) {
                self.sources.push(SourceStatus { label: label.clone(), ..Default::default() });
            }
            let Some(entry) = self.sources.iter_mut().find(|s| &s.label == label) else { continue };
            let Some(report) = report else {
                entry.last_outcome = "failed".into();
                continue;
            };
            let stats = &report["stats"];
            let n = |k: &str| stats[k].as_u64().unwrap_or(0);
            entry.last_outcome = if n("errors") > 0 || backup_status == "partial" { "partial" } else { "ok" }.into();
            entry.last_success = Some(run.finished_at);
            entry.last_duration_seconds = duration(&report["time"], &report["end_time"]);
            entry.last_snapshot = report["short_id"].as_str().map(str::to_string);
            entry.files = n("files");
            entry.bytes = n("bytes");
            entry.added_bytes = n("added_bytes");
            entry.added_stored = n("added_stored");
            entry.errors = n("errors");
            self.snapshots_created += 1;
            self.recent_snapshots.push_front(SnapshotBrief {
                id: entry.last_snapshot.clone().unwrap_or_default(),
                source: label.clone(),
                time: report["time"].as_str().unwrap_or_default().to_string(),
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

fn duration(start: &serde_json::Value, end: &serde_json::Value) -> Option<f64> {
    let parse = |v: &serde_json::Value| DateTime::parse_from_rfc3339(v.as_str()?).ok();
    let seconds = (parse(end)? - parse(start)?).num_milliseconds() as f64 / 1000.0;
    (seconds >= 0.0).then_some(seconds)
}

/// The outcome of a cycle from its steps.
pub fn outcome(steps: &[StepResult]) -> &'static str {
    if steps.iter().any(|s| s.status == "failed") {
        "failed"
    } else if steps.iter().any(|s| s.status == "partial") {
        "partial"
    } else {
        "ok"
    }
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
