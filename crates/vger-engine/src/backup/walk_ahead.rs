//! The walk on a thread of its own, ahead of the backup's main thread.
//!
//! An unchanged backup is two halves of about equal cost: the walk's system
//! calls (list, `fstatat`, xattrs, `readlink`) and the main thread's work on
//! each entry (find it in the parent snapshot's tree, check that its chunks
//! are still indexed, add it to the new tree). On one thread they add up;
//! here they overlap. The walk sends its items in batches: one hand-over per
//! entry would cost more than the entry.
//!
//! The gain depends on the allocator: the main thread frees what the walk
//! allocated. Under glibc's malloc with one arena (how `vger` tunes it for
//! backups) both threads queued on the arena's lock and the backup took 50%
//! more CPU time than without this thread; `vger` therefore takes small
//! blocks from mimalloc (vger-cli's `alloc.rs`).

use crossbeam_channel::bounded;
use vger_fs::{WalkError, WalkItem, Walker};

/// One item of the walk, as [`Walker`] gives it.
pub(super) type Walked = Result<WalkItem, WalkError>;

/// Items per batch...
const BATCH: usize = 256;
/// ... unless the first has waited this long (a slow file system must not
/// hold items back for a full batch).
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Batches queued ahead of the main thread: the walk runs at most this far
/// ahead (a few hundred KiB of entries), whatever the tree's size.
const BATCHES_AHEAD: usize = 4;

/// Starts the walk on a thread of `scope`; its items arrive in walk order.
/// The walk stops when the returned iterator is dropped.
pub(super) fn spawn<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    walker: Walker,
) -> impl Iterator<Item = Walked> {
    let (tx, rx) = bounded::<Vec<Walked>>(BATCHES_AHEAD);
    scope.spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut started = std::time::Instant::now();
        for item in walker {
            if batch.is_empty() {
                started = std::time::Instant::now();
            }
            batch.push(item);
            if batch.len() >= BATCH || started.elapsed() >= BATCH_WAIT {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return; // The backup stopped.
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
    });
    // Ends when the walk thread has sent its last batch and hung up.
    rx.into_iter().flatten()
}
