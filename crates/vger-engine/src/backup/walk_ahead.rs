//! The walk on a thread of its own, ahead of the backup's main thread.
//!
//! An unchanged backup is two halves of about equal cost: the walk's system
//! calls (list, `fstatat`, xattrs, `readlink`) and the main thread's work on
//! each entry (find it in the parent snapshot's tree, check that its chunks
//! are still indexed, add it to the new tree). On one thread they add up;
//! here they overlap. The walk sends its items in batches: one hand-over per
//! entry would cost more than the entry.
//!
//! `vger backup` starts the walk before it opens the repository (see
//! `start_walk`), so it runs while Argon2 derives the key and while the
//! main thread loads the chunk index and the parent snapshot.
//!
//! The gain depends on the allocator: the main thread frees what the walk
//! allocated. Under glibc's malloc with one arena (how `vger` tunes it for
//! backups) both threads queued on the arena's lock and the backup took 50%
//! more CPU time than without this thread; `vger` therefore takes small
//! blocks from mimalloc (vger-cli's `alloc.rs`).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use vger_fs::{WalkError, WalkItem, Walker};

/// One item of the walk, as [`Walker`] gives it.
pub(super) type Walked = Result<WalkItem, WalkError>;

/// Items per batch...
const BATCH: usize = 256;
/// ... unless the first has waited this long (a slow file system must not
/// hold items back for a full batch).
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// Batches queued ahead of the main thread: the walk runs at most this far
/// ahead (8,192 entries, about 3.5 MiB), whatever the tree's size. While
/// the key is derived and the index and the parent load (40-60 ms), the
/// walk fills this queue; at 16 batches it stood still for part of that
/// time, and an unchanged backup of the real corpus took 4% longer.
const BATCHES_AHEAD: usize = 32;

/// The running walk. Dropping it stops the walk and waits for its thread.
pub(super) struct WalkAhead {
    /// `None` once dropped: the walk thread's next send fails and it ends.
    rx: Option<Receiver<Vec<Walked>>>,
    thread: Option<JoinHandle<()>>,
}

impl WalkAhead {
    /// Starts the walk on a thread of its own.
    pub(super) fn spawn(walker: Walker) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Vec<Walked>>(BATCHES_AHEAD);
        let thread = std::thread::Builder::new().name("vger-walk".into()).spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut first_at = Instant::now();
            for item in walker {
                if batch.is_empty() {
                    first_at = Instant::now();
                }
                batch.push(item);
                if batch.len() >= BATCH || first_at.elapsed() >= BATCH_WAIT {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(full).is_err() {
                        return; // The backup stopped.
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        })?;
        Ok(WalkAhead { rx: Some(rx), thread: Some(thread) })
    }

    /// The walk's items, in walk order; ends after the last one.
    pub(super) fn items(&self) -> impl Iterator<Item = Walked> + '_ {
        self.rx.iter().flat_map(|rx| rx.iter()).flatten()
    }
}

impl Drop for WalkAhead {
    fn drop(&mut self) {
        // The walk thread stops at its next send, at most a batch later.
        drop(self.rx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use vger_fs::{WalkOptions, WalkRoot};

    use super::*;

    fn walker(root: &std::path::Path) -> Walker {
        Walker::new(vec![WalkRoot { abs: root.to_path_buf(), rel: Vec::new() }], WalkOptions::default()).unwrap()
    }

    fn paths(items: impl Iterator<Item = Walked>) -> Vec<Vec<u8>> {
        items.map(|i| i.unwrap().entry.path).collect()
    }

    fn tree(files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..16 {
            let sub = dir.path().join(format!("d{d:02}"));
            std::fs::create_dir(&sub).unwrap();
            for f in 0..files / 16 {
                std::fs::File::create(sub.join(format!("f{f:04}"))).unwrap();
            }
        }
        dir
    }

    /// A walk that fits in the queue and ends, and one that fills the
    /// queue and waits: taken at once or only once the walk thread has
    /// ended or its queue stays full, every item arrives once, in walk
    /// order.
    #[test]
    fn every_item_arrives_in_order_however_late_the_backup_starts() {
        for files in [(BATCHES_AHEAD / 2) * BATCH, (BATCHES_AHEAD + 8) * BATCH] {
            let dir = tree(files);
            let want = paths(walker(dir.path()));
            assert!(want.len() >= files, "{} entries", want.len());
            for late in [false, true] {
                let ahead = WalkAhead::spawn(walker(dir.path())).unwrap();
                if late {
                    let queued = || ahead.rx.as_ref().map_or(0, |rx| rx.len());
                    for _ in 0..200 {
                        if ahead.thread.as_ref().is_some_and(|t| t.is_finished()) || queued() == BATCHES_AHEAD {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                assert_eq!(paths(ahead.items()), want, "{files} files, taken late: {late}");
            }
        }
    }

    /// Dropping a walk nobody reads, or one read in part, returns (the
    /// walk thread stops).
    #[test]
    fn dropping_the_walk_stops_its_thread() {
        let dir = tree((BATCHES_AHEAD + 8) * BATCH);
        let unread = WalkAhead::spawn(walker(dir.path())).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(unread);
        let half_read = WalkAhead::spawn(walker(dir.path())).unwrap();
        assert_eq!(paths(half_read.items().take(1000)).len(), 1000);
        drop(half_read);
    }
}
