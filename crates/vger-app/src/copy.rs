//! `vger copy`: snapshots of one repository of the config copied into
//! another. Each repository is opened with its own settings (passphrase,
//! storage limits); the engine's [`vger_engine::copy`] does the work.

use vger_config::RepositoryConfig;
use vger_engine::copy::{copy, CopyOptions, CopyReport};
use vger_engine::snapshots::{self, SnapshotInfo};

use crate::events::{monitored, progress_for, FrontEnd, Operation, Subject};
use crate::{App, AppError};

/// Which snapshots of the source repository to copy.
#[derive(Debug, Clone, Default)]
pub struct CopySelection {
    /// Only snapshots of this source label.
    pub source_label: Option<String>,
    /// Only the newest N (per the filter above), oldest first.
    pub last: Option<usize>,
    /// These snapshots (IDs, prefixes or `latest`) instead of all.
    pub ids: Vec<String>,
}

impl App {
    /// Copies the selected snapshots of `from` into `to`; snapshots the
    /// target already holds a copy of are skipped.
    pub fn copy(
        &self,
        from: &RepositoryConfig,
        to: &RepositoryConfig,
        selection: &CopySelection,
        opts: &CopyOptions,
        front: &dyn FrontEnd,
    ) -> Result<CopyReport, AppError> {
        if from.label() == to.label() {
            return Err(AppError::CopyToItself { repository: from.label().to_owned() });
        }
        let source = self.open(from)?;
        let target = self.open(to)?;
        let chosen = select(&source, selection)?;
        let progress = progress_for(front);
        let subject = Subject { operation: Operation::Copy, repository: to.label(), source: None };
        // As for a backup: the target's connections upload, the threads
        // limit (of the source, which is read) sizes the workers.
        let opts = CopyOptions {
            uploaders: if opts.uploaders == 0 {
                self.config.effective_limits(to).connections.unwrap_or(0)
            } else {
                opts.uploaders
            },
            threads: if opts.threads == 0 {
                self.config.effective_limits(from).threads.unwrap_or(0)
            } else {
                opts.threads
            },
            ..opts.clone()
        };
        let report = monitored(front, &progress, subject, || copy(&source, &target, &chosen, &opts, &progress))?;
        Ok(report)
    }

    /// The cycle's copy step: every snapshot of `from` the repository
    /// labelled `to` does not hold yet.
    pub fn copy_to_label(
        &self,
        from: &RepositoryConfig,
        to: &str,
        front: &dyn FrontEnd,
    ) -> Result<CopyReport, AppError> {
        let targets = self.repositories(Some(to))?;
        let target = targets.first().ok_or_else(|| {
            AppError::Config(vger_config::ConfigError::UnknownRepository {
                requested: to.to_owned(),
                available: Vec::new(),
            })
        })?;
        self.copy(from, target, &CopySelection::default(), &CopyOptions::default(), front)
    }
}

/// The snapshots `selection` names, oldest first.
fn select(
    repo: &vger_engine::repository::Repository,
    selection: &CopySelection,
) -> Result<Vec<SnapshotInfo>, AppError> {
    let mut chosen = if selection.ids.is_empty() {
        snapshots::list(repo)?
    } else {
        selection.ids.iter().map(|spec| snapshots::find(repo, spec)).collect::<Result<Vec<_>, _>>()?
    };
    if let Some(label) = &selection.source_label {
        chosen.retain(|s| &s.snapshot.source_label == label);
    }
    chosen.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time));
    chosen.dedup_by_key(|s| s.id);
    if let Some(n) = selection.last {
        let skip = chosen.len().saturating_sub(n);
        chosen.drain(..skip);
    }
    Ok(chosen)
}
