//! "Restore to…": where the ticked files and folders go, whether that
//! would replace files already there (the user is asked first), and the
//! restore itself on a worker thread with progress and Cancel.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use vger_app::events::{monitored, progress_for, FrontEnd, Operation, ProgressReport, Subject};
use vger_app::AppError;
use vger_engine::repository::Repository;
use vger_engine::restore::{Overwrite, RestoreOptions, RestoreReport};
use vger_engine::snapshots::SnapshotInfo;
use vger_engine::tree::SnapshotTree;
use vger_format::entry::EntryKind;

use crate::checks::{Found, Kind};
use crate::model::{count, human_bytes};

/// Where the restore stands.
#[derive(Debug, Clone)]
pub enum RestoreState {
    Idle,
    /// A worker looks at which ticked items the target already holds.
    Looking,
    /// Some ticked items exist in the target: replace them or keep them?
    Confirm {
        dest: PathBuf,
        existing: Vec<String>,
    },
    Running {
        progress: Option<ProgressReport>,
        cancelling: bool,
    },
    /// The result line.
    Done(String),
    Failed(String),
    Cancelled(String),
}

/// The paths [`check_target`] needs looked at: the target and its parent.
pub fn target_paths(text: &str) -> Vec<PathBuf> {
    let path = PathBuf::from(text.trim());
    if !path.is_absolute() {
        return Vec::new();
    }
    path.parent().map(Path::to_path_buf).into_iter().chain([path]).collect()
}

/// Why a target folder cannot be used (said in the form, under the field),
/// from what `found` (the [`crate::checks::PathChecks`] worker) saw.
pub fn check_target(text: &str, found: impl Fn(&Path) -> Option<Found>) -> Result<PathBuf, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Type the folder to restore into.".into());
    }
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(format!("`{text}` is not a full path: start it with /."));
    }
    let checking = || "Checking the folder…".to_string();
    match found(&path).ok_or_else(checking)?.kind {
        Kind::Dir => Ok(path),
        Kind::File | Kind::Other => Err(format!("{text} is a file, not a folder.")),
        Kind::Missing => match path.parent().map(|p| found(p).ok_or_else(checking)).transpose()? {
            Some(parent) if parent.kind == Kind::Dir => Ok(path),
            _ => Err(format!("Neither {text} nor the folder that would hold it exists.")),
        },
    }
}

/// Where the snapshot's files came from: its one recorded path, or `/`
/// for a snapshot of several folders (the tree holds their full paths).
pub fn original_place(info: &SnapshotInfo) -> Option<PathBuf> {
    match info.snapshot.paths.as_slice() {
        [one] => Some(PathBuf::from(one)).filter(|p| p.is_absolute()),
        [] => None,
        many => many.iter().all(|p| Path::new(p).is_absolute()).then(|| PathBuf::from("/")),
    }
}

/// The ticked paths that already exist under `dest`, as shown to the user.
pub fn existing_in(dest: &Path, selected: &[Vec<u8>]) -> Vec<String> {
    selected
        .iter()
        .map(|p| dest.join(std::ffi::OsStr::from_bytes(p)))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// The files and bytes below the ticked paths, so progress has a total
/// (and a time left). Reads the ticked folders' subtrees, on the worker.
fn totals(tree: &SnapshotTree, selected: &[Vec<u8>], front: &dyn FrontEnd) -> Result<(u64, u64), AppError> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let cancel = front.cancel_flag();
    for path in selected {
        let Some(entry) = tree.stat(path)? else { continue };
        if entry.kind != EntryKind::Dir {
            files += 1;
            bytes += entry.size;
            continue;
        }
        for item in tree.walk(path)? {
            if cancel.is_cancelled() {
                return Err(AppError::Engine(vger_engine::EngineError::Cancelled));
            }
            let item = item?;
            // Every entry but a folder, as the engine's restore counts.
            if item.entry.kind != EntryKind::Dir {
                files += 1;
                bytes += item.entry.size;
            }
        }
    }
    Ok((files, bytes))
}

/// What a restore needs from the screen.
pub struct RestoreJob {
    pub repo: std::sync::Arc<Repository>,
    pub tree: SnapshotTree,
    pub info: SnapshotInfo,
    pub label: String,
    pub selected: Vec<Vec<u8>>,
    pub dest: PathBuf,
    pub overwrite: Overwrite,
}

/// Runs the restore (on a worker) and words its end.
pub fn run(job: &RestoreJob, front: &dyn FrontEnd) -> RestoreState {
    match restore(job, front) {
        Ok(report) => RestoreState::Done(result_line(&report, &job.dest)),
        Err(e) if e.is_cancelled() || front.cancel_flag().is_cancelled() => RestoreState::Cancelled(
            "Restore cancelled: files already written stay; the one being written was removed.".into(),
        ),
        Err(e) => RestoreState::Failed(format!("Restore failed: {}", front.describe(&e))),
    }
}

fn restore(job: &RestoreJob, front: &dyn FrontEnd) -> Result<RestoreReport, AppError> {
    let progress = progress_for(front);
    let (files, bytes) = totals(&job.tree, &job.selected, front)?;
    progress.set_totals(files, bytes);
    let opts = RestoreOptions {
        paths: job.selected.clone(),
        threads: 0,
        fs: vger_fs::RestoreOptions::default(),
        overwrite: job.overwrite,
        verify: false,
        dry_run: false,
        delete: false,
    };
    let subject = Subject { operation: Operation::Restore, repository: &job.label, source: None };
    let report = monitored(front, &progress, subject, || {
        vger_engine::restore::restore(&job.repo, &job.info, &job.dest, &opts, &progress)
    })?;
    Ok(report)
}

/// "Restored 3 files (1.2 MiB) to /tmp/x; kept 1 existing file; 1 failed: …".
pub fn result_line(r: &RestoreReport, dest: &Path) -> String {
    let mut line = format!("Restored {} ({}) to {}", count(r.files, "file"), human_bytes(r.bytes), dest.display());
    if r.skipped > 0 {
        line.push_str(&format!("; kept {} already there", count(r.skipped, "existing file")));
    }
    if let Some(first) = r.failures.first() {
        line.push_str(&format!("; {} failed, first: {first}", r.failures.len()));
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_target_must_be_a_full_path_to_a_folder_or_a_new_one_beside() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        // What the checks worker would find, looked at here directly.
        let check_target = |text: &str| check_target(text, |p| Some(Found::at(p)));
        let unknown = super::check_target(dir.path().to_str().unwrap(), |_| None);
        assert!(unknown.unwrap_err().contains("Checking"), "nothing is used before it is looked at");
        assert!(check_target("  ").unwrap_err().contains("Type the folder"));
        assert!(check_target("relative/x").unwrap_err().contains("not a full path"));
        assert!(check_target(file.to_str().unwrap()).unwrap_err().contains("is a file"));
        assert!(check_target(&format!("{}/a/b", dir.path().display())).unwrap_err().contains("Neither"));
        assert_eq!(check_target(dir.path().to_str().unwrap()).unwrap(), dir.path());
        let new = dir.path().join("new");
        assert_eq!(check_target(new.to_str().unwrap()).unwrap(), new);
    }

    #[test]
    fn existing_items_are_found_in_the_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        let found = existing_in(dir.path(), &[b"docs".to_vec(), b"new.txt".to_vec()]);
        assert_eq!(found, [dir.path().join("docs").display().to_string()]);
    }

    #[test]
    fn the_result_line_says_what_happened() {
        let r = RestoreReport {
            files: 2,
            bytes: 2048,
            skipped: 1,
            failures: vec!["a: denied".into()],
            ..Default::default()
        };
        assert_eq!(
            result_line(&r, Path::new("/t")),
            "Restored 2 files (2.0 KiB) to /t; kept 1 existing file already there; 1 failed, first: a: denied"
        );
    }
}
