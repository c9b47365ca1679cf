//! Restores started from the web UI: each runs on a thread of its own and
//! reports progress the page polls (`?api=restore&job=N`). One runs at a
//! time; the last few finished ones are kept for their summaries. A
//! running one can be cancelled (`POST ?api=cancel&job=N`): the engine
//! stops between files, and the job's summary counts what was restored.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vger_format::id::SnapshotId;

use crate::store::{CancelFlag, RestoreProgress, RestoreSummary, SnapshotStore};
use crate::MountError;

/// Finished jobs kept for their summaries.
const KEPT: usize = 16;

pub enum JobState {
    Running,
    Done(RestoreSummary),
    /// Stopped on request between files; what was restored stays.
    Cancelled,
    Failed(String),
}

pub struct Job {
    pub id: u64,
    pub target: PathBuf,
    pub paths: Vec<String>,
    pub progress: Arc<RestoreProgress>,
    cancel: CancelFlag,
    pub started: Instant,
    pub state: Mutex<JobState>,
    pub finished_after: Mutex<Option<f64>>,
}

#[derive(Default)]
pub struct RestoreJobs {
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

/// The target must be an absolute path to a missing or empty folder: a
/// restore from a web page never mixes its files into existing ones.
pub fn check_target(target: &str) -> Result<PathBuf, MountError> {
    let path = PathBuf::from(target.trim());
    if !path.is_absolute() {
        return Err(MountError::BadRequest(format!(
            "the target `{target}` must be an absolute path such as /tmp/restored"
        )));
    }
    match std::fs::read_dir(&path) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(MountError::BadRequest(format!(
                    "{} is not empty: choose an empty or new folder (a restore never mixes into existing files)",
                    path.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(MountError::BadRequest(format!("cannot use {} as the target: {e}", path.display()))),
    }
    Ok(path)
}

impl RestoreJobs {
    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.iter().find(|j| j.id == id).cloned()
    }

    /// Starts restoring `paths` of `snap` into `target` on a new thread.
    pub fn start(
        &self,
        store: Arc<dyn SnapshotStore>,
        snap: SnapshotId,
        paths: Vec<Vec<u8>>,
        target: &Path,
    ) -> Result<Arc<Job>, MountError> {
        let mut jobs = self.jobs.lock().map_err(|_| MountError::Other("restore jobs lock poisoned".into()))?;
        let running = jobs.iter().any(|j| j.state.lock().is_ok_and(|s| matches!(*s, JobState::Running)));
        if running {
            return Err(MountError::Forbidden("a restore is already running; wait for it to finish".into()));
        }
        let cancel = CancelFlag::default();
        let job = Arc::new(Job {
            id: jobs.back().map_or(1, |j| j.id + 1),
            target: target.to_path_buf(),
            paths: paths.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect(),
            progress: Arc::new(RestoreProgress::with_cancel(cancel.clone())),
            cancel,
            started: Instant::now(),
            state: Mutex::new(JobState::Running),
            finished_after: Mutex::new(None),
        });
        let worker = job.clone();
        std::thread::Builder::new()
            .name("vger-mount-restore".into())
            .spawn(move || {
                let result = store.restore(&snap, &paths, &worker.target, &worker.progress);
                let state = match result {
                    Ok(summary) => JobState::Done(summary),
                    Err(MountError::Cancelled) => JobState::Cancelled,
                    Err(e) => JobState::Failed(e.to_string()),
                };
                if let Ok(mut s) = worker.state.lock() {
                    *s = state;
                }
                if let Ok(mut f) = worker.finished_after.lock() {
                    *f = Some(worker.started.elapsed().as_secs_f64());
                }
            })
            .map_err(|e| MountError::io("cannot start the restore thread", e))?;
        jobs.push_back(job.clone());
        while jobs.len() > KEPT {
            jobs.pop_front();
        }
        Ok(job)
    }
}

impl Job {
    /// Asks a running restore to stop at its next safe point (between
    /// files); false when it is no longer running.
    pub fn cancel(&self) -> bool {
        let running = self.state.lock().is_ok_and(|s| matches!(*s, JobState::Running));
        if running {
            self.cancel.cancel();
        }
        running
    }

    pub fn to_json(&self) -> serde_json::Value {
        let p = &self.progress;
        let (state, summary, error) = match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            JobState::Running => ("running", None, None),
            JobState::Done(s) => ("done", Some(s.clone()), None),
            JobState::Cancelled => ("cancelled", None, None),
            JobState::Failed(e) => ("failed", None, Some(e.clone())),
        };
        serde_json::json!({
            "job": self.id,
            "state": state,
            "target": self.target.display().to_string(),
            "paths": self.paths,
            "files": p.files.load(Ordering::Relaxed),
            "bytes": p.bytes.load(Ordering::Relaxed),
            "total_bytes": p.total_bytes(),
            "errors": p.errors.load(Ordering::Relaxed),
            "current": p.current(),
            "seconds": self.finished_after.lock().ok().and_then(|f| *f).unwrap_or(self.started.elapsed().as_secs_f64()),
            "cancel_requested": self.cancel.is_cancelled(),
            "summary": summary,
            "error": error,
        })
    }
}
