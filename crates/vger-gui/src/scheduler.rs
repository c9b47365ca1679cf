//! The schedule, run by the app itself while it is open and no `vger
//! daemon` runs for its config. The two share the daemon's single-instance
//! rule ([`vger_app::scheduler_lock`]): whichever starts first holds the
//! lock, and the other stands aside (a daemon started later refuses and
//! names the app; the app shows a running daemon's state instead, and
//! takes over once that daemon stops).
//!
//! A thread of its own takes the lock, keeps each repository's timetable
//! (`every` counted from the last scheduled run, or `cron` in local time)
//! and says when a repository is due; the window starts that backup as
//! "Back up now" would, so it shows with its progress and Cancel. The
//! last and next run are recorded where the daemon keeps them, so a daemon
//! started later carries on from there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use vger_app::scheduler_lock::{SchedulerLock, SchedulerLockError};
use vger_config::{Config, RepositoryConfig};

use crate::model::Waker;

/// The name the app writes in the lock file (and the daemon's refusal names).
pub const HOLDER: &str = "vger-gui";

/// How often the thread looks at the clock and the lock.
const TICK: Duration = Duration::from_millis(500);

/// How a repository's backups are timed.
#[derive(Debug, Clone)]
pub enum Cadence {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Cadence {
    /// The repository's effective schedule (its own, else the top level
    /// one), `None` when it has none or it is off; `Err` names a mistake.
    pub fn of(config: &Config, repo: &RepositoryConfig) -> Result<Option<Cadence>, String> {
        let Some(written) = repo.schedule.as_ref().or(config.schedule.as_ref()).filter(|s| s.enabled) else {
            return Ok(None);
        };
        match (&written.every, &written.cron) {
            (Some(every), None) => vger_config::parse_interval(every).map(|d| Some(Cadence::Every(d))),
            (None, Some(cron)) => croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .year(croner::parser::Year::Disallowed)
                .dom_and_dow(false)
                .build()
                .parse(cron)
                .map(|c| Some(Cadence::Cron(Box::new(c))))
                .map_err(|e| format!("cron expression `{cron}` is not valid: {e}")),
            (Some(_), Some(_)) => Err("`schedule` sets both `every` and `cron`; keep one".into()),
            (None, None) => Ok(None),
        }
    }

    /// The next run after `now`, given the last scheduled run: a run
    /// missed while nothing ran is made at once.
    pub fn next(&self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Cadence::Every(every) => {
                let step = chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX);
                match last {
                    Some(last) => (last + step).min(now + step),
                    None => now + step,
                }
            }
            Cadence::Cron(cron) => {
                let from = last.unwrap_or(now);
                cron.find_next_occurrence(&from.with_timezone(&Local), false)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(now + chrono::Duration::days(366 * 100))
            }
        }
    }
}

/// Who runs the schedule, as the window shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// The scheduler thread has not said yet (for up to a tick after the
    /// config was read again, while the previous one lets go of the lock):
    /// shown as such, not as "nothing scheduled", which may be untrue.
    Starting,
    /// Nothing is scheduled in the config.
    Nothing,
    /// This app, with each repository's next run (config order).
    ThisApp(Vec<Option<DateTime<Utc>>>),
    /// Another process holds the lock (a daemon, another window): its words.
    Elsewhere(String),
    /// The schedule has a mistake (the message), or the lock cannot be taken.
    Failed(String),
}

/// What the thread tells the window.
pub enum Note {
    Runner(Runner),
    /// Repository `n` is due: start its backup.
    Due(usize),
}

/// The running scheduler; dropping it stops the thread (and releases the
/// lock within a [`TICK`]).
pub struct Scheduler {
    receiver: Receiver<Note>,
    stop: Arc<AtomicBool>,
    pub runner: Runner,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Scheduler {
    pub fn start(config: &Config, config_path: &std::path::Path, waker: Waker) -> Self {
        let (sender, receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (config, path, flag) = (config.clone(), config_path.to_path_buf(), stop.clone());
        std::thread::spawn(move || run(&config, &path, &flag, &sender, &waker));
        Scheduler { receiver, stop, runner: Runner::Starting }
    }

    /// The repositories due now; keeps [`Scheduler::runner`] up to date.
    pub fn poll(&mut self) -> Vec<usize> {
        let mut due = Vec::new();
        while let Ok(note) = self.receiver.try_recv() {
            match note {
                Note::Runner(r) => self.runner = r,
                Note::Due(n) => due.push(n),
            }
        }
        due
    }
}

fn run(config: &Config, path: &std::path::Path, stop: &AtomicBool, sender: &Sender<Note>, waker: &Waker) {
    let send = |note| {
        let _ = sender.send(note);
        waker();
    };
    let cadences: Result<Vec<Option<Cadence>>, String> = config
        .repositories
        .iter()
        .map(|r| Cadence::of(config, r).map_err(|e| format!("repository `{}`: {e}", r.label())))
        .collect();
    let cadences = match cadences {
        Ok(c) if c.iter().all(Option::is_none) => return send(Note::Runner(Runner::Nothing)),
        Ok(c) => c,
        Err(e) => return send(Note::Runner(Runner::Failed(e))),
    };
    let mut lock: Option<SchedulerLock> = None;
    let mut shown: Option<Runner> = None;
    let mut next: Vec<Option<DateTime<Utc>>> = vec![None; cadences.len()];
    while !stop.load(Ordering::Relaxed) {
        if lock.is_none() {
            match SchedulerLock::acquire(path, config.cache_dir.as_ref(), HOLDER) {
                Ok(l) => {
                    lock = Some(l);
                    let now = Utc::now();
                    for ((n, cadence), repo) in next.iter_mut().zip(&cadences).zip(&config.repositories) {
                        let last = vger_app::state::load(config.cache_dir.as_ref(), repo)
                            .daemon_last_run
                            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                            .map(|t| t.with_timezone(&Utc));
                        *n = cadence.as_ref().map(|c| c.next(last, now));
                    }
                }
                // This window's previous scheduler (a config read again) lets go within a tick.
                Err(SchedulerLockError::Held { pid: Some(pid), holder: Some(h), .. })
                    if pid == std::process::id() && h == HOLDER => {}
                Err(e @ SchedulerLockError::Held { .. }) => {
                    let runner = Runner::Elsewhere(e.to_string());
                    if shown.as_ref() != Some(&runner) {
                        shown = Some(runner.clone());
                        send(Note::Runner(runner));
                    }
                }
                Err(e) => {
                    let runner = Runner::Failed(e.to_string());
                    if shown.as_ref() != Some(&runner) {
                        shown = Some(runner.clone());
                        send(Note::Runner(runner));
                    }
                }
            }
        }
        if lock.is_some() {
            let now = Utc::now();
            for (i, ((n, cadence), repo)) in next.iter_mut().zip(&cadences).zip(&config.repositories).enumerate() {
                let (Some(due), Some(cadence)) = (*n, cadence) else { continue };
                if due <= now {
                    let upcoming = cadence.next(Some(now), now);
                    *n = Some(upcoming);
                    vger_app::state::update(config.cache_dir.as_ref(), repo, |s| {
                        s.daemon_last_run = Some(now.to_rfc3339());
                        s.daemon_next_run = Some(upcoming.to_rfc3339());
                    });
                    send(Note::Due(i));
                }
            }
            let runner = Runner::ThisApp(next.clone());
            if shown.as_ref() != Some(&runner) {
                shown = Some(runner.clone());
                send(Note::Runner(runner));
            }
        }
        std::thread::sleep(TICK);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn config_with(dir: &std::path::Path, schedule: &str) -> (Config, std::path::PathBuf) {
        let path = dir.join("vger.yaml");
        let text = format!(
            "repositories:\n  - url: {}\n    label: main\nencryption:\n  mode: none\nsources:\n  - {}\n\
             cache_dir: {}\n{schedule}",
            dir.join("repo").display(),
            dir.join("src").display(),
            dir.join("cache").display()
        );
        std::fs::write(&path, &text).unwrap();
        (Config::from_yaml_str(&text, &path).unwrap(), path)
    }

    #[test]
    fn every_counts_from_the_last_run_and_a_missed_run_is_made_at_once() {
        let every = Cadence::Every(Duration::from_secs(3600));
        let now = Utc::now();
        assert_eq!(every.next(None, now), now + chrono::Duration::hours(1));
        let last = now - chrono::Duration::minutes(20);
        assert_eq!(every.next(Some(last), now), last + chrono::Duration::hours(1));
        let long_ago = now - chrono::Duration::days(3);
        assert!(every.next(Some(long_ago), now) <= now, "missed: due at once");
    }

    #[test]
    fn the_app_runs_a_due_backup_and_a_second_scheduler_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (config, path) = config_with(dir.path(), "schedule:\n  enabled: true\n  every: 1s\n");
        let mut scheduler = Scheduler::start(&config, &path, Arc::new(|| {}));
        let start = std::time::Instant::now();
        let mut due = Vec::new();
        while due.is_empty() {
            due = scheduler.poll();
            assert!(start.elapsed() < Duration::from_secs(20), "never due: {:?}", scheduler.runner);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(due, [0]);
        assert!(matches!(&scheduler.runner, Runner::ThisApp(next) if next[0].is_some()), "{:?}", scheduler.runner);
        // The daemon's rule: one scheduler per config.
        let refused = SchedulerLock::acquire(&path, config.cache_dir.as_ref(), "vger daemon").unwrap_err();
        assert_eq!(refused.holder(), Some(HOLDER), "{refused}");
        let state = vger_app::state::load(config.cache_dir.as_ref(), &config.repositories[0]);
        assert!(state.daemon_last_run.is_some() && state.daemon_next_run.is_some(), "{state:?}");
        // Closed, the app lets go.
        drop(scheduler);
        let start = std::time::Instant::now();
        while SchedulerLock::acquire(&path, config.cache_dir.as_ref(), "vger daemon").is_err() {
            assert!(start.elapsed() < Duration::from_secs(5), "the lock was never released");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_scheduler_started_second_stands_aside_and_nothing_scheduled_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (config, path) = config_with(dir.path(), "schedule:\n  enabled: true\n  every: 1s\n");
        let held = SchedulerLock::acquire(&path, config.cache_dir.as_ref(), "vger daemon").unwrap();
        let mut scheduler = Scheduler::start(&config, &path, Arc::new(|| {}));
        let start = std::time::Instant::now();
        while !matches!(scheduler.runner, Runner::Elsewhere(_)) {
            assert!(scheduler.poll().is_empty(), "ran while a daemon holds the lock");
            assert!(start.elapsed() < Duration::from_secs(10), "{:?}", scheduler.runner);
            std::thread::sleep(Duration::from_millis(20));
        }
        let Runner::Elsewhere(text) = &scheduler.runner else { panic!() };
        assert!(text.starts_with("vger daemon (PID "), "{text}");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(scheduler.poll().is_empty(), "ran while a daemon holds the lock");
        // The daemon stops: the app takes over.
        drop(held);
        let start = std::time::Instant::now();
        while !matches!(scheduler.runner, Runner::ThisApp(_)) {
            scheduler.poll();
            assert!(start.elapsed() < Duration::from_secs(10), "{:?}", scheduler.runner);
            std::thread::sleep(Duration::from_millis(20));
        }

        std::fs::create_dir_all(dir.path().join("none")).unwrap();
        let (config, path) = config_with(&dir.path().join("none"), "");
        let mut scheduler = Scheduler::start(&config, &path, Arc::new(|| {}));
        std::thread::sleep(Duration::from_millis(300));
        scheduler.poll();
        assert_eq!(scheduler.runner, Runner::Nothing);
    }
}
