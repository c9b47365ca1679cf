//! `vger prune`: applies the retention rules.

use anyhow::Result;
use vger_config::{Config, RepositoryConfig, RetentionConfig};
use vger_engine::prune::{prune, PruneOptions};
use vger_engine::retention::{RetentionPolicy, Within};

use crate::cli::PruneArgs;
use crate::context::Context;
use crate::output::short_time;
use crate::Outcome;

pub fn policy(c: &RetentionConfig) -> Result<RetentionPolicy> {
    let keep_within = match &c.keep_within {
        Some(w) => Some(
            Within::parse(w).ok_or_else(|| anyhow::anyhow!("keep_within `{w}`: use a number and h, d, w, m or y"))?,
        ),
        None => None,
    };
    Ok(RetentionPolicy {
        keep_last: c.keep_last,
        keep_hourly: c.keep_hourly,
        keep_daily: c.keep_daily,
        keep_weekly: c.keep_weekly,
        keep_monthly: c.keep_monthly,
        keep_yearly: c.keep_yearly,
        keep_within,
    })
}

/// The policy for a source label: the source's own `retention`, else the
/// repository's, else the top level one.
fn policy_for(config: &Config, repo: &RepositoryConfig, label: &str) -> Result<RetentionPolicy> {
    let source = config.sources().iter().find(|s| s.label() == label);
    match config.effective_retention(repo, source) {
        Some(r) => policy(&r),
        None => Ok(RetentionPolicy::default()),
    }
}

pub fn run(ctx: &Context, args: &PruneArgs) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        super::with_hooks(ctx, repo_cfg, vger_config::HookCommand::Prune, false, |_| {
            prune_repository(ctx, repo_cfg, args)
        })
    })
}

/// One repository, without hooks (the default run adds them).
pub fn prune_repository(ctx: &Context, repo_cfg: &vger_config::RepositoryConfig, args: &PruneArgs) -> Result<Outcome> {
    let repo = ctx.open(repo_cfg)?;
    let lookup = |label: &str| {
        policy_for(&ctx.config, repo_cfg, label).map_err(|e| vger_engine::EngineError::InvalidSetting(format!("{e:#}")))
    };
    let report = prune(&repo, &lookup, &PruneOptions { dry_run: args.dry_run, source: args.source.clone() })?;
    for w in &report.time_disagreements {
        eprintln!("vger: warning: {w}");
    }
    if ctx.json {
        crate::output::print_json(&report)?;
        return Ok(Outcome::Ok);
    }
    for d in &report.decisions {
        let verdict = if d.keep { format!("keep   ({})", d.reasons.join(", ")) } else { "delete".to_string() };
        println!("{} {} {:<16} {:<16} {verdict}", &d.id[..8], short_time(&d.time), d.source_label, d.hostname);
    }
    if report.dry_run {
        println!("dry run: {} would be deleted, {} kept", report.decisions.len() - report.kept, report.kept);
    } else {
        println!("deleted {} snapshots, kept {}; run `vger compact` to free the space", report.deleted, report.kept);
    }
    Ok(Outcome::Ok)
}
