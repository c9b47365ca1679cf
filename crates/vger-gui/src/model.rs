//! View models: what the windows show and the work behind their buttons,
//! with no toolkit in sight, so tests drive them without a display.
//!
//! Long work (opening a repository, backing up) runs on a worker thread
//! that reports through a channel; the UI thread only calls [`Overview::poll`].

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vger_app::backup::BackupRequest;
use vger_app::events::{CancelFlag, Event, FrontEnd, ProgressReport};
use vger_app::{App, AppError};

/// How often a running operation reports progress to the window.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// A backup older than this (when the config names no schedule) earns a warning.
pub const DEFAULT_EXPECTED_AGE: Duration = Duration::from_secs(26 * 3600);

/// The last snapshot of a repository, as the Overview shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastSnapshot {
    pub time: DateTime<Utc>,
    pub source: String,
    pub added_bytes: u64,
    pub files: u64,
}

/// What a repository row shows.
#[derive(Debug, Clone, PartialEq)]
pub enum RepoStatus {
    Loading,
    Snapshots { count: usize, last: Option<LastSnapshot> },
    Failed(String),
}

/// The state of "Back up now" for one repository.
#[derive(Debug, Clone)]
pub enum BackupState {
    Idle,
    Running { progress: Option<ProgressReport>, cancelling: bool },
    Done { snapshots: usize, added_bytes: u64 },
    Failed(String),
    Cancelled,
}

/// One repository in the Overview.
#[derive(Debug, Clone)]
pub struct RepoRow {
    pub label: String,
    pub url: String,
    pub status: RepoStatus,
    pub backup: BackupState,
    /// The backup age beyond which the row warns.
    pub expected_age: Duration,
    /// When `vger daemon` plans to run next (from the state it keeps).
    pub next_run: Option<DateTime<Utc>>,
    /// When this app runs the schedule: its next run.
    pub app_next_run: Option<DateTime<Utc>>,
}

impl RepoRow {
    /// A warning when the last snapshot is older than expected (or there is none).
    pub fn staleness(&self, now: DateTime<Utc>) -> Option<String> {
        match &self.status {
            RepoStatus::Snapshots { last: None, .. } => Some("no backup yet".into()),
            RepoStatus::Snapshots { last: Some(last), .. } => {
                let age = (now - last.time).to_std().unwrap_or_default();
                (age > self.expected_age).then(|| {
                    format!("last backup is {} old (expected every {})", human_age(age), human_age(self.expected_age))
                })
            }
            _ => None,
        }
    }
}

/// What workers tell the UI thread.
enum Message {
    Status { repo: usize, status: RepoStatus },
    Progress { repo: usize, report: ProgressReport },
    BackupEnded { repo: usize, state: BackupState },
}

/// What is told of a failed backup: the repository's label and the message.
pub type OnFailure = Box<dyn Fn(&str, &str)>;

/// The Overview screen's model.
pub struct Overview {
    pub app: App,
    pub rows: Vec<RepoRow>,
    cancels: Vec<Option<CancelFlag>>,
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    /// Called after a worker sends, so the window repaints.
    waker: Arc<dyn Fn() + Send + Sync>,
    /// Told of each failed backup (label, message): a desktop notification.
    pub on_failure: OnFailure,
}

impl Overview {
    pub fn new(app: App, waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        let rows = app
            .config
            .repositories
            .iter()
            .map(|r| RepoRow {
                label: r.label().to_string(),
                url: r.url.clone(),
                status: RepoStatus::Loading,
                backup: BackupState::Idle,
                expected_age: expected_age(&app.config, r),
                next_run: None,
                app_next_run: None,
            })
            .collect::<Vec<_>>();
        let (sender, receiver) = mpsc::channel();
        let cancels = vec![None; rows.len()];
        let on_failure = Box::new(crate::desktop::backup_failed);
        let overview = Overview { app, rows, cancels, sender, receiver, waker, on_failure };
        for i in 0..overview.rows.len() {
            overview.refresh(i);
        }
        overview
    }

    /// Each row's next scheduled run, shown only while a daemon runs to
    /// make it (the state file keeps the last plan of a stopped one).
    pub fn set_next_runs(&mut self, schedule: &crate::settings::ScheduleInfo) {
        for (row, (_, _, next)) in self.rows.iter_mut().zip(&schedule.runs) {
            row.next_run = next
                .as_deref()
                .filter(|_| schedule.daemon.is_some())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
        }
    }

    /// Each row's next run when this app runs the schedule.
    pub fn set_app_next_runs(&mut self, runner: &crate::scheduler::Runner) {
        let next = match runner {
            crate::scheduler::Runner::ThisApp(next) => next.as_slice(),
            _ => &[],
        };
        for (i, row) in self.rows.iter_mut().enumerate() {
            row.app_next_run = next.get(i).copied().flatten();
        }
    }

    /// Reloads a repository's snapshot list on a worker thread.
    pub fn refresh(&self, repo: usize) {
        let app = self.app.clone();
        let sender = self.sender.clone();
        let waker = self.waker.clone();
        std::thread::spawn(move || {
            let status = load_status(&app, repo);
            let _ = sender.send(Message::Status { repo, status });
            waker();
        });
    }

    /// Starts "Back up now" for a repository (no-op while one runs).
    pub fn back_up_now(&mut self, repo: usize) {
        self.start(repo, false);
    }

    /// Starts a scheduled run: the daemon's whole cycle (backup, copies,
    /// prune, compact, a check when due), shown in the row as a backup is.
    pub fn run_scheduled(&mut self, repo: usize) {
        self.start(repo, true);
    }

    fn start(&mut self, repo: usize, cycle: bool) {
        let Some(row) = self.rows.get_mut(repo) else { return };
        if matches!(row.backup, BackupState::Running { .. }) {
            return;
        }
        row.backup = BackupState::Running { progress: None, cancelling: false };
        let cancel = CancelFlag::default();
        self.cancels[repo] = Some(cancel.clone());
        let app = self.app.clone();
        let front = Forwarder::new(self.sender.clone(), self.waker.clone(), cancel, move |report| Message::Progress {
            repo,
            report,
        });
        let sender = self.sender.clone();
        let waker = self.waker.clone();
        std::thread::spawn(move || {
            background_priority(&app);
            let state = if cycle { run_cycle(&app, repo, &front) } else { run_backup(&app, repo, &front) };
            let _ = sender.send(Message::BackupEnded { repo, state });
            waker();
        });
    }

    /// Asks a running backup to stop at its next safe point.
    pub fn cancel(&mut self, repo: usize) {
        if let (Some(Some(flag)), Some(row)) = (self.cancels.get(repo), self.rows.get_mut(repo)) {
            flag.cancel();
            if let BackupState::Running { cancelling, .. } = &mut row.backup {
                *cancelling = true;
            }
        }
    }

    pub fn any_running(&self) -> bool {
        self.rows.iter().any(|r| matches!(r.backup, BackupState::Running { .. }))
    }

    /// Takes what workers reported; never blocks.
    pub fn poll(&mut self) {
        loop {
            let message = match self.receiver.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            match message {
                Message::Status { repo, status } => {
                    if let Some(row) = self.rows.get_mut(repo) {
                        row.status = status;
                    }
                }
                Message::Progress { repo, report } => {
                    if let Some(BackupState::Running { progress, .. }) = self.rows.get_mut(repo).map(|r| &mut r.backup)
                    {
                        *progress = Some(report);
                    }
                }
                Message::BackupEnded { repo, state } => {
                    if let Some(c) = self.cancels.get_mut(repo) {
                        *c = None;
                    }
                    if let Some(row) = self.rows.get_mut(repo) {
                        if let BackupState::Failed(message) = &state {
                            (self.on_failure)(&row.label, message);
                        }
                        row.backup = state;
                        // The count and last snapshot shown are stale now.
                        row.status = RepoStatus::Loading;
                    }
                    self.refresh(repo);
                }
            }
        }
    }
}

/// "1 file", "2 files": a count with its noun.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn expected_age(config: &vger_config::Config, repo: &vger_config::RepositoryConfig) -> Duration {
    let every = repo.schedule.as_ref().or(config.schedule.as_ref()).and_then(|s| s.every.as_deref());
    match every.map(vger_config::parse_interval) {
        // A missed run or two is not yet worth a warning.
        Some(Ok(d)) => d.saturating_mul(2),
        _ => DEFAULT_EXPECTED_AGE,
    }
}

fn load_status(app: &App, repo: usize) -> RepoStatus {
    let Some(cfg) = app.config.repositories.get(repo) else { return RepoStatus::Failed("no such repository".into()) };
    let result = app.open(cfg).and_then(|opened| Ok(vger_engine::snapshots::list(&opened)?));
    match result {
        Ok(list) => {
            let last = list
                .iter()
                .filter_map(|s| {
                    let time = DateTime::parse_from_rfc3339(&s.snapshot.time).ok()?.with_timezone(&Utc);
                    Some(LastSnapshot {
                        time,
                        source: s.snapshot.source_label.clone(),
                        added_bytes: s.snapshot.stats.added_bytes,
                        files: s.snapshot.stats.files,
                    })
                })
                .max_by_key(|l| l.time);
            RepoStatus::Snapshots { count: list.len(), last }
        }
        Err(e) => RepoStatus::Failed(vger_app::one_line(&e)),
    }
}

fn run_backup(app: &App, repo: usize, front: &dyn FrontEnd) -> BackupState {
    let Some(cfg) = app.config.repositories.get(repo) else { return BackupState::Failed("no such repository".into()) };
    let mut made = Vec::new();
    match app.backup(cfg, &BackupRequest::default(), front, &mut made) {
        Ok(_) => BackupState::Done {
            snapshots: made.len(),
            added_bytes: made.iter().map(|m| m.report.snapshot.stats.added_bytes).sum(),
        },
        Err(_) if front.cancel_flag().is_cancelled() => BackupState::Cancelled,
        Err(e) => BackupState::Failed(front.describe(&e)),
    }
}

/// The scheduled run of a repository, as the daemon runs it: its
/// outcome told as a backup's (the first failed step's message).
fn run_cycle(app: &App, repo: usize, front: &dyn FrontEnd) -> BackupState {
    let Some(cfg) = app.config.repositories.get(repo) else { return BackupState::Failed("no such repository".into()) };
    let summary = app.cycle(cfg, front);
    if front.cancel_flag().is_cancelled() {
        return BackupState::Cancelled;
    }
    match summary.steps.iter().find(|s| s.status == vger_app::cycle::StepStatus::Failed) {
        Some(step) => BackupState::Failed(format!("{}: {}", step.step.name(), step.detail)),
        None => BackupState::Done {
            snapshots: summary.snapshots.len(),
            added_bytes: summary.snapshots.iter().map(|m| m.report.snapshot.stats.added_bytes).sum(),
        },
    }
}

/// How much lower than the window's the app's long work (backup, restore,
/// maintenance) runs, unless the config's `limits.nice` names a value:
/// the window keeps painting while the work takes every core.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling worker thread's CPU priority: to the config's
/// `limits.nice` (as the CLI applies it), or [`BACKGROUND_NICE`] below the
/// app's own. Linux keeps a nice value per thread, and the threads the
/// engine starts from this one inherit it; the UI thread keeps its own. A
/// refusal (a sandbox) is logged and ignored.
pub fn background_priority(app: &App) {
    // SAFETY: gettid, getpriority and setpriority on the calling thread's
    // own id take and return integers only.
    let done = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let nice = match app.config.limits.as_ref().and_then(|l| l.nice) {
            Some(n) => n,
            None => (libc::getpriority(libc::PRIO_PROCESS, tid) + BACKGROUND_NICE).min(19),
        };
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if done != 0 {
        eprintln!("vger-gui: cannot lower a worker's priority: {}", std::io::Error::last_os_error());
    }
}

/// What wakes the window when a worker has news for it.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The front end a worker gives the application layer: each progress
/// report goes to the UI thread as the message `wrap` makes of it, and the
/// window is woken to show it.
pub(crate) struct Forwarder<M> {
    sender: Mutex<Sender<M>>,
    wrap: Box<dyn Fn(ProgressReport) -> M + Send + Sync>,
    waker: Waker,
    cancel: CancelFlag,
}

impl<M: Send> Forwarder<M> {
    pub fn new(
        sender: Sender<M>,
        waker: Waker,
        cancel: CancelFlag,
        wrap: impl Fn(ProgressReport) -> M + Send + Sync + 'static,
    ) -> Self {
        Forwarder { sender: Mutex::new(sender), wrap: Box::new(wrap), waker, cancel }
    }
}

/// An error as the window tells it: the one-line message, with the fix
/// worded for someone using this window rather than the config file.
pub fn describe_for_window(error: &AppError) -> String {
    let line = vger_app::one_line(error);
    // A backup's error comes wrapped in the source it belongs to.
    let mut inner = error;
    while let AppError::Source { source, .. } = inner {
        inner = source;
    }
    match inner {
        AppError::SourceMissing { .. } => format!(
            "{line}: if it is on a drive or a network share, connect it; otherwise choose another folder \
             under Sources in Settings"
        ),
        _ => line,
    }
}

impl<M: Send> FrontEnd for Forwarder<M> {
    fn describe(&self, error: &AppError) -> String {
        describe_for_window(error)
    }

    fn event(&self, event: &Event<'_>) {
        if let Event::Progress(report) = event {
            if let Ok(sender) = self.sender.lock() {
                let _ = sender.send((self.wrap)((*report).clone()));
            }
            (self.waker)();
        }
    }

    fn progress_interval(&self) -> Option<Duration> {
        Some(PROGRESS_EVERY)
    }

    fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }
}

/// `1.5 GiB`, `300 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3d 4h`, `5m 2s`.
pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// The progress line under a running backup.
pub fn progress_line(p: &ProgressReport) -> String {
    let mut line = format!("{} files, {} at {}/s", p.files, human_bytes(p.bytes), human_bytes(p.bytes_per_sec as u64));
    if let Some(total) = p.total_bytes {
        line.push_str(&format!(" of {}", human_bytes(total)));
    }
    if let Some(eta) = p.eta_seconds {
        line.push_str(&format!(", about {} left", human_age(Duration::from_secs_f64(eta.max(0.0)))));
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    fn row(last: Option<DateTime<Utc>>) -> RepoRow {
        RepoRow {
            label: "r".into(),
            url: "/tmp/r".into(),
            status: RepoStatus::Snapshots {
                count: usize::from(last.is_some()),
                last: last.map(|time| LastSnapshot { time, source: "s".into(), added_bytes: 1, files: 1 }),
            },
            backup: BackupState::Idle,
            expected_age: Duration::from_secs(3600),
            next_run: None,
            app_next_run: None,
        }
    }

    #[test]
    fn a_row_warns_only_when_the_last_backup_is_too_old() {
        let now = Utc::now();
        assert_eq!(row(Some(now - chrono::Duration::minutes(30))).staleness(now), None);
        let old = row(Some(now - chrono::Duration::hours(3))).staleness(now).unwrap();
        assert!(old.contains("3h 0m old"), "{old}");
        assert_eq!(row(None).staleness(now).as_deref(), Some("no backup yet"));
    }

    #[test]
    fn sizes_ages_and_progress_read_well() {
        assert_eq!(human_bytes(300), "300 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_age(Duration::from_secs(90_000)), "1d 1h");
        let p = ProgressReport {
            operation: vger_app::events::Operation::Backup,
            repository: "r".into(),
            source: None,
            files: 12,
            bytes: 1 << 20,
            new_bytes: 0,
            errors: 0,
            total_files: None,
            total_bytes: Some(4 << 20),
            totals_estimated: false,
            bytes_per_sec: 1048576.0,
            eta_seconds: Some(3.0),
            current: "a".into(),
            elapsed_seconds: 1.0,
            done: false,
        };
        assert_eq!(progress_line(&p), "12 files, 1.0 MiB at 1.0 MiB/s of 4.0 MiB, about 3s left");
    }

    fn wait_until(overview: &mut Overview, done: impl Fn(&Overview) -> bool) {
        let start = std::time::Instant::now();
        while !done(overview) {
            overview.poll();
            assert!(start.elapsed() < Duration::from_secs(60), "timed out: {:?}", overview.rows);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn config(dir: &std::path::Path, source: &std::path::Path) -> App {
        let path = dir.join("vger.yaml");
        let text = format!(
            "repositories:\n  - url: {}\n    label: main\nencryption:\n  mode: none\nsources:\n  - {}\n",
            dir.join("repo").display(),
            source.display()
        );
        std::fs::write(&path, &text).unwrap();
        App::new(vger_config::Config::from_yaml_str(&text, &path).unwrap(), path)
    }

    #[test]
    fn back_up_now_makes_a_snapshot_the_row_then_shows() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("a.txt"), vec![7u8; 100_000]).unwrap();
        let app = config(dir.path(), &source);
        app.init(&app.config.repositories[0]).unwrap();
        let mut overview = Overview::new(app, Arc::new(|| {}));
        wait_until(&mut overview, |o| matches!(o.rows[0].status, RepoStatus::Snapshots { count: 0, .. }));
        overview.back_up_now(0);
        wait_until(&mut overview, |o| !o.any_running());
        assert!(matches!(overview.rows[0].backup, BackupState::Done { snapshots: 1, .. }), "{:?}", overview.rows[0]);
        wait_until(&mut overview, |o| matches!(o.rows[0].status, RepoStatus::Snapshots { count: 1, .. }));
        let RepoStatus::Snapshots { last: Some(last), .. } = &overview.rows[0].status else { panic!() };
        assert_eq!(last.files, 1);
        assert_eq!(overview.rows[0].staleness(Utc::now()), None);
    }

    #[test]
    fn a_scheduled_run_is_the_daemons_cycle_and_fails_with_its_step_named() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("a.txt"), b"scheduled").unwrap();
        let app = config(dir.path(), &source);
        app.init(&app.config.repositories[0]).unwrap();
        let mut overview = Overview::new(app, Arc::new(|| {}));
        overview.run_scheduled(0);
        wait_until(&mut overview, |o| !o.any_running());
        assert!(matches!(overview.rows[0].backup, BackupState::Done { snapshots: 1, .. }), "{:?}", overview.rows[0]);
        std::fs::remove_dir_all(&source).unwrap();
        overview.on_failure = Box::new(|_, _| {});
        overview.run_scheduled(0);
        wait_until(&mut overview, |o| !o.any_running());
        let BackupState::Failed(message) = &overview.rows[0].backup else { panic!("{:?}", overview.rows[0]) };
        assert!(message.starts_with("backup: ") && message.contains("data"), "{message}");
    }

    #[test]
    fn a_missing_source_shows_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let app = config(dir.path(), &dir.path().join("missing"));
        app.init(&app.config.repositories[0]).unwrap();
        let mut overview = Overview::new(app, Arc::new(|| {}));
        let told = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let record = told.clone();
        overview.on_failure = Box::new(move |label, message| record.borrow_mut().push(format!("{label}: {message}")));
        overview.back_up_now(0);
        wait_until(&mut overview, |o| !o.any_running());
        let BackupState::Failed(message) = &overview.rows[0].backup else { panic!("{:?}", overview.rows[0]) };
        assert!(message.contains("missing"), "{message}");
        assert_eq!(*told.borrow(), [format!("main: {message}")], "the desktop is told once");
    }
}
