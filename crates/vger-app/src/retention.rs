//! Retention: the rules of `vger.yaml` as the engine's policy (the
//! source's own `retention`, else the repository's, else the top level
//! one), and prune, which applies them.

use vger_config::{Config, HookCommand, RepositoryConfig, RetentionConfig};
use vger_engine::prune::{prune, PruneOptions, PruneReport};
use vger_engine::retention::{RetentionPolicy, Within};
use vger_engine::EngineError;

use crate::events::{Event, FrontEnd};
use crate::{App, AppError};

/// The engine's policy for one `retention` block.
pub fn policy(c: &RetentionConfig) -> Result<RetentionPolicy, AppError> {
    let keep_within = match &c.keep_within {
        Some(w) => Some(Within::parse(w).ok_or_else(|| AppError::KeepWithin(w.clone()))?),
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

/// The policy for the snapshots of source `label` in `repo`; keeps
/// everything when no level has rules.
pub fn policy_for(config: &Config, repo: &RepositoryConfig, label: &str) -> Result<RetentionPolicy, AppError> {
    let source = config.sources().iter().find(|s| s.label() == label);
    match config.effective_retention(repo, source) {
        Some(r) => policy(&r),
        None => Ok(RetentionPolicy::default()),
    }
}

/// Whether any level of the config has retention rules for `repo`.
pub fn has_rules(config: &Config, repo: &RepositoryConfig) -> bool {
    config.retention.is_some() || repo.retention.is_some() || config.sources().iter().any(|s| s.retention.is_some())
}

impl App {
    /// Deletes the snapshots of `repo` no rule keeps (none with
    /// `dry_run`); the report goes to `front` as [`Event::Pruned`].
    pub fn prune(
        &self,
        repo: &RepositoryConfig,
        opts: &PruneOptions,
        front: &dyn FrontEnd,
    ) -> Result<PruneReport, AppError> {
        let opened = self.open(repo)?;
        let lookup =
            |label: &str| policy_for(&self.config, repo, label).map_err(|e| EngineError::InvalidSetting(e.to_string()));
        let report = prune(&opened, &lookup, opts)?;
        front.event(&Event::Pruned { repository: repo.label(), report: &report });
        if report.refused && !report.dry_run {
            return Err(AppError::PruneHeldBack {
                repository: repo.label().to_string(),
                held: report.flood.held.len(),
            });
        }
        Ok(report)
    }

    /// [`App::prune`] inside the prune hooks.
    pub fn prune_with_hooks(
        &self,
        repo: &RepositoryConfig,
        opts: &PruneOptions,
        front: &dyn FrontEnd,
    ) -> Result<PruneReport, AppError> {
        self.in_hooks(repo, HookCommand::Prune, front, || self.prune(repo, opts, front))
    }
}
