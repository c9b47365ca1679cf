//! `vger` with no subcommand: the default cycle of the application layer
//! (backup, then prune and compact unless the backup failed, then check
//! when due) for every repository, its notifications, and a summary
//! table. Exit code 0 when everything succeeded, 3 when a backup skipped
//! files, 1 when a step failed.

use std::time::{Duration, Instant};

use anyhow::Result;
use vger_app::cycle::{CycleSummary, StepStatus};
use vger_config::{NotifyEvent, RepositoryConfig};

use crate::context::Context;
use crate::daemon::notify::{one_line_summary, snapshot_digest, Notifier, Report};
use crate::frontend::Printer;
use crate::Outcome;

pub fn run(ctx: &Context) -> Result<Outcome> {
    let mut summaries = Vec::new();
    {
        // With --json, the steps report in text on stderr and stdout holds
        // only the summary document.
        let front = Printer::new(false, ctx.quiet);
        let _redirect = if ctx.json { crate::output::StdoutToStderr::start() } else { None };
        let repos = ctx.repositories()?;
        let config = &ctx.app.config;
        let notifier = repos.iter().any(|r| !config.effective_notify(r).is_empty()).then(Notifier::start);
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        for repo in repos {
            println!("== {} ({}) ==", repo.label(), repo.url);
            let targets = config.effective_notify(repo);
            if let Some(n) = &notifier {
                let start = Report::new(repo, &hostname, "running", String::new(), serde_json::json!({}));
                n.send(targets, NotifyEvent::Start, &start);
            }
            let clock = Instant::now();
            let summary = ctx.app.cycle(repo, &front);
            if let Some(n) = &notifier {
                n.send(targets, finished_event(&summary), &finished_report(ctx, repo, &hostname, &summary, clock));
            }
            summaries.push(summary);
        }
        if let Some(n) = notifier {
            n.finish(NOTIFY_GRACE);
        }
    }
    let statuses: Vec<StepStatus> = summaries.iter().flat_map(|s| s.steps.iter().map(|st| st.status)).collect();
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
    if statuses.contains(&StepStatus::Failed) {
        anyhow::bail!("some steps failed (see the table above)");
    }
    Ok(if statuses.contains(&StepStatus::Partial) { Outcome::Partial } else { Outcome::Ok })
}

/// How long the default run waits for notifications still queued at its end.
const NOTIFY_GRACE: Duration = Duration::from_secs(40);

fn finished_event(summary: &CycleSummary) -> NotifyEvent {
    if summary.outcome() == "failed" {
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
    summary: &CycleSummary,
    clock: Instant,
) -> Report {
    let outcome = summary.outcome();
    let failures = vger_app::state::load(ctx.app.config.cache_dir.as_ref(), repo).consecutive_failures;
    let document = serde_json::json!({
        "reason": "run",
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "consecutive_failures": failures,
        "steps": summary.steps,
        "snapshots": snapshot_digest(summary),
    });
    Report::new(repo, hostname, outcome, one_line_summary(repo.label(), summary), document)
}
