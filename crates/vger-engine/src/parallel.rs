//! A tiny helper to run independent fallible jobs on a few threads.

use std::sync::Mutex;

use crate::Result;

/// Threads, at least, that read from remote storage at once: requests in
/// flight hide the network's round trips.
pub const READERS_FOR_REMOTE: usize = 8;

/// Applies `f` to every item with up to `threads` threads, keeping the
/// input order. Stops at the first error and returns it.
pub fn map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Result<R> + Sync,
{
    let n = items.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if threads.clamp(1, n) == 1 {
        // One worker would do it all: do it here. A worker thread also
        // gets its own malloc arena, and what the caller frees of the
        // results goes back to that arena and stays resident (check kept
        // 12 MiB that way, one index segment at a time).
        return items.into_iter().map(f).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, n) {
            scope.spawn(|| loop {
                if lock(&failure).is_some() {
                    return;
                }
                let Some((i, item)) = lock(&queue).next() else { return };
                match f(item) {
                    Ok(r) => {
                        if let Some(slot) = lock(&results).get_mut(i) {
                            *slot = Some(r);
                        }
                    }
                    Err(e) => {
                        lock(&failure).get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&failure).take() {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(results.into_iter().flatten().collect())
}

/// Locks a mutex, ignoring poisoning (a panicking job already failed the run).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
