//! What this binary sets for its whole process, which the libraries
//! leave alone: the allocator's tuning for backups, and from `limits:` the
//! CPU niceness and the idle I/O class when the source read rate is capped.

use vger_config::LimitsConfig;

/// Applies `nice` and, with `io_read_mib_per_sec`, the idle I/O class.
/// Failures only warn: a limit that cannot be applied is not worth
/// failing a backup for.
pub fn apply_process_limits(limits: &LimitsConfig) {
    if let Some(n) = limits.nice {
        // SAFETY: setpriority on our own process with plain integers.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
        if r != 0 {
            eprintln!("vger: warning: could not set nice {n}: {}", std::io::Error::last_os_error());
        }
    }
    if limits.io_read_mib_per_sec.is_some() {
        // ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13).
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        // SAFETY: a plain syscall with integer arguments; honoured by some
        // I/O schedulers only.
        let r = unsafe {
            libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0 as libc::c_long, IOPRIO_CLASS_IDLE << 13)
        };
        if r != 0 {
            eprintln!("vger: warning: could not set the idle I/O class: {}", std::io::Error::last_os_error());
        }
    }
}

/// Tunes glibc's malloc for backups; called once, before any thread
/// starts, by the commands that back up (`backup`, the default run, the
/// daemon).
///
/// Chunk buffers (0.5-8 MiB) are allocated by one thread and freed by
/// another; with glibc's per-thread arenas the freed memory piles up in
/// each arena. One arena measured 166 MiB peak RSS for a fresh backup of
/// 1 GiB where the default reached 217-232 MiB, at the same speed.
///
/// Those buffers also come from the heap rather than from fresh mappings
/// (threshold 32 MiB, glibc's highest), and up to 128 MiB of freed heap
/// stays mapped: otherwise every chunk's buffers are new pages, faulted in
/// and zeroed by the kernel. Measured on a fresh 2 GiB backup: 100-120k
/// page faults down to ~30k, system time 3.1 s down to 2.2-2.6 s, peak RSS
/// unchanged (87-104 MiB against 93-96).
pub fn tune_allocator_for_backups() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; threads created later
    // share the main arena.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Tunes glibc's malloc for `vger mount`; called once, before any thread
/// starts. Request threads (tokio's blocking pool, the engine's read-ahead
/// threads) decode chunks that other threads free, and with an arena per
/// thread each arena keeps what was freed into it: two arenas at most.
/// Chunk buffers (data chunks are 512 KiB and up) get mappings of their
/// own, given back when freed, instead of heap that stays resident after
/// a burst. `rclone copy` of a 512 MiB corpus with 8 transfers: peak RSS
/// 170 MiB with two arenas, 136-149 MiB with this threshold too, and 89
/// MiB resident after the copy instead of 169, at the same copy speed.
pub fn tune_allocator_for_serving() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 10);
    }
}

/// Gives the freed heap back to the system, so that a long-lived process
/// (the daemon, between cycles) does not keep a backup's buffers.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
