//! One scheduler per config: the application layer's
//! [`vger_app::scheduler_lock`] (an exclusive `flock` on a file named after
//! a hash of the config's path, in `$XDG_RUNTIME_DIR/vger`, `/run/vger` (as
//! root) or the state folder), shared with the desktop app, which runs the
//! schedule itself while it is open and no daemon does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use vger_app::scheduler_lock::SchedulerLockError;

pub use vger_app::scheduler_lock::SchedulerLock;

/// Takes the lock for `config_path`, or says which process holds it.
pub fn acquire(config_path: &Path, cache_dir: Option<&PathBuf>) -> Result<SchedulerLock> {
    match SchedulerLock::acquire(config_path, cache_dir, "vger daemon") {
        Ok(lock) => Ok(lock),
        Err(SchedulerLockError::Held { pid, holder: Some(holder), config, lock_file }) if holder == "vger-gui" => {
            let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
            bail!(
                "the vger desktop app (vger-gui, PID {pid}) runs the schedule of {} while it is open; \
                 close it (or untick its scheduled backups) before starting the daemon (lock file {})",
                config.display(),
                lock_file.display()
            )
        }
        Err(SchedulerLockError::Held { pid, config, lock_file, .. }) => {
            let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into());
            bail!(
                "another vger daemon (PID {pid}) is already running for {} (lock file {})",
                config.display(),
                lock_file.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}
