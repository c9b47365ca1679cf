//! `restore --delete`: what the target holds inside the restored paths
//! that the snapshot does not have is removed (or, in a dry run, listed).
//!
//! Only the directories the restore walked are looked at: the target itself
//! when the whole snapshot is restored, a restored path and the directories
//! below it otherwise, never the parents made on the way to a path. Each is
//! listed in the target and every name the snapshot's directory lacks is
//! removed through `vger_fs::RestoreTarget::remove`, which never follows a
//! symlink. It runs once every file is written (a worker's temporary file
//! is never mistaken for an extra) and before directory times are set.

use vger_format::entry::{Entry, EntryKind};
use vger_format::id::ChunkId;
use vger_format::tree::join_path;
use vger_fs::{FsError, RestoreTarget};

use super::RestoreReport;
use crate::tree::dir::lookup;
use crate::tree::TreeStore;

/// A directory of the snapshot that was restored: its path and tree ID.
pub(super) struct RestoredDir {
    pub path: Vec<u8>,
    pub tree: ChunkId,
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The list a removal is reported in: `deleted`, or `would_delete` in a dry run.
fn list(report: &mut RestoreReport, dry_run: bool) -> &mut Vec<String> {
    if dry_run {
        &mut report.would_delete
    } else {
        &mut report.deleted
    }
}

/// Removes from each of `dirs` in the target the names its snapshot
/// directory does not hold. A directory whose snapshot listing cannot be
/// read is left alone (a failure): nothing is removed on a guess.
pub(super) fn delete_extras(
    target: &mut RestoreTarget,
    store: &TreeStore,
    dirs: &[RestoredDir],
    dry_run: bool,
    report: &mut RestoreReport,
) {
    for dir in dirs {
        let names = match target.names_in(&dir.path) {
            Ok(names) => names,
            Err(e) => {
                report.failures.push(format!("listing {} for --delete: {e}", display_dir(&dir.path)));
                continue;
            }
        };
        for name in names {
            match lookup(store, &dir.tree, &name) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let path = join_path(&dir.path, &name);
                    let done = target.remove(&path, dry_run, &mut |p| list(report, dry_run).push(shown(p)));
                    if let Err(e) = done {
                        report.failures.push(format!("deleting {}: {e}", shown(&path)));
                    }
                }
                Err(e) => {
                    report.failures.push(format!("{} not cleaned by --delete: {e}", display_dir(&dir.path)));
                    break;
                }
            }
        }
    }
}

/// Removes a directory found where the snapshot has a file, link or
/// special file (with `--delete` it is something the snapshot does not
/// have there); without it the entry could not be restored.
pub(super) fn clear_the_way(
    target: &mut RestoreTarget,
    entry: &Entry,
    dry_run: bool,
    report: &mut RestoreReport,
) -> Result<(), FsError> {
    if entry.kind == EntryKind::Dir {
        return Ok(());
    }
    match target.existing(entry)? {
        Some(found) if found.directory => {
            target.remove(&entry.path, dry_run, &mut |p| list(report, dry_run).push(shown(p)))
        }
        _ => Ok(()),
    }
}

fn display_dir(path: &[u8]) -> String {
    if path.is_empty() {
        "the target".into()
    } else {
        shown(path)
    }
}
