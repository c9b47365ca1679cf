//! How much a backup has to do, for its progress: the parent snapshot's
//! totals as a first estimate, then the count of a scan of the source that
//! runs beside the backup.
//!
//! The scan walks the same roots with the same options and excludes as the
//! backup (the same [`Walker`]), so it finds the same entries and counts
//! them as the snapshot's stats do: every entry but a directory is a file,
//! and a regular file's size is its bytes (a further name of a hard-linked
//! file adds none). It lists directories and `lstat`s entries only: it
//! opens no file and reads no extended attribute, and holds no more than
//! the walk does (one sorted listing per open directory level). It stops
//! as soon as the backup's walk ends or the backup is cancelled, and runs
//! at the lowest CPU priority: it repeats the backup's own walk, and on a
//! backup of unchanged files, which is little more than that walk, it took
//! a quarter more time at normal priority (100,000 files, two cores).
//!
//! Command dumps are counted as they are stored: their size is known only
//! then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use vger_format::entry::EntryKind;
use vger_format::snapshot::SnapshotStats;
use vger_fs::{WalkOptions, WalkRoot, Walker};

use crate::progress::Progress;

/// Files and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    pub files: u64,
    pub bytes: u64,
}

/// The backup's totals, kept in its progress counters.
pub(crate) struct Totals<'a> {
    progress: &'a Progress,
    stop: AtomicBool,
    counted: Mutex<Counted>,
}

#[derive(Default)]
struct Counted {
    /// What the scan found, once it went through the whole source.
    scanned: Option<Count>,
    dumps: Count,
}

impl<'a> Totals<'a> {
    /// Totals of `progress`, estimated from the parent snapshot's `stats`
    /// until the scan has counted.
    pub fn new(progress: &'a Progress, parent: Option<&SnapshotStats>) -> Self {
        if let Some(stats) = parent {
            progress.estimate_totals(stats.files, stats.bytes);
        }
        Totals { progress, stop: AtomicBool::new(false), counted: Mutex::default() }
    }

    /// Counts what a walk of `roots` finds and makes it the totals (with
    /// the dumps stored so far). Returns the count, `None` when stopped or
    /// when the roots cannot be walked (the backup reports that).
    pub fn scan(&self, roots: Vec<WalkRoot>, opts: &WalkOptions) -> Option<Count> {
        yield_to_the_backup();
        let opts = WalkOptions { xattrs: false, file_xattrs_later: false, ..opts.clone() };
        let walker = Walker::new(roots, opts).ok()?;
        let mut count = Count::default();
        for item in walker {
            if self.stop.load(Ordering::Relaxed) || self.progress.cancelled() {
                return None;
            }
            // What cannot be listed or stat'ed the backup skips too.
            let Ok(item) = item else { continue };
            match item.entry.kind {
                EntryKind::Dir => {}
                EntryKind::File => {
                    count.files += 1;
                    count.bytes += item.entry.size;
                }
                _ => count.files += 1,
            }
        }
        let mut counted = crate::parallel::lock(&self.counted);
        counted.scanned = Some(count);
        self.publish(&counted);
        Some(count)
    }

    pub fn progress(&self) -> &'a Progress {
        self.progress
    }

    /// A command dump of `bytes` was stored.
    pub fn dump_stored(&self, bytes: u64) {
        let mut counted = crate::parallel::lock(&self.counted);
        counted.dumps.files += 1;
        counted.dumps.bytes += bytes;
        self.publish(&counted);
    }

    /// Ends the scan at its next entry: the backup no longer needs it.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn publish(&self, counted: &Counted) {
        if let Some(scanned) = counted.scanned {
            self.progress.set_totals(scanned.files + counted.dumps.files, scanned.bytes + counted.dumps.bytes);
        }
    }
}

/// Lowers the calling thread (the scan's own, not the process) to the
/// lowest CPU priority: it runs only when the backup leaves a core idle.
fn yield_to_the_backup() {
    // SAFETY: plain integers; on Linux a thread ID names that one thread.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
    if r != 0 {
        tracing::debug!("the totals scan keeps its priority: {}", std::io::Error::last_os_error());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn root(path: &std::path::Path) -> Vec<WalkRoot> {
        vec![WalkRoot { abs: path.to_path_buf(), rel: Vec::new() }]
    }

    #[test]
    fn the_scan_counts_what_the_backup_stores_and_replaces_the_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/one"), vec![1u8; 1000]).unwrap();
        std::fs::write(d.join("a/b/two"), vec![2u8; 234]).unwrap();
        std::fs::hard_link(d.join("a/b/two"), d.join("a/two-again")).unwrap();
        std::os::unix::fs::symlink("one", d.join("a/link")).unwrap();
        std::fs::write(d.join("a/skip.tmp"), vec![3u8; 5000]).unwrap();
        let progress = Progress::default();
        let parent = SnapshotStats { files: 9, bytes: 99, ..SnapshotStats::default() };
        let totals = Totals::new(&progress, Some(&parent));
        assert_eq!((progress.total_files(), progress.total_bytes()), (Some(9), Some(99)));
        assert!(progress.totals_estimated());

        let exclude: vger_fs::ExcludeFn = Arc::new(|rel: &[u8], _| rel.ends_with(b".tmp"));
        let opts = WalkOptions { exclude: Some(exclude), ..WalkOptions::default() };
        let count = totals.scan(root(d), &opts).unwrap();
        // one, two, two-again (no bytes: stored once), link.
        assert_eq!(count, Count { files: 4, bytes: 1234 });
        assert_eq!((progress.total_files(), progress.total_bytes()), (Some(4), Some(1234)));
        assert!(!progress.totals_estimated());
        totals.dump_stored(66);
        assert_eq!((progress.total_files(), progress.total_bytes()), (Some(5), Some(1300)));
    }

    #[test]
    fn dumps_stored_before_the_scan_ends_are_added_when_it_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let progress = Progress::default();
        let totals = Totals::new(&progress, None);
        totals.dump_stored(10);
        assert_eq!(progress.total_bytes(), None, "unknown until the scan counted");
        totals.scan(root(dir.path()), &WalkOptions::default()).unwrap();
        assert_eq!((progress.total_files(), progress.total_bytes()), (Some(2), Some(15)));
    }

    #[test]
    fn a_stopped_or_cancelled_scan_leaves_the_totals_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let progress = Progress::default();
        let totals = Totals::new(&progress, None);
        totals.stop();
        assert_eq!(totals.scan(root(dir.path()), &WalkOptions::default()), None);
        assert_eq!(progress.total_files(), None);

        let cancel = crate::progress::CancelFlag::default();
        let progress = Progress::with_cancel(cancel.clone());
        let totals = Totals::new(&progress, None);
        cancel.cancel();
        assert_eq!(totals.scan(root(dir.path()), &WalkOptions::default()), None);
        assert_eq!(progress.total_bytes(), None);
    }
}
