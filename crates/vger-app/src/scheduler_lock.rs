//! One scheduler per config, whichever front end runs it (`vger daemon`,
//! or the desktop app while it is open): an exclusive `flock` on
//! [`crate::dirs::daemon_lock_file`]. The file holds the owner's PID, the
//! config's path and who the owner is (`vger daemon`, `vger-gui`); the
//! kernel releases the lock when the process ends, however it ends.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerLockError {
    /// Another process schedules this config.
    #[error("{} (PID {}) already runs the schedule of {} (lock file {})", holder.as_deref().unwrap_or("another vger daemon"), pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()), config.display(), lock_file.display())]
    Held { pid: Option<u32>, holder: Option<String>, config: PathBuf, lock_file: PathBuf },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SchedulerLockError {
    /// Who holds the lock (`vger daemon`, `vger-gui`), as its file says.
    pub fn holder(&self) -> Option<&str> {
        match self {
            SchedulerLockError::Held { holder, .. } => holder.as_deref(),
            SchedulerLockError::Io { .. } => None,
        }
    }
}

/// Held while this process schedules the config; dropped, it is released.
#[derive(Debug)]
pub struct SchedulerLock {
    file: File,
    pub path: PathBuf,
}

impl SchedulerLock {
    /// Takes the lock for `config_path` as `holder` (a name a user
    /// recognises: `vger daemon`, `vger-gui`), or says who holds it.
    pub fn acquire(
        config_path: &Path,
        cache_dir: Option<&PathBuf>,
        holder: &str,
    ) -> Result<SchedulerLock, SchedulerLockError> {
        let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
        let path = crate::dirs::daemon_lock_file(config_path, cache_dir);
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| SchedulerLockError::Io { what, path, source }
        };
        if let Some(dir) = path.parent() {
            vger_fs::private::create_private_dir(dir).map_err(io("create the lock folder", dir))?;
        }
        let mut file = vger_fs::private::open_or_create_private_file(&path).map_err(io("open the lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let mut lines = text.lines();
                let pid = lines.next().and_then(|l| l.trim().parse().ok());
                let holder = lines.nth(1).map(str::trim).filter(|h| !h.is_empty()).map(String::from);
                return Err(SchedulerLockError::Held { pid, holder, config: canonical, lock_file: path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
        }
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}\n{}\n{holder}", std::process::id(), canonical.display()))
            .and_then(|()| file.flush());
        written.map_err(io("write the lock file", &path))?;
        Ok(SchedulerLock { file, path })
    }
}

impl Drop for SchedulerLock {
    fn drop(&mut self) {
        // The file stays (removing a flock file races with a new owner); the PID goes.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_second_scheduler_is_refused_and_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vger.yaml");
        std::fs::write(&config, "sources: []\n").unwrap();
        let cache = Some(dir.path().join("cache"));
        // Where the lock file goes depends on XDG_RUNTIME_DIR; the name on the config.
        let held = SchedulerLock::acquire(&config, cache.as_ref(), "vger-gui").unwrap();
        let err = SchedulerLock::acquire(&config, cache.as_ref(), "vger daemon").unwrap_err();
        assert_eq!(err.holder(), Some("vger-gui"));
        let SchedulerLockError::Held { pid, .. } = &err else { panic!("{err}") };
        assert_eq!(*pid, Some(std::process::id()));
        assert!(err.to_string().starts_with("vger-gui (PID "), "{err}");
        drop(held);
        let again = SchedulerLock::acquire(&config, cache.as_ref(), "vger daemon").unwrap();
        assert!(std::fs::read_to_string(&again.path).unwrap().ends_with("\nvger daemon\n"));
    }
}
