//! Compact and check of a repository, with progress, cancellation and
//! their reports sent to the front end.

use vger_config::{HookCommand, RepositoryConfig};
use vger_engine::check::{check, CheckOptions, CheckReport};
use vger_engine::compact::{compact, CompactOptions, CompactReport};

use crate::events::{monitored, progress_for, Event, FrontEnd, Operation, Subject};
use crate::{App, AppError};

impl App {
    /// Frees the space of unused chunks; the report goes to `front` as
    /// [`Event::Compacted`]. Cancelled, it stops before deleting anything
    /// it has not replaced.
    pub fn compact(
        &self,
        repo: &RepositoryConfig,
        opts: &CompactOptions,
        front: &dyn FrontEnd,
    ) -> Result<CompactReport, AppError> {
        let opened = self.open(repo)?;
        let progress = progress_for(front);
        let subject = Subject { operation: Operation::Compact, repository: repo.label(), source: None };
        let report = monitored(front, &progress, subject, || compact(&opened, opts, &progress))?;
        front.event(&Event::Compacted { repository: repo.label(), report: &report });
        Ok(report)
    }

    /// Checks `repo`; the report goes to `front` as [`Event::Checked`],
    /// and a repository with problems is [`AppError::Damaged`].
    pub fn check(
        &self,
        repo: &RepositoryConfig,
        opts: &CheckOptions,
        front: &dyn FrontEnd,
    ) -> Result<CheckReport, AppError> {
        let opened = self.open(repo)?;
        let progress = progress_for(front);
        let subject = Subject { operation: Operation::Check, repository: repo.label(), source: None };
        let report = monitored(front, &progress, subject, || check(&opened, opts, &progress))?;
        front.event(&Event::Checked {
            repository: repo.label(),
            report: &report,
            verify_data: opts.verify_data,
            distrust_server: opts.distrust_server,
        });
        if !report.is_ok() {
            return Err(AppError::Damaged { errors: report.errors.len(), snapshots: report.damaged_snapshots.len() });
        }
        Ok(report)
    }

    /// [`App::compact`] inside the compact hooks.
    pub fn compact_with_hooks(
        &self,
        repo: &RepositoryConfig,
        opts: &CompactOptions,
        front: &dyn FrontEnd,
    ) -> Result<CompactReport, AppError> {
        self.in_hooks(repo, HookCommand::Compact, front, || self.compact(repo, opts, front))
    }

    /// [`App::check`] inside the check hooks.
    pub fn check_with_hooks(
        &self,
        repo: &RepositoryConfig,
        opts: &CheckOptions,
        front: &dyn FrontEnd,
    ) -> Result<CheckReport, AppError> {
        self.in_hooks(repo, HookCommand::Check, front, || self.check(repo, opts, front))
    }
}
