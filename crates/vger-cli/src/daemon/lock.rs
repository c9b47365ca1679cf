//! One scheduler per config: an exclusive `flock` on a file named after a
//! hash of the config's path, in `$XDG_RUNTIME_DIR/vger`, `/run/vger` (as
//! root) or the state folder. The file holds the owner's PID; the kernel
//! releases the lock when the process ends, however it ends.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

pub struct SchedulerLock {
    file: File,
    pub path: PathBuf,
}

impl SchedulerLock {
    /// Takes the lock for `config_path`, or says which process holds it.
    pub fn acquire(config_path: &Path, cache_dir: Option<&PathBuf>) -> Result<SchedulerLock> {
        let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
        // The same name the GUI reads to tell whether a daemon runs.
        let path = vger_app::dirs::daemon_lock_file(config_path, cache_dir);
        if let Some(dir) = path.parent() {
            vger_fs::private::create_private_dir(dir)
                .with_context(|| format!("cannot create the lock folder {}", dir.display()))?;
        }
        let mut file = vger_fs::private::open_or_create_private_file(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = holder.lines().next().unwrap_or("").trim();
            let pid = if pid.is_empty() { "unknown".to_string() } else { pid.to_string() };
            bail!(
                "another vger daemon (PID {pid}) is already running for {} (lock file {})",
                canonical.display(),
                path.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}\n{}", std::process::id(), canonical.display())?;
        file.flush()?;
        Ok(SchedulerLock { file, path })
    }
}

impl Drop for SchedulerLock {
    fn drop(&mut self) {
        // The file stays (removing a flock file races with a new owner); the PID goes.
        let _ = self.file.set_len(0);
        // SAFETY: unlocking our own descriptor; closing it would release it too.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}
