//! The daemon's loop: wakes at the earliest due repository (re-checking
//! the wall clock and the signal flags at least every quarter second, so a
//! clock jump or a signal is noticed at once and no sleep lasts hours),
//! runs the default cycle for one due repository at a time, records and
//! announces the result, and reschedules it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vger_config::{Config, NotifyEvent, RepositoryConfig};

use super::log::{say, LogTail};
use super::notify::{one_line_summary, snapshot_digest, Notifier, Report};
use super::plan::{Job, Plan, RunReason};
use super::schedule::Schedule;
use super::signals::SignalFlags;
use super::status::{RepoStatus, RunRecord, StatusBoard};
use crate::context::Context;
use crate::Outcome;
use vger_app::cycle::CycleSummary;

/// The longest single sleep.
const STEP: Duration = Duration::from_millis(250);
/// A disagreement between the wall clock and the monotonic clock beyond
/// this is a clock change (or, forwards, a suspended machine).
const CLOCK_SLACK_SECONDS: i64 = 2;
/// A run starting this late after its due time is reported as a catch-up.
const LATE_SECONDS: i64 = 30;
/// Lines of the cycle's log sent with a notification.
const TAIL_LINES: usize = 60;

pub struct Scheduler {
    ctx: Context,
    plan: Plan,
    signals: SignalFlags,
    board: StatusBoard,
    notifier: Notifier,
    tail: LogTail,
    hostname: String,
}

impl Scheduler {
    pub fn new(
        ctx: Context,
        scheduled: Vec<(RepositoryConfig, Schedule)>,
        signals: SignalFlags,
        board: StatusBoard,
        tail: LogTail,
    ) -> Scheduler {
        let plan = Plan::new(scheduled, |repo| last_run(&ctx.app.config, repo), Utc::now(), true);
        let hostname = board.lock().hostname.clone();
        let scheduler = Scheduler { ctx, plan, signals, board, notifier: Notifier::start(), tail, hostname };
        scheduler.refresh_repositories();
        scheduler.publish_plan();
        scheduler
    }

    /// Runs until SIGTERM or SIGINT; a cycle in progress is finished first.
    pub fn run(mut self) -> Outcome {
        for job in &self.plan.jobs {
            say(format!("{}: {}; next run {}", job.repo.label(), job.schedule.text, describe_due(job)));
        }
        let mut last_wall = Utc::now();
        let mut last_tick = Instant::now();
        loop {
            if self.signals.stop_requested() {
                say("stopping (signal received)");
                break;
            }
            if self.signals.take_reload() {
                self.reload();
            }
            if self.signals.take_run_now() {
                say("SIGUSR1: running every scheduled repository now");
                self.plan.run_all_now();
                self.publish_plan();
            }
            let now = Utc::now();
            self.watch_clock(now - last_wall, last_tick.elapsed(), now);
            last_wall = now;
            last_tick = Instant::now();
            if let Some(index) = self.plan.first_due(now) {
                self.run_job(index);
                continue;
            }
            let wait = self.plan.next_due().and_then(|due| (due - now).to_std().ok()).unwrap_or(STEP);
            std::thread::sleep(wait.clamp(Duration::from_millis(5), STEP));
        }
        self.notifier.finish(Duration::from_secs(15));
        say("stopped");
        Outcome::Ok
    }

    /// Compares how far the wall clock and the monotonic clock moved since the last tick.
    fn watch_clock(&mut self, wall: chrono::Duration, monotonic: Duration, now: DateTime<Utc>) {
        let drift = wall - chrono::Duration::from_std(monotonic).unwrap_or_default();
        if drift < chrono::Duration::seconds(-CLOCK_SLACK_SECONDS) {
            say(format!("the clock moved back by {}s; the timetable moves with it", -drift.num_seconds()));
            self.plan.clock_moved_back(-drift, now);
            self.publish_plan();
        } else if drift > chrono::Duration::seconds(CLOCK_SLACK_SECONDS) {
            say(format!(
                "the clock moved forward by {}s (clock change or the machine slept); missed runs run once now",
                drift.num_seconds()
            ));
        }
    }

    fn run_job(&mut self, index: usize) {
        let Some(job) = self.plan.jobs.get(index).cloned() else { return };
        let label = job.repo.label().to_string();
        let started_at = Utc::now();
        let mut reason = job.current_reason(started_at);
        if reason == RunReason::Schedule && (started_at - job.due).num_seconds() > LATE_SECONDS {
            reason = RunReason::CatchUp;
        }
        say(format!("{label}: cycle starts ({})", reason_text(reason)));
        self.board.lock().running = Some(label.clone());
        let cache = self.ctx.app.config.cache_dir.clone();
        let mut state = vger_app::state::load(cache.as_ref(), &job.repo);
        state.daemon_last_run = Some(started_at.to_rfc3339());
        vger_app::state::save(cache.as_ref(), &job.repo, &state);
        let start_report = self.report(&job.repo, "running", String::new(), serde_json::json!({}));
        self.notifier.send(self.ctx.app.config.effective_notify(&job.repo), NotifyEvent::Start, &start_report);

        let mark = self.tail.mark();
        let clock = Instant::now();
        let summary = self.ctx.app.cycle(&job.repo, &crate::frontend::Printer::new(false, true));
        crate::limits::trim_heap();
        let duration = clock.elapsed().as_secs_f64();
        let finished_at = Utc::now();
        let outcome = summary.outcome();
        for step in &summary.steps {
            let detail = if step.detail.is_empty() { String::new() } else { format!(": {}", step.detail) };
            say(format!("{label}: {} {} in {:.1}s{detail}", step.step, step.status, step.seconds));
        }
        self.plan.after_run(index, finished_at);
        let state = vger_app::state::load(cache.as_ref(), &job.repo);
        let run = RunRecord {
            reason,
            scheduled_for: job.slot,
            started_at,
            finished_at,
            duration_seconds: duration,
            outcome,
            steps: summary.steps.clone(),
        };
        let sources: Vec<String> = self.ctx.app.config.sources_for(&job.repo).iter().map(|s| s.label()).collect();
        {
            let mut board = self.board.lock();
            board.running = None;
            board.cycles += 1;
            if let Some(r) = board.repositories.iter_mut().find(|r| r.label == label && r.url == job.repo.url) {
                r.record(run.clone(), &summary, &sources);
                r.consecutive_failures = state.consecutive_failures;
                r.last_success = state.last_success.clone();
            }
        }
        self.publish_plan();
        let next = self.plan.jobs.get(index).map(describe_due).unwrap_or_default();
        say(format!("{label}: cycle {outcome} in {duration:.1}s; next run {next}"));

        let log_tail = self.tail.since(mark, TAIL_LINES);
        let document = cycle_document(&run, &summary, state.consecutive_failures, &log_tail);
        let report = self.report(&job.repo, outcome, one_line_summary(&label, &summary), document);
        let event = if outcome == "failed" { NotifyEvent::Failure } else { NotifyEvent::Success };
        self.notifier.send(self.ctx.app.config.effective_notify(&job.repo), event, &report);
    }

    fn report(&self, repo: &RepositoryConfig, outcome: &str, summary: String, extra: serde_json::Value) -> Report {
        Report::new(repo, &self.hostname, outcome, summary, extra)
    }

    /// SIGHUP: a config that does not load or would not let the daemon
    /// start is logged and the running one kept.
    fn reload(&mut self) {
        say(format!("SIGHUP: reloading {}", self.ctx.app.config_path.display()));
        let loaded = Config::load(Some(&self.ctx.app.config_path)).map_err(anyhow::Error::from);
        let checked = loaded.and_then(|loaded| {
            let mut ctx = self.ctx.clone();
            ctx.app.config = loaded.config;
            let scheduled = super::preflight::scheduled_repositories(&ctx)?;
            Ok((ctx, scheduled))
        });
        match checked {
            Err(e) => {
                let message = crate::one_line(&e);
                say(format!("reload refused, the running configuration stays: {message}"));
                self.board.lock().last_reload_error = Some(message);
            }
            Ok((ctx, scheduled)) => {
                let fresh = Plan::new(scheduled, |repo| last_run(&ctx.app.config, repo), Utc::now(), false);
                self.plan = self.plan.merge_reloaded(fresh);
                self.ctx = ctx;
                {
                    let mut board = self.board.lock();
                    board.reloads += 1;
                    board.last_reload_error = None;
                }
                self.refresh_repositories();
                self.publish_plan();
                say(format!("configuration reloaded: {} scheduled repositories", self.plan.jobs.len()));
                for job in &self.plan.jobs {
                    say(format!("{}: {}; next run {}", job.repo.label(), job.schedule.text, describe_due(job)));
                }
            }
        }
    }

    /// Lists the planned repositories on the board, keeping what is known
    /// about those that were already there.
    fn refresh_repositories(&self) {
        let mut board = self.board.lock();
        let old = std::mem::take(&mut board.repositories);
        for job in &self.plan.jobs {
            let label = job.repo.label();
            let mut entry = old
                .iter()
                .find(|r| r.label == label && r.url == job.repo.url)
                .cloned()
                .unwrap_or_else(|| RepoStatus::new(label, &job.repo.url, &job.schedule.text));
            entry.schedule = job.schedule.text.clone();
            let state = vger_app::state::load(self.ctx.app.config.cache_dir.as_ref(), &job.repo);
            entry.consecutive_failures = state.consecutive_failures;
            entry.last_success = state.last_success;
            board.repositories.push(entry);
        }
    }

    /// Shows each job's next run on the board and records it in the state file.
    fn publish_plan(&self) {
        let cache = self.ctx.app.config.cache_dir.as_ref();
        for job in &self.plan.jobs {
            let reason = if job.run_now { RunReason::Signal } else { job.reason };
            self.board.with_repo(job.repo.label(), |r| {
                r.next_run = Some(if job.run_now { Utc::now() } else { job.due });
                r.next_run_reason = Some(reason);
            });
            let mut state = vger_app::state::load(cache, &job.repo);
            let next = job.due.to_rfc3339();
            if state.daemon_next_run.as_deref() != Some(next.as_str()) {
                state.daemon_next_run = Some(next);
                vger_app::state::save(cache, &job.repo, &state);
            }
        }
    }
}

fn last_run(config: &Config, repo: &RepositoryConfig) -> Option<DateTime<Utc>> {
    let state = vger_app::state::load(config.cache_dir.as_ref(), repo);
    let last = state.daemon_last_run?;
    DateTime::parse_from_rfc3339(&last).ok().map(|t| t.with_timezone(&Utc))
}

fn describe_due(job: &Job) -> String {
    if job.run_now {
        return "now (SIGUSR1)".to_string();
    }
    let wait = (job.due - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0;
    format!("at {} (in {wait:.1}s, {})", job.due.to_rfc3339(), reason_text(job.reason))
}

fn reason_text(reason: RunReason) -> &'static str {
    match reason {
        RunReason::Schedule => "scheduled",
        RunReason::CatchUp => "catching up a missed run",
        RunReason::Startup => "on startup",
        RunReason::Signal => "SIGUSR1",
    }
}

/// The JSON a notification carries about a finished cycle.
fn cycle_document(run: &RunRecord, summary: &CycleSummary, failures: u64, log_tail: &str) -> serde_json::Value {
    let snapshots = snapshot_digest(summary);
    serde_json::json!({
        "reason": run.reason,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": run.duration_seconds,
        "consecutive_failures": failures,
        "steps": run.steps,
        "snapshots": snapshots,
        "log_tail": log_tail,
    })
}
