//! The backup of a repository's sources: one snapshot per source, each in
//! its source's hook scope, all inside the global and repository scopes;
//! the repository's failure counter follows the result.

use std::sync::Arc;
use std::time::Duration;

use vger_config::{HookCommand, HooksConfig, RepositoryConfig, SourceConfig};
use vger_engine::backup::{backup, backup_with_walk, start_walk, BackupOptions, BackupReport};
use vger_engine::snapshots::short_id;
use vger_format::compress::Codec;

use crate::events::{monitored, progress_for, Event, FrontEnd, Operation, Subject};
use crate::hooks::{HookRunner, Scope};
use crate::secrets::Secrets;
use crate::text::bytes;
use crate::{App, AppError, Outcome};

/// What to back up, beyond what the config says.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// Only the source with this label.
    pub source: Option<String>,
    /// Instead of the repository's compression.
    pub compression: Option<Codec>,
    /// The snapshots' time instead of now.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Read every file, even those the last snapshot says are unchanged.
    pub no_parent: bool,
    /// No scan counting the sources for progress totals.
    pub no_scan: bool,
    pub tags: Vec<String>,
    /// Store a resume point at least this often.
    pub checkpoint: Duration,
}

impl Default for BackupRequest {
    fn default() -> Self {
        BackupRequest {
            source: None,
            compression: None,
            time: None,
            no_parent: false,
            no_scan: false,
            tags: Vec::new(),
            checkpoint: Duration::from_secs(30),
        }
    }
}

/// A snapshot a backup committed.
#[derive(Debug, Clone)]
pub struct SnapshotMade {
    pub repository: String,
    pub source_label: String,
    pub report: BackupReport,
}

impl App {
    /// The sources that go to `repo` (only `only` when given).
    pub fn sources_for_backup(
        &self,
        repo: &RepositoryConfig,
        only: Option<&str>,
    ) -> Result<Vec<&SourceConfig>, AppError> {
        let sources: Vec<&SourceConfig> = self
            .config
            .sources()
            .iter()
            .filter(|s| only.is_none_or(|l| s.label() == l))
            .filter(|s| s.goes_to(repo.label()))
            .collect();
        if sources.is_empty() {
            return Err(match only {
                Some(l) => {
                    AppError::UnknownSource { source_label: l.to_string(), repository: repo.label().to_string() }
                }
                None => AppError::NoSources { repository: repo.label().to_string(), config: self.config_path.clone() },
            });
        }
        Ok(sources)
    }

    /// Backs up every source that goes to `repo`, inside the global,
    /// repository and source hook scopes, and updates the failure
    /// counter. Each committed snapshot is added to `made` (also when
    /// another source fails) and announced to `front`.
    pub fn backup(
        &self,
        repo: &RepositoryConfig,
        request: &BackupRequest,
        front: &dyn FrontEnd,
        made: &mut Vec<SnapshotMade>,
    ) -> Result<Outcome, AppError> {
        let sources = self.sources_for_backup(repo, request.source.as_deref())?;
        let describe = |e: &AppError| front.describe(e);
        let warn = |e: &AppError| crate::hooks::hook_warning(front, repo, e);
        self.with_hooks(repo, HookCommand::Backup, true, &describe, &warn, |values| {
            let secrets = Secrets::of(&self.config);
            // The first source's walk needs no key: started before the
            // repository opens, it runs while Argon2 derives the key. Not
            // when the source has hooks of its own, which must run first,
            // nor when it cannot start (the usual path then reports why).
            let mut early = sources
                .first()
                .filter(|s| HooksConfig::of(s.hooks.as_ref(), HookCommand::Backup).before.is_empty())
                .and_then(|s| crate::source::prepare(&self.config, &self.config_path, s, &secrets).ok())
                .and_then(|prepared| start_walk(&prepared).ok().map(|walk| (prepared, walk)));
            let opened = self.open(repo)?;
            let compression = Some(request.compression.unwrap_or(self.config.effective_compression(repo)));
            let limits = self.config.effective_limits(repo);
            front.event(&Event::BackupStarting { repository: repo, limits: &limits });
            let threads = limits.threads.unwrap_or(0);
            let read_limit = limits.io_read_mib_per_sec.map(|m| (m * 1048576.0) as u64);
            let runner = HookRunner::new(secrets.clone());
            let mut worst = Outcome::Ok;
            let mut failed = Vec::new();
            for source in &sources {
                let label = source.label();
                let mut source_values = values.clone();
                source_values.source_label = label.clone();
                source_values.source_path =
                    source.all_paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
                let source_paths = source_values.source_path.clone();
                let hooks = HooksConfig::of(source.hooks.as_ref(), HookCommand::Backup);
                let base = values.consecutive_failures;
                let mut bump = |v: &mut crate::hooks::HookValues| v.consecutive_failures = base + 1;
                let scope = Scope { describe: &describe, on_failure: &mut bump, warn: &warn };
                let result = runner.scoped(&hooks, &mut source_values, scope, |_| {
                    let (prepared, walk) = match early.take() {
                        Some((prepared, walk)) => (prepared, Some(walk)),
                        None => (crate::source::prepare(&self.config, &self.config_path, source, &secrets)?, None),
                    };
                    tracing::info!(
                        "source `{label}`: backing up {} ({} threads{})",
                        if source_paths.is_empty() { "command dumps" } else { source_paths.as_str() },
                        if threads == 0 { "auto".to_string() } else { threads.to_string() },
                        read_limit.map(|r| format!(", reads capped at {} MiB/s", r / 1_048_576)).unwrap_or_default()
                    );
                    let opts = BackupOptions {
                        compression,
                        time: request.time,
                        threads,
                        tags: request.tags.clone(),
                        no_parent: request.no_parent,
                        checkpoint_interval: Some(request.checkpoint),
                        read_limit,
                        resume_dir: crate::dirs::resume_dir(self.config.cache_dir.as_ref()),
                        no_scan: request.no_scan,
                    };
                    let progress = Arc::new(progress_for(front));
                    let subject =
                        Subject { operation: Operation::Backup, repository: repo.label(), source: Some(&label) };
                    let result = monitored(front, &progress, subject, || match walk {
                        Some(walk) => backup_with_walk(&opened, &prepared, walk, &opts, &progress),
                        None => backup(&opened, &prepared, &opts, &progress),
                    });
                    for notice in progress.take_warnings() {
                        front.event(&Event::Notice { repository: repo.label(), notice: &notice });
                    }
                    Ok::<_, AppError>(result?)
                });
                let report = match result {
                    Ok(r) => r,
                    Err(e) => {
                        failed.push((label, e));
                        continue;
                    }
                };
                log_report(&label, &report);
                if !report.warnings.is_empty() {
                    worst = Outcome::Partial;
                }
                let snapshot = SnapshotMade { repository: repo.label().to_string(), source_label: label, report };
                front.event(&Event::SnapshotCreated(&snapshot));
                made.push(snapshot);
            }
            if sources.len() == 1 {
                if let Some((label, e)) = failed.pop() {
                    return Err(AppError::Source { label, source: Box::new(e) });
                }
            }
            if !failed.is_empty() {
                for (label, e) in &failed {
                    front.event(&Event::SourceFailed {
                        repository: repo.label(),
                        source: label,
                        error: e,
                        sources: sources.len(),
                    });
                }
                let failed = failed.into_iter().map(|(l, _)| l).collect();
                return Err(AppError::SourcesFailed { total: sources.len(), failed });
            }
            Ok(worst)
        })
    }
}

fn log_report(label: &str, report: &BackupReport) {
    let s = &report.snapshot.stats;
    tracing::info!(
        "source `{label}`: {} bytes read, {} packs written, {} new chunks, {} bytes stored, parent {}",
        bytes(report.read_bytes),
        report.packs_written,
        s.added_chunks,
        bytes(s.added_stored),
        report.snapshot.parent.map(|p| short_id(&p)).unwrap_or_else(|| "none".into())
    );
    if report.resumed_files > 0 {
        tracing::info!(
            "source `{label}`: resumed an interrupted backup: {} files ({}) not read again",
            report.resumed_files,
            bytes(report.resumed_bytes)
        );
    }
}
