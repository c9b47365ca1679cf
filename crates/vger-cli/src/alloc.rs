//! The process's allocator: blocks under 1 KiB from mimalloc, larger ones
//! from the C library's malloc (tuned per command in `limits.rs`).
//!
//! Why two: glibc's malloc is tuned to one arena for backups (chunk
//! buffers of 0.5-8 MiB made on one thread and freed on another pile up in
//! per-thread arenas: see `tune_allocator_for_backups`). Small blocks
//! (paths, names, tree entries) then all go through that arena's lock, and
//! the walk could not run on a thread of its own: with the walk ahead of the
//! main thread, an unchanged backup of 63,000 entries made 4,800 context
//! switches (futex waits in malloc) instead of 116 and took 50% more CPU
//! time. mimalloc frees a block made by another thread without a lock.
//! Measured on that tree, 3-4 alternating runs: unchanged backup 0.26-0.29
//! s -> 0.20-0.21 s with the walk on its own thread, peak RSS unchanged
//! (44 MiB). Every block from mimalloc: a fresh backup of the 2 GiB
//! synthetic corpus peaked at about 250 MiB (84-88 with immediate purging,
//! which cost 1.5 s more system time). Blocks under 64 KiB: 117-127 MiB
//! against 92 (small files' buffers held per thread). Under 1 KiB: 94-101
//! MiB against 89-96. Transparent huge pages are off for mimalloc's memory (`no_thp`):
//! with them, the unchanged backup's peak RSS was 57 MiB.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks below this size come from mimalloc.
const SMALL: usize = 1 << 10;

pub struct SplitAlloc;

fn small(size: usize) -> bool {
    size < SMALL
}

// SAFETY: each block is freed (or resized) by the allocator that made it:
// the choice depends only on the size, and callers pass the size the block
// was allocated with (GlobalAlloc's contract).
unsafe impl GlobalAlloc for SplitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if small(layout.size()) {
                MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if small(layout.size()) {
                MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator `layout.size()` picks.
        unsafe {
            if small(layout.size()) {
                MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees; across the two
        // allocators the block is copied and the old one freed by its own.
        unsafe {
            match (small(layout.size()), small(new_size)) {
                (true, true) => MiMalloc.realloc(ptr, layout, new_size),
                (false, false) => System.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}
