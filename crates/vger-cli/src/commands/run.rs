//! `vger` with no subcommand: the default cycle for every repository —
//! backup, then prune and compact (only if the backup did not fail), then
//! check when due — and a summary table. Exit code 0 when everything
//! succeeded, 3 when a backup skipped files, 1 when a step failed.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use vger_config::{HookCommand, NotifyEvent, PeriodUnit, RepositoryConfig};

use crate::cli::{BackupArgs, CheckArgs, PruneArgs};
use crate::context::Context;
use crate::daemon::notify::{one_line_summary, snapshot_digest, Notifier, Report};
use crate::Outcome;

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: &'static str,
    /// ok, partial, failed or skipped.
    pub status: &'static str,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoSummary {
    pub repository: String,
    pub steps: Vec<StepResult>,
    /// The backup report of each source that got a snapshot (as `vger --json backup` prints it).
    #[serde(skip)]
    pub snapshots: Vec<serde_json::Value>,
}

fn timed(step: &'static str, f: impl FnOnce() -> Result<Outcome>) -> StepResult {
    let start = Instant::now();
    let r = f();
    let seconds = start.elapsed().as_secs_f64();
    match r {
        Ok(Outcome::Ok) => StepResult { step, status: "ok", seconds, detail: String::new() },
        Ok(Outcome::Partial) => {
            StepResult { step, status: "partial", seconds, detail: "some files were skipped".into() }
        }
        Err(e) => {
            let detail = crate::one_line(&e);
            eprintln!("vger: error: {step}: {detail}");
            StepResult { step, status: "failed", seconds, detail }
        }
    }
}

fn skipped(step: &'static str, why: &str) -> StepResult {
    StepResult { step, status: "skipped", seconds: 0.0, detail: why.to_string() }
}

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

/// What check to run now, if any: a full one when `full_every` has passed
/// since the last, else a partial one of `max_percent`.
fn check_due(ctx: &Context, repo: &RepositoryConfig) -> Option<CheckArgs> {
    let check = repo.check.as_ref().or(ctx.config.check.as_ref())?;
    let state = crate::state::load(ctx.config.cache_dir.as_ref(), repo);
    if let Some(every) = check.full_every.as_deref().and_then(period) {
        let last = state.last_full_check.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let due = last
            .is_none_or(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default() >= every);
        if due {
            return Some(CheckArgs {
                verify_data: true,
                max_percent: None,
                repair: false,
                yes: false,
                distrust_server: false,
            });
        }
    }
    check.max_percent.map(|p| CheckArgs {
        verify_data: true,
        max_percent: Some(f64::from(p)),
        repair: false,
        yes: false,
        distrust_server: false,
    })
}

pub fn run(ctx: &Context) -> Result<Outcome> {
    let mut summaries = Vec::new();
    {
        // With --json, the steps report in text on stderr and stdout holds
        // only the summary document.
        let mut steps_ctx = ctx.clone();
        steps_ctx.json = false;
        let _redirect = if ctx.json { crate::output::StdoutToStderr::start() } else { None };
        let repos = ctx.repositories()?;
        let notifier = repos.iter().any(|r| !ctx.config.effective_notify(r).is_empty()).then(Notifier::start);
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        for repo in repos {
            steps_ctx.heading(repo, 2);
            let targets = ctx.config.effective_notify(repo);
            if let Some(n) = &notifier {
                let start = Report::new(repo, &hostname, "running", String::new(), serde_json::json!({}));
                n.send(targets, NotifyEvent::Start, &start);
            }
            let clock = Instant::now();
            let summary = cycle(&steps_ctx, repo);
            if let Some(n) = &notifier {
                n.send(targets, finished_event(&summary), &finished_report(ctx, repo, &hostname, &summary, clock));
            }
            summaries.push(summary);
        }
        if let Some(n) = notifier {
            n.finish(NOTIFY_GRACE);
        }
    }
    let statuses: Vec<&str> = summaries.iter().flat_map(|s| s.steps.iter().map(|st| st.status)).collect();
    if ctx.json {
        crate::output::print_json(&summaries)?;
    } else {
        println!();
        println!("{:<20} {:<10} {:>9}  detail", "repository", "step", "seconds");
        for s in &summaries {
            for st in &s.steps {
                println!("{:<20} {:<10} {:>9.1}  {} {}", s.repository, st.step, st.seconds, st.status, st.detail);
            }
        }
    }
    if statuses.contains(&"failed") {
        anyhow::bail!("some steps failed (see the table above)");
    }
    Ok(if statuses.contains(&"partial") { Outcome::Partial } else { Outcome::Ok })
}

/// One repository's cycle.
pub fn cycle(ctx: &Context, repo: &RepositoryConfig) -> RepoSummary {
    let mut steps = Vec::new();
    let backup_args =
        BackupArgs { source: None, compression: None, time: None, no_parent: false, tags: Vec::new(), checkpoint: 30 };
    let mut json = Vec::new();
    let b = timed("backup", || super::backup::backup_repository(ctx, repo, &backup_args, &mut json));
    let backup_failed = b.status == "failed";
    steps.push(b);
    let has_retention = ctx.config.retention.is_some()
        || repo.retention.is_some()
        || ctx.config.sources().iter().any(|s| s.retention.is_some());
    if backup_failed {
        steps.push(skipped("prune", "the backup failed: nothing is deleted"));
        steps.push(skipped("compact", "the backup failed"));
    } else if !has_retention {
        steps.push(skipped("prune", "no retention rules"));
        steps.push(timed("compact", || compact(ctx, repo)));
    } else {
        let p = timed("prune", || {
            super::with_hooks(ctx, repo, HookCommand::Prune, false, |_| {
                super::prune::prune_repository(ctx, repo, &PruneArgs { dry_run: false, source: None })
            })
        });
        let prune_failed = p.status == "failed";
        steps.push(p);
        if prune_failed {
            steps.push(skipped("compact", "prune failed"));
        } else {
            steps.push(timed("compact", || compact(ctx, repo)));
        }
    }
    match check_due(ctx, repo) {
        None => steps.push(skipped("check", "not due (set check.max_percent or check.full_every)")),
        Some(args) => {
            let full = args.max_percent.is_none();
            let c = timed("check", || {
                super::with_hooks(ctx, repo, HookCommand::Check, false, |_| {
                    super::check::check_repository(ctx, repo, &args)
                })
            });
            if full && c.status == "ok" {
                let cache = ctx.config.cache_dir.as_ref();
                let mut state = crate::state::load(cache, repo);
                state.last_full_check = Some(chrono::Utc::now().to_rfc3339());
                crate::state::save(cache, repo, &state);
            }
            steps.push(c);
        }
    }
    RepoSummary { repository: repo.label().to_string(), steps, snapshots: json }
}

/// How long the default run waits for notifications still queued at its end.
const NOTIFY_GRACE: Duration = Duration::from_secs(40);

fn finished_event(summary: &RepoSummary) -> NotifyEvent {
    if crate::daemon::status::outcome(&summary.steps) == "failed" {
        NotifyEvent::Failure
    } else {
        NotifyEvent::Success
    }
}

/// The notification sent when a repository's cycle of the default run ends.
fn finished_report(
    ctx: &Context,
    repo: &RepositoryConfig,
    hostname: &str,
    summary: &RepoSummary,
    clock: Instant,
) -> Report {
    let outcome = crate::daemon::status::outcome(&summary.steps);
    let failures = crate::state::load(ctx.config.cache_dir.as_ref(), repo).consecutive_failures;
    let document = serde_json::json!({
        "reason": "run",
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "consecutive_failures": failures,
        "steps": summary.steps,
        "snapshots": snapshot_digest(summary),
    });
    Report::new(repo, hostname, outcome, one_line_summary(repo.label(), summary), document)
}

fn compact(ctx: &Context, repo: &RepositoryConfig) -> Result<Outcome> {
    let opts = vger_engine::compact::CompactOptions::default();
    super::with_hooks(ctx, repo, HookCommand::Compact, false, |_| super::compact::compact_repository(ctx, repo, &opts))
}
