//! Restoring a snapshot (or some of its paths) with progress and
//! cancellation. Cancelled, a restore stops between files: files already
//! written stay, the one being written is removed, and the repository is
//! only read.

use std::path::Path;

use vger_engine::repository::Repository;
use vger_engine::restore::{restore, RestoreOptions, RestoreReport};
use vger_engine::snapshots::SnapshotInfo;

use crate::events::{monitored, progress_for, Event, FrontEnd, Operation, Subject};
use crate::AppError;

/// Restores `snap` of the repository labelled `label` into `dest`.
pub fn restore_snapshot(
    repo: &Repository,
    label: &str,
    snap: &SnapshotInfo,
    dest: &Path,
    opts: &RestoreOptions,
    front: &dyn FrontEnd,
) -> Result<RestoreReport, AppError> {
    let progress = progress_for(front);
    if opts.paths.is_empty() {
        progress.set_totals(snap.snapshot.stats.files, snap.snapshot.stats.bytes);
    }
    let subject = Subject { operation: Operation::Restore, repository: label, source: None };
    let result = monitored(front, &progress, subject, || restore(repo, snap, dest, opts, &progress));
    for notice in progress.take_warnings() {
        front.event(&Event::Notice { repository: label, notice: &notice });
    }
    Ok(result?)
}
