//! The Maintenance screen's model: check (with a share of the data read
//! back and verified), prune with a preview of what each retention rule
//! keeps and deletes before anything is deleted, and compact. Each runs on
//! a worker through the application layer, with progress and Cancel
//! (check and compact stop at a safe point; prune is a short delete).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use vger_app::events::{CancelFlag, Event, FrontEnd, ProgressReport};
use vger_app::App;
use vger_engine::check::{CheckOptions, CheckReport};
use vger_engine::compact::CompactOptions;
use vger_engine::prune::PruneOptions;
use vger_engine::retention::Decision;

use crate::model::{count, human_bytes, Forwarder, Waker};

/// The three tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Check,
    Prune,
    Compact,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Check => "Check",
            Task::Prune => "Prune",
            Task::Compact => "Compact",
        }
    }
}

/// What prune would do, shown before it does it.
#[derive(Debug, Clone)]
pub struct PrunePlan {
    /// Newest first within each source.
    pub decisions: Vec<Decision>,
    /// Whether the config has retention rules for this repository at all.
    pub has_rules: bool,
    /// Snapshots held back because a burst of new ones would push them out.
    pub held: usize,
    /// The snapshots changed between the last preview and "Delete": this
    /// is the new preview, and nothing was deleted.
    pub changed: bool,
}

impl PrunePlan {
    pub fn deletes(&self) -> usize {
        self.decisions.iter().filter(|d| !d.keep).count()
    }

    /// The IDs of the snapshots it deletes, sorted.
    fn deleted_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.decisions.iter().filter(|d| !d.keep).map(|d| d.id.clone()).collect();
        ids.sort();
        ids
    }
}

/// Where the screen stands.
#[derive(Debug, Clone)]
pub enum TaskState {
    Idle,
    Running {
        task: Task,
        progress: Option<ProgressReport>,
        cancelling: bool,
    },
    /// Prune's dry run, waiting for "Delete".
    Preview(PrunePlan),
    /// The result lines.
    Done {
        task: Task,
        lines: Vec<String>,
    },
    Failed {
        task: Task,
        message: String,
        lines: Vec<String>,
    },
    Cancelled(Task),
}

enum Message {
    Progress { seq: u64, report: ProgressReport },
    Ended { seq: u64, state: TaskState },
}

/// The Maintenance screen.
pub struct Maintenance {
    app: App,
    /// The repository worked on (index into the config's list).
    pub repo: usize,
    /// How much of the data a check reads back and verifies, 0 to 100.
    pub verify_percent: u8,
    /// Packs younger than this are left alone by compact (3 hours; the
    /// test hook `VGER_GUI_COMPACT_GRACE_SECONDS` shortens it).
    pub compact_grace: std::time::Duration,
    pub state: TaskState,
    cancel: Option<CancelFlag>,
    seq: u64,
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    waker: Waker,
}

/// The front end of a maintenance task: progress to the window, and the
/// check's report kept (a damaged repository is an error that carries
/// only counts; the report names the problems).
struct TaskFront {
    forward: Forwarder<Message>,
    checked: Mutex<Option<CheckReport>>,
}

impl FrontEnd for TaskFront {
    fn event(&self, event: &Event<'_>) {
        if let Event::Checked { report, .. } = event {
            if let Ok(mut slot) = self.checked.lock() {
                *slot = Some((*report).clone());
            }
        }
        self.forward.event(event);
    }

    fn progress_interval(&self) -> Option<std::time::Duration> {
        self.forward.progress_interval()
    }

    fn cancel_flag(&self) -> CancelFlag {
        self.forward.cancel_flag()
    }
}

impl Maintenance {
    pub fn new(app: App, waker: Waker) -> Self {
        let (sender, receiver) = mpsc::channel();
        Maintenance {
            app,
            repo: 0,
            verify_percent: 10,
            compact_grace: std::env::var("VGER_GUI_COMPACT_GRACE_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(std::time::Duration::from_secs)
                .unwrap_or(CompactOptions::default().grace),
            state: TaskState::Idle,
            cancel: None,
            seq: 0,
            sender,
            receiver,
            waker,
        }
    }

    pub fn repository_labels(&self) -> Vec<String> {
        self.app.config.repositories.iter().map(|r| r.label().to_string()).collect()
    }

    pub fn running(&self) -> bool {
        matches!(self.state, TaskState::Running { .. })
    }

    /// Picks the repository (not while a task runs).
    pub fn set_repository(&mut self, repo: usize) {
        if !self.running() && repo < self.app.config.repositories.len() {
            self.repo = repo;
            self.state = TaskState::Idle;
        }
    }

    /// The options a check runs with for the chosen percentage.
    pub fn check_options(&self) -> CheckOptions {
        let p = self.verify_percent.min(100);
        CheckOptions {
            verify_data: p > 0,
            max_percent: (p > 0 && p < 100).then_some(f64::from(p)),
            distrust_server: false,
        }
    }

    fn start(
        &mut self,
        task: Task,
        work: impl FnOnce(&App, &vger_config::RepositoryConfig, &TaskFront) -> TaskState + Send + 'static,
    ) {
        if self.running() {
            return;
        }
        let Some(repo) = self.app.config.repositories.get(self.repo).cloned() else { return };
        self.seq += 1;
        let seq = self.seq;
        let cancel = CancelFlag::default();
        self.cancel = Some(cancel.clone());
        self.state = TaskState::Running { task, progress: None, cancelling: false };
        let forward = Forwarder::new(self.sender.clone(), self.waker.clone(), cancel, move |report| {
            Message::Progress { seq, report }
        });
        let front = TaskFront { forward, checked: Mutex::new(None) };
        let (app, sender, waker) = (self.app.clone(), self.sender.clone(), self.waker.clone());
        std::thread::spawn(move || {
            crate::model::background_priority(&app);
            let state = work(&app, &repo, &front);
            let _ = sender.send(Message::Ended { seq, state });
            waker();
        });
    }

    /// Checks the repository (and reads back the chosen share of the data).
    pub fn check(&mut self) {
        let opts = self.check_options();
        self.start(Task::Check, move |app, repo, front| {
            let result = app.check_with_hooks(repo, &opts, front);
            let report = front.checked.lock().ok().and_then(|mut r| r.take());
            match result {
                Ok(report) => TaskState::Done { task: Task::Check, lines: check_lines(&report, &opts) },
                Err(e) if e.is_cancelled() => TaskState::Cancelled(Task::Check),
                Err(e) => TaskState::Failed {
                    task: Task::Check,
                    message: front.describe(&e),
                    lines: report.map(|r| problem_lines(&r)).unwrap_or_default(),
                },
            }
        });
    }

    /// Works out what prune would delete (deletes nothing).
    pub fn prune_preview(&mut self) {
        self.start(Task::Prune, |app, repo, front| match plan(app, repo, front) {
            Ok(plan) => TaskState::Preview(plan),
            Err(message) => TaskState::Failed { task: Task::Prune, message, lines: Vec::new() },
        });
    }

    /// Deletes what the preview showed would go: the rules are applied
    /// again first, and if they would now delete other snapshots (some
    /// were added or deleted meanwhile) nothing is deleted and the new
    /// preview is shown instead.
    pub fn prune_confirm(&mut self) {
        let TaskState::Preview(shown) = &self.state else { return };
        if shown.deletes() == 0 {
            self.state = TaskState::Idle;
            return;
        }
        let expected = shown.deleted_ids();
        self.state = TaskState::Idle;
        self.start(Task::Prune, move |app, repo, front| {
            let again = match plan(app, repo, front) {
                Ok(p) => p,
                Err(message) => return TaskState::Failed { task: Task::Prune, message, lines: Vec::new() },
            };
            if again.deleted_ids() != expected {
                return TaskState::Preview(PrunePlan { changed: true, ..again });
            }
            match app.prune_with_hooks(repo, &PruneOptions::default(), front) {
                Ok(report) => TaskState::Done {
                    task: Task::Prune,
                    lines: vec![format!(
                        "Deleted {}, kept {}. Compact frees the space they held.",
                        count(report.deleted as u64, "snapshot"),
                        report.kept
                    )],
                },
                Err(e) => TaskState::Failed { task: Task::Prune, message: front.describe(&e), lines: Vec::new() },
            }
        });
    }

    /// Frees the space of chunks no snapshot uses.
    pub fn compact(&mut self) {
        let options = CompactOptions { grace: self.compact_grace, ..CompactOptions::default() };
        self.start(Task::Compact, move |app, repo, front| match app.compact_with_hooks(repo, &options, front) {
            Ok(r) => {
                let mut lines = vec![format!(
                    "Freed {} ({} deleted, {} repacked into {}); {} left alone for now (written in the last 3 hours).",
                    human_bytes(r.bytes_removed.saturating_sub(r.bytes_written)),
                    count(r.packs_deleted as u64, "pack"),
                    count(r.packs_repacked as u64, "pack"),
                    count(r.packs_written as u64, "new pack"),
                    count(r.packs_too_young as u64, "recent pack"),
                )];
                lines.extend(r.warnings.iter().map(|w| format!("Warning: {w}")));
                TaskState::Done { task: Task::Compact, lines }
            }
            Err(e) if e.is_cancelled() => TaskState::Cancelled(Task::Compact),
            Err(e) => TaskState::Failed { task: Task::Compact, message: front.describe(&e), lines: Vec::new() },
        });
    }

    /// Back from the prune preview without deleting.
    pub fn dismiss(&mut self) {
        if !self.running() {
            self.state = TaskState::Idle;
        }
    }

    /// Asks the running task to stop at its next safe point.
    pub fn cancel(&mut self) {
        if let (Some(flag), TaskState::Running { cancelling, .. }) = (&self.cancel, &mut self.state) {
            flag.cancel();
            *cancelling = true;
        }
    }

    /// Takes what workers reported; never blocks.
    pub fn poll(&mut self) {
        while let Ok(message) = self.receiver.try_recv() {
            match message {
                Message::Progress { seq, report } if seq == self.seq => {
                    if let TaskState::Running { progress, .. } = &mut self.state {
                        *progress = Some(report);
                    }
                }
                Message::Ended { seq, state } if seq == self.seq => {
                    self.cancel = None;
                    self.state = state;
                }
                _ => {}
            }
        }
    }
}

/// Prune's dry run: what the rules keep and delete.
fn plan(app: &App, repo: &vger_config::RepositoryConfig, front: &TaskFront) -> Result<PrunePlan, String> {
    let opts = PruneOptions { dry_run: true, ..Default::default() };
    let report = app.prune(repo, &opts, front).map_err(|e| front.describe(&e))?;
    Ok(PrunePlan {
        decisions: report.decisions,
        has_rules: vger_app::retention::has_rules(&app.config, repo),
        held: report.flood.held.len(),
        changed: false,
    })
}

/// A check's result in words.
fn check_lines(r: &CheckReport, opts: &CheckOptions) -> Vec<String> {
    let data = match (opts.verify_data, opts.max_percent) {
        (false, _) => "structure only (no data read back)".to_string(),
        (true, Some(p)) => format!("{p:.0}% of the data read back: {} verified", count(r.chunks_verified, "chunk")),
        (true, None) => format!("all data read back: {} verified", count(r.chunks_verified, "chunk")),
    };
    let mut lines = vec![format!(
        "No problems found: {}, {} checked; {data}.",
        count(r.packs as u64, "pack"),
        count(r.snapshots_checked as u64, "snapshot")
    )];
    lines.extend(r.warnings.iter().map(|w| format!("Warning: {w}")));
    lines
}

/// The problems a check found, a line each.
fn problem_lines(r: &CheckReport) -> Vec<String> {
    let mut lines: Vec<String> = r.errors.iter().map(|e| format!("Problem: {e}")).collect();
    if !r.damaged_snapshots.is_empty() {
        lines.push(format!("Snapshots that cannot be fully restored: {}", r.damaged_snapshots.join(", ")));
    }
    lines
}

/// A decision's line: time, source, and what keeps it or that it goes.
pub fn decision_line(d: &Decision) -> String {
    let time = chrono::DateTime::parse_from_rfc3339(&d.time)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| d.time.clone());
    let short = d.id.get(..8).unwrap_or(&d.id);
    let what = if d.keep { format!("keep ({})", d.reasons.join(", ")) } else { "delete".to_string() };
    format!("{time}  {short}  {}@{}  {what}", d.source_label, d.hostname)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn wait(m: &mut Maintenance) {
        let start = std::time::Instant::now();
        while m.running() {
            m.poll();
            assert!(start.elapsed() < Duration::from_secs(60), "timed out: {:?}", m.state);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new repository (`keep_last: 1`) of the empty folder `data`.
    fn repository() -> (tempfile::TempDir, std::path::PathBuf, App, vger_config::RepositoryConfig) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("data");
        std::fs::create_dir(&src).unwrap();
        let path = dir.path().join("vger.yaml");
        let text = format!(
            "repositories:\n  - url: {}\n    label: main\nencryption:\n  mode: none\nsources:\n  - {}\nretention:\n  keep_last: 1\n",
            dir.path().join("repo").display(),
            src.display()
        );
        let app = App::new(vger_config::Config::from_yaml_str(&text, &path).unwrap(), path);
        let repo = app.config.repositories[0].clone();
        app.init(&repo).unwrap();
        (dir, src, app, repo)
    }

    /// A real repository of three snapshots and `keep_last: 1`: the preview
    /// deletes nothing and says which rule keeps what; Delete deletes the
    /// two the preview named; compact then frees their space; a check
    /// reading all the data back finds no problem, and one after a pack
    /// is damaged names it.
    #[test]
    fn check_prune_with_preview_and_compact() {
        let (dir, src, app, repo) = repository();
        for (i, t) in ["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"].iter().enumerate() {
            std::fs::write(src.join(format!("f{i}")), vec![i as u8 + 1; 200_000]).unwrap();
            let req = vger_app::backup::BackupRequest { time: Some(t.parse().unwrap()), ..Default::default() };
            app.backup(&repo, &req, &vger_app::events::Silent, &mut Vec::new()).unwrap();
        }
        let listed = |app: &App| vger_engine::snapshots::list(&app.open(&repo).unwrap()).unwrap().len();
        let mut m = Maintenance::new(app.clone(), Arc::new(|| {}));

        m.prune_preview();
        wait(&mut m);
        let TaskState::Preview(plan) = &m.state else { panic!("{:?}", m.state) };
        assert_eq!(plan.deletes(), 2);
        assert!(plan.has_rules);
        let kept: Vec<_> = plan.decisions.iter().filter(|d| d.keep).map(|d| d.time.clone()).collect();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].starts_with("2026-01-03"), "{kept:?}");
        assert!(decision_line(plan.decisions.iter().find(|d| d.keep).unwrap()).ends_with("keep (last)"));
        assert_eq!(listed(&app), 3, "the preview deletes nothing");
        m.dismiss();
        assert!(matches!(m.state, TaskState::Idle));
        assert_eq!(listed(&app), 3, "dismissed, nothing deleted");

        // A snapshot added between the preview and "Delete": nothing is
        // deleted, and the new preview says why.
        m.prune_preview();
        wait(&mut m);
        std::fs::write(src.join("late"), b"late").unwrap();
        let req = vger_app::backup::BackupRequest {
            time: Some("2026-01-04T10:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        app.backup(&repo, &req, &vger_app::events::Silent, &mut Vec::new()).unwrap();
        m.prune_confirm();
        wait(&mut m);
        let TaskState::Preview(plan) = &m.state else { panic!("{:?}", m.state) };
        assert!(plan.changed && plan.deletes() == 3, "{plan:?}");
        assert_eq!(listed(&app), 4, "nothing deleted");
        m.prune_confirm();
        wait(&mut m);
        assert!(
            matches!(&m.state, TaskState::Done { lines, .. } if lines[0].starts_with("Deleted 3 snapshots")),
            "{:?}",
            m.state
        );
        assert_eq!(listed(&app), 1);

        m.compact();
        wait(&mut m);
        // Packs are younger than the grace period: kept, and said so.
        let TaskState::Done { lines, .. } = &m.state else { panic!("{:?}", m.state) };
        assert!(lines[0].contains("left alone for now"), "{lines:?}");

        m.verify_percent = 100;
        assert!(m.check_options().verify_data && m.check_options().max_percent.is_none());
        m.check();
        wait(&mut m);
        let TaskState::Done { lines, .. } = &m.state else { panic!("{:?}", m.state) };
        assert!(lines[0].starts_with("No problems found") && lines[0].contains("all data read back"), "{lines:?}");

        // Cancelled at once: the check stops at its first safe point and
        // says so. (Compact here has nothing to repack, so it ends before
        // any safe point; its cancellation is the engine's, tested there.)
        m.check();
        m.cancel();
        assert!(matches!(m.state, TaskState::Running { cancelling: true, .. }));
        wait(&mut m);
        assert!(matches!(m.state, TaskState::Cancelled(Task::Check)), "{:?}", m.state);

        // Damage every pack: the check fails and names problems.
        let packs = dir.path().join("repo/packs");
        let mut damaged = 0;
        for entry in walk(&packs) {
            let mut bytes = std::fs::read(&entry).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&entry, bytes).unwrap();
            damaged += 1;
        }
        assert!(damaged > 0, "no pack files under {}", packs.display());
        m.check();
        wait(&mut m);
        let TaskState::Failed { message, lines, .. } = &m.state else { panic!("{:?}", m.state) };
        assert!(message.contains("problem"), "{message}");
        assert!(lines.iter().any(|l| l.starts_with("Problem: ")), "{lines:?}");

        let mut m = Maintenance::new(app, Arc::new(|| {}));
        m.verify_percent = 0;
        assert!(!m.check_options().verify_data);
        m.verify_percent = 25;
        assert_eq!(m.check_options().max_percent, Some(25.0));
    }

    /// Compact and check cancelled from the screen's model at once: each
    /// says it was cancelled, and the engine's own check of the whole
    /// repository (all data read back) then finds nothing wrong.
    #[test]
    fn a_cancelled_compact_or_check_leaves_a_repository_that_checks_clean() {
        let (_dir, src, app, repo) = repository();
        for i in 0..8u8 {
            let seed = u64::from(i) + 1;
            let bytes: Vec<u8> =
                (0..3u64 << 20).map(|j| ((j ^ seed << 40).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
            std::fs::write(src.join(format!("f{i}")), bytes).unwrap();
        }
        app.backup(&repo, &Default::default(), &vger_app::events::Silent, &mut Vec::new()).unwrap();
        for i in 0..6u8 {
            std::fs::remove_file(src.join(format!("f{i}"))).unwrap();
        }
        app.backup(&repo, &Default::default(), &vger_app::events::Silent, &mut Vec::new()).unwrap();
        let mut m = Maintenance::new(app.clone(), Arc::new(|| {}));
        m.compact_grace = Duration::ZERO;
        m.prune_preview();
        wait(&mut m);
        m.prune_confirm();
        wait(&mut m);
        assert!(matches!(&m.state, TaskState::Done { .. }), "{:?}", m.state);

        let clean = |app: &App| {
            let opts = CheckOptions { verify_data: true, ..Default::default() };
            let report = app.check_with_hooks(&repo, &opts, &vger_app::events::Silent).unwrap();
            assert!(report.is_ok(), "{report:?}");
        };
        m.compact();
        m.cancel();
        wait(&mut m);
        assert!(matches!(m.state, TaskState::Cancelled(Task::Compact)), "{:?}", m.state);
        clean(&app);
        m.verify_percent = 100;
        m.check();
        m.cancel();
        wait(&mut m);
        assert!(matches!(m.state, TaskState::Cancelled(Task::Check)), "{:?}", m.state);
        clean(&app);
        // Not cancelled, the compact then frees the deleted files' space.
        m.compact();
        wait(&mut m);
        let TaskState::Done { lines, .. } = &m.state else { panic!("{:?}", m.state) };
        assert!(!lines[0].starts_with("Freed 0 B"), "{lines:?}");
        clean(&app);
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
