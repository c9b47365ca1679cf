//! The default cycle of one repository (`vger` with no command, and each
//! run of the daemon): backup, then prune and compact (only if the backup
//! did not fail), then check when due. Each step runs in its hooks, and a
//! failed step is recorded, not propagated: the summary says how each
//! went.

use std::time::{Duration, Instant};

use serde::Serialize;
use vger_config::{PeriodUnit, RepositoryConfig};
use vger_engine::check::CheckOptions;
use vger_engine::compact::CompactOptions;
use vger_engine::prune::PruneOptions;

use crate::backup::{BackupRequest, SnapshotMade};
use crate::events::{Event, FrontEnd};
use crate::{App, AppError, Outcome};

/// A step of the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Backup,
    Prune,
    Compact,
    Check,
    Copy,
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    /// Finished, but files were skipped.
    Partial,
    Failed,
    /// Not run (the reason is the detail).
    Skipped,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Backup => "backup",
            Step::Prune => "prune",
            Step::Compact => "compact",
            Step::Check => "check",
            Step::Copy => "copy",
        }
    }
}

impl StepStatus {
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Partial => "partial",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: Step,
    pub status: StepStatus,
    pub seconds: f64,
    /// Why it failed or was skipped, in the front end's words.
    pub detail: String,
}

/// One repository's cycle.
#[derive(Debug, Clone, Serialize)]
pub struct CycleSummary {
    pub repository: String,
    pub steps: Vec<StepResult>,
    /// The snapshots the backup step made.
    #[serde(skip)]
    pub snapshots: Vec<SnapshotMade>,
}

impl CycleSummary {
    /// ok, partial (files were skipped) or failed.
    pub fn outcome(&self) -> &'static str {
        outcome(&self.steps)
    }
}

/// The outcome of a cycle from its steps: ok, partial or failed.
pub fn outcome(steps: &[StepResult]) -> &'static str {
    if steps.iter().any(|s| s.status == StepStatus::Failed) {
        "failed"
    } else if steps.iter().any(|s| s.status == StepStatus::Partial) {
        "partial"
    } else {
        "ok"
    }
}

/// Runs a step, times it and tells the front end how it ended.
fn timed<T>(
    front: &dyn FrontEnd,
    repo: &RepositoryConfig,
    step: Step,
    f: impl FnOnce() -> Result<T, AppError>,
    partial: impl FnOnce(&T) -> bool,
) -> StepResult {
    let start = Instant::now();
    let r = f();
    let seconds = start.elapsed().as_secs_f64();
    let result = match r {
        Ok(v) if partial(&v) => {
            StepResult { step, status: StepStatus::Partial, seconds, detail: "some files were skipped".into() }
        }
        Ok(_) => StepResult { step, status: StepStatus::Ok, seconds, detail: String::new() },
        Err(e) => StepResult { step, status: StepStatus::Failed, seconds, detail: front.describe(&e) },
    };
    front.event(&Event::StepEnded { repository: repo.label(), step: &result });
    result
}

/// For steps that cannot end partially.
fn never<T>(_: &T) -> bool {
    false
}

fn skipped(step: Step, why: &str) -> StepResult {
    StepResult { step, status: StepStatus::Skipped, seconds: 0.0, detail: why.to_string() }
}

/// A period of `check.full_every` (`30d`) as a duration; a month is 30
/// days and a year 365.
fn period(s: &str) -> Option<Duration> {
    let p = vger_config::parse_period(s).ok()?;
    let unit = match p.unit {
        PeriodUnit::Hours => 3600,
        PeriodUnit::Days => 86_400,
        PeriodUnit::Weeks => 7 * 86_400,
        PeriodUnit::Months => 30 * 86_400,
        PeriodUnit::Years => 365 * 86_400,
    };
    Some(Duration::from_secs(u64::from(p.count) * unit))
}

impl App {
    /// What check to run now, if any: a full data check when `full_every`
    /// has passed since the last, else a partial one of `max_percent`.
    pub fn check_due(&self, repo: &RepositoryConfig) -> Option<CheckOptions> {
        let check = repo.check.as_ref().or(self.config.check.as_ref())?;
        let state = crate::state::load(self.config.cache_dir.as_ref(), repo);
        if let Some(every) = check.full_every.as_deref().and_then(period) {
            let last = state.last_full_check.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let due = last.is_none_or(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default() >= every
            });
            if due {
                return Some(CheckOptions { verify_data: true, max_percent: None, distrust_server: false });
            }
        }
        check.max_percent.map(|p| CheckOptions {
            verify_data: true,
            max_percent: Some(f64::from(p)),
            distrust_server: false,
        })
    }

    /// Runs the cycle of `repo`. Cancelled, the running step stops at its
    /// next safe point and the steps after it are skipped.
    pub fn cycle(&self, repo: &RepositoryConfig, front: &dyn FrontEnd) -> CycleSummary {
        let mut steps = Vec::new();
        let mut made = Vec::new();
        let cancel = front.cancel_flag();
        let b = timed(
            front,
            repo,
            Step::Backup,
            || self.backup(repo, &BackupRequest::default(), front, &mut made),
            |o| *o == Outcome::Partial,
        );
        let backup_failed = b.status == StepStatus::Failed;
        steps.push(b);
        for target in &repo.copy_to {
            if backup_failed {
                steps.push(skipped(Step::Copy, &format!("to `{target}`: the backup failed")));
            } else if cancel.is_cancelled() {
                steps.push(skipped(Step::Copy, &format!("to `{target}`: cancelled")));
            } else {
                steps.push(timed(front, repo, Step::Copy, || self.copy_to_label(repo, target, front), never));
            }
        }
        if backup_failed {
            steps.push(skipped(Step::Prune, "the backup failed: nothing is deleted"));
            steps.push(skipped(Step::Compact, "the backup failed"));
        } else if !crate::retention::has_rules(&self.config, repo) {
            steps.push(skipped(Step::Prune, "no retention rules"));
            steps.push(self.compact_step(repo, front));
        } else {
            let opts = PruneOptions { dry_run: false, source: None, force: false };
            let p = timed(front, repo, Step::Prune, || self.prune_with_hooks(repo, &opts, front), never);
            let prune_failed = p.status == StepStatus::Failed;
            steps.push(p);
            if prune_failed {
                steps.push(skipped(Step::Compact, "prune failed"));
            } else {
                steps.push(self.compact_step(repo, front));
            }
        }
        match self.check_due(repo) {
            None => steps.push(skipped(Step::Check, "not due (set check.max_percent or check.full_every)")),
            Some(_) if cancel.is_cancelled() => steps.push(skipped(Step::Check, "cancelled")),
            Some(opts) => {
                let full = opts.max_percent.is_none();
                let c = timed(front, repo, Step::Check, || self.check_with_hooks(repo, &opts, front), never);
                if full && c.status == StepStatus::Ok {
                    crate::state::update(self.config.cache_dir.as_ref(), repo, |state| {
                        state.last_full_check = Some(chrono::Utc::now().to_rfc3339());
                    });
                }
                steps.push(c);
            }
        }
        CycleSummary { repository: repo.label().to_string(), steps, snapshots: made }
    }

    fn compact_step(&self, repo: &RepositoryConfig, front: &dyn FrontEnd) -> StepResult {
        let opts = CompactOptions::default();
        timed(front, repo, Step::Compact, || self.compact_with_hooks(repo, &opts, front), never)
    }
}
