//! Process-wide limits from `limits:`: CPU niceness, and the idle I/O
//! class when the source read rate is capped.

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
