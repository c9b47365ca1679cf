//! The Snapshots screen's model: the snapshots of the chosen repository
//! with a text filter, the tree of the selected one ([`Browser`]), and
//! "Restore to…" ([`crate::restore`]).
//!
//! Opening the repository, loading its index, reading a directory and
//! restoring run on worker threads that report through a channel; the UI
//! thread only calls [`Snapshots::poll`]. A generation number drops what a
//! worker reports about a repository or snapshot no longer shown.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vger_app::events::{CancelFlag, ProgressReport};
use vger_app::App;
use vger_engine::index::ChunkIndex;
use vger_engine::repository::Repository;
use vger_engine::restore::Overwrite;
use vger_engine::snapshots::SnapshotInfo;
use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};

use crate::browse::{Browser, Page, ReadRequest};
use crate::explore::{self, Details};
use crate::restore::{self, RestoreJob, RestoreState};

/// One snapshot in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    pub short_id: String,
    pub time: Option<DateTime<Utc>>,
    pub source: String,
    pub host: String,
    pub tags: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

impl SnapshotRow {
    fn of(info: &SnapshotInfo) -> Self {
        let s = &info.snapshot;
        SnapshotRow {
            short_id: vger_engine::snapshots::short_id(&info.id),
            time: DateTime::parse_from_rfc3339(&s.time).ok().map(|t| t.with_timezone(&Utc)),
            source: s.source_label.clone(),
            host: s.hostname.clone(),
            tags: s.tags.clone(),
            files: s.stats.files,
            bytes: s.stats.bytes,
        }
    }

    /// Whether every word of `filter` is in the source label, host, a tag
    /// or the ID (case-insensitive).
    pub fn matches(&self, filter: &str) -> bool {
        let fields = [&self.source, &self.host, &self.short_id]
            .into_iter()
            .chain(self.tags.iter())
            .map(|f| f.to_lowercase())
            .collect::<Vec<_>>();
        filter.split_whitespace().all(|word| {
            let word = word.to_lowercase();
            fields.iter().any(|f| f.contains(&word))
        })
    }
}

/// The list's state.
#[derive(Debug, Clone, PartialEq)]
pub enum ListState {
    Loading,
    Loaded,
    Failed(String),
}

/// An open repository with its index and tree cache, shared by browsing
/// and restoring.
#[derive(Clone)]
struct Session {
    repo: Arc<Repository>,
    store: TreeStore,
    infos: Arc<Vec<SnapshotInfo>>,
}

/// What workers tell the UI thread; `generation` says which repository
/// and snapshot choice it is about.
enum Message {
    Opened {
        generation: u64,
        result: Result<Session, String>,
    },
    Read {
        generation: u64,
        request: ReadRequest,
        result: Result<Page, String>,
    },
    Progress {
        generation: u64,
        report: ProgressReport,
    },
    Restored {
        generation: u64,
        state: RestoreState,
    },
    Details {
        seq: u64,
        result: Result<Details, String>,
    },
    /// The ticked items that already exist in the target `dest`.
    Looked {
        generation: u64,
        dest: PathBuf,
        existing: Vec<String>,
    },
}

use crate::model::{count, Forwarder, Waker};

/// The Snapshots screen.
pub struct Snapshots {
    app: App,
    /// The repository shown (an index into the config's list).
    pub repo: usize,
    pub list: ListState,
    /// Newest first.
    pub rows: Vec<SnapshotRow>,
    pub filter: String,
    /// The snapshot browsed (an index into `rows`).
    pub chosen: Option<usize>,
    pub browser: Option<Browser>,
    /// The "Restore to…" field.
    pub target: String,
    pub restore: RestoreState,
    /// The "Search all snapshots" field.
    pub query: String,
    /// Search results, versions, a comparison or a preview.
    pub details: Details,
    details_seq: u64,
    session: Option<Session>,
    cancel: Option<CancelFlag>,
    generation: u64,
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    waker: Waker,
    /// Looks at the "Restore to" folder, on a worker.
    checks: crate::checks::PathChecks,
}

impl Snapshots {
    /// The screen for the first repository; nothing is read until
    /// [`Snapshots::show_repository`] is called (when the screen opens).
    pub fn new(app: App, waker: Waker) -> Self {
        let (sender, receiver) = mpsc::channel();
        Snapshots {
            app,
            repo: usize::MAX,
            list: ListState::Loading,
            rows: Vec::new(),
            filter: String::new(),
            chosen: None,
            browser: None,
            target: String::new(),
            restore: RestoreState::Idle,
            query: String::new(),
            details: Details::None,
            details_seq: 0,
            session: None,
            cancel: None,
            generation: 0,
            sender,
            receiver,
            checks: crate::checks::PathChecks::new(waker.clone()),
            waker,
        }
    }

    pub fn repository_labels(&self) -> Vec<String> {
        self.app.config.repositories.iter().map(|r| r.label().to_string()).collect()
    }

    /// Shows `repo`'s snapshots (reads them again if it is already shown).
    pub fn show_repository(&mut self, repo: usize) {
        if self.restoring() {
            return;
        }
        self.generation += 1;
        self.repo = repo;
        self.list = ListState::Loading;
        self.rows.clear();
        self.chosen = None;
        self.browser = None;
        self.session = None;
        self.restore = RestoreState::Idle;
        self.details_seq += 1;
        self.details = Details::None;
        let (app, generation) = (self.app.clone(), self.generation);
        self.spawn(move || Message::Opened { generation, result: open_session(&app, repo) });
    }

    /// The rows the filter lets through, with their index in `rows`.
    pub fn visible(&self) -> Vec<(usize, &SnapshotRow)> {
        self.rows.iter().enumerate().filter(|(_, r)| r.matches(&self.filter)).collect()
    }

    /// Opens snapshot `row`'s tree (its top directory is read at once).
    pub fn choose(&mut self, row: usize) {
        if self.restoring() || row >= self.rows.len() {
            return;
        }
        self.generation += 1;
        self.chosen = Some(row);
        self.restore = RestoreState::Idle;
        let (browser, read) = Browser::new();
        self.browser = Some(browser);
        self.read(read);
    }

    /// Opens or closes folder `dir` of the browsed snapshot.
    pub fn toggle_open(&mut self, dir: &[u8]) {
        if let Some(read) = self.browser.as_mut().and_then(|b| b.toggle_open(dir)) {
            self.read(read);
        }
    }

    /// Reads the next page of folder `dir`.
    pub fn more(&mut self, dir: &[u8]) {
        if let Some(read) = self.browser.as_mut().and_then(|b| b.more(dir)) {
            self.read(read);
        }
    }

    fn read(&self, request: ReadRequest) {
        let Some(tree) = self.tree() else { return };
        let generation = self.generation;
        self.spawn(move || {
            let result = crate::browse::read_page(&tree, &request);
            Message::Read { generation, request, result }
        });
    }

    fn tree(&self) -> Option<SnapshotTree> {
        let (session, row) = (self.session.as_ref()?, self.chosen?);
        Some(SnapshotTree::open(&session.store, session.infos.get(row)?))
    }

    /// The snapshot's original folder, if it recorded one.
    pub fn original_place(&self) -> Option<PathBuf> {
        restore::original_place(self.session.as_ref()?.infos.get(self.chosen?)?)
    }

    pub fn selected(&self) -> Vec<Vec<u8>> {
        self.browser.as_ref().map(|b| b.selected.iter().cloned().collect()).unwrap_or_default()
    }

    /// Why "Restore" cannot be pressed now, if it cannot.
    pub fn restore_blocker(&self) -> Option<String> {
        if self.restoring() {
            return Some("A restore is running.".into());
        }
        if self.selected().is_empty() {
            return Some("Tick the files and folders to restore.".into());
        }
        restore::check_target(&self.target, |p| self.checks.found(p)).err()
    }

    /// "Restore": asks first when ticked items exist in the target.
    pub fn start_restore(&mut self) {
        if self.restore_blocker().is_some() {
            return;
        }
        let Ok(dest) = restore::check_target(&self.target, |p| self.checks.found(p)) else { return };
        // Looked at on a worker: the target may be a slow or hung mount.
        self.restore = RestoreState::Looking;
        let (selected, generation) = (self.selected(), self.generation);
        self.spawn(move || {
            let existing = restore::existing_in(&dest, &selected);
            Message::Looked { generation, dest, existing }
        });
    }

    /// The answer to the question: replace (`Some(true)`), keep the
    /// existing files (`Some(false)`) or do nothing (`None`).
    pub fn confirm(&mut self, replace: Option<bool>) {
        let RestoreState::Confirm { dest, .. } = &self.restore else { return };
        let dest = dest.clone();
        match replace {
            Some(true) => self.run_restore(dest, Overwrite::Always),
            Some(false) => self.run_restore(dest, Overwrite::Never),
            None => self.restore = RestoreState::Idle,
        }
    }

    fn run_restore(&mut self, dest: PathBuf, overwrite: Overwrite) {
        let (Some(session), Some(row), Some(tree)) = (self.session.clone(), self.chosen, self.tree()) else { return };
        let Some(info) = session.infos.get(row).cloned() else { return };
        let label = self.repository_labels().get(self.repo).cloned().unwrap_or_default();
        let job = RestoreJob { repo: session.repo, tree, info, label, selected: self.selected(), dest, overwrite };
        let cancel = CancelFlag::default();
        self.cancel = Some(cancel.clone());
        self.restore = RestoreState::Running { progress: None, cancelling: false };
        let generation = self.generation;
        let front = Forwarder::new(self.sender.clone(), self.waker.clone(), cancel, move |report| Message::Progress {
            generation,
            report,
        });
        let app = self.app.clone();
        self.spawn(move || {
            crate::model::background_priority(&app);
            Message::Restored { generation, state: restore::run(&job, &front) }
        });
    }

    /// Runs `work` on the open repository for the panel beside the tree,
    /// showing `doing` meanwhile; an earlier request's answer is dropped.
    fn details_work(&mut self, doing: &str, work: impl FnOnce(&Session) -> Result<Details, String> + Send + 'static) {
        let Some(session) = self.session.clone() else { return };
        self.details_seq += 1;
        self.details = Details::Working(doing.to_string());
        let seq = self.details_seq;
        self.spawn(move || Message::Details { seq, result: work(&session) });
    }

    /// Searches every snapshot of the repository for names matching the query.
    pub fn search(&mut self) {
        let query = self.query.clone();
        if let Err(e) = explore::NameMatch::new(&query) {
            self.details = Details::Failed(e);
            return;
        }
        let doing = format!("Searching {} for “{}”…", count(self.rows.len() as u64, "snapshot"), query.trim());
        self.details_work(&doing, move |s| explore::search(&s.store, &s.infos, &query));
    }

    /// The versions of `path` across every snapshot.
    pub fn versions(&mut self, path: &[u8]) {
        let path = path.to_vec();
        self.details_work("Reading the versions…", move |s| explore::versions(&s.store, &s.infos, &path));
    }

    /// What changed between the browsed snapshot and snapshot `other` (the
    /// older of the two is the "before").
    pub fn compare(&mut self, other: usize) {
        let Some(chosen) = self.chosen else {
            self.details = Details::Failed("Choose a snapshot first, then the one to compare it with.".into());
            return;
        };
        if other == chosen || other >= self.rows.len() {
            return;
        }
        // Rows are newest first: the larger index is the older snapshot.
        let (older, newer) = (chosen.max(other), chosen.min(other));
        self.details_work("Comparing…", move |s| {
            let (Some(a), Some(b)) = (s.infos.get(older), s.infos.get(newer)) else {
                return Err("the snapshot list changed".into());
            };
            explore::diff(&s.store, a, b)
        });
    }

    /// A preview of file `path` of the browsed snapshot.
    pub fn preview(&mut self, path: &[u8]) {
        let (Some(tree), Some(row)) = (self.tree(), self.chosen.and_then(|i| self.rows.get(i))) else { return };
        let (path, short_id) = (path.to_vec(), row.short_id.clone());
        self.details_work("Reading the file…", move |s| explore::preview(&s.repo, &tree, &short_id, &path));
    }

    pub fn close_details(&mut self) {
        self.details_seq += 1;
        self.details = Details::None;
    }

    /// Asks a running restore to stop between files.
    pub fn cancel_restore(&mut self) {
        if let (Some(flag), RestoreState::Running { cancelling, .. }) = (&self.cancel, &mut self.restore) {
            flag.cancel();
            *cancelling = true;
        }
    }

    pub fn restoring(&self) -> bool {
        matches!(self.restore, RestoreState::Running { .. } | RestoreState::Looking)
    }

    fn spawn(&self, work: impl FnOnce() -> Message + Send + 'static) {
        let (sender, waker) = (self.sender.clone(), self.waker.clone());
        std::thread::spawn(move || {
            let _ = sender.send(work());
            waker();
        });
    }

    /// Takes what workers reported; never blocks.
    pub fn poll(&mut self) {
        self.checks.ask(restore::target_paths(&self.target));
        while let Ok(message) = self.receiver.try_recv() {
            match message {
                Message::Opened { generation, result } if generation == self.generation => match result {
                    Ok(session) => {
                        self.rows = session.infos.iter().map(SnapshotRow::of).collect();
                        self.session = Some(session);
                        self.list = ListState::Loaded;
                    }
                    Err(e) => self.list = ListState::Failed(e),
                },
                Message::Read { generation, request, result } if generation == self.generation => {
                    if let Some(b) = self.browser.as_mut() {
                        b.loaded(&request, result);
                    }
                }
                Message::Progress { generation, report } if generation == self.generation => {
                    if let RestoreState::Running { progress, .. } = &mut self.restore {
                        *progress = Some(report);
                    }
                }
                Message::Restored { generation, state } if generation == self.generation => {
                    self.cancel = None;
                    self.restore = state;
                }
                Message::Looked { generation, dest, existing } if generation == self.generation => {
                    if !matches!(self.restore, RestoreState::Looking) {
                        continue;
                    }
                    if existing.is_empty() {
                        self.run_restore(dest, Overwrite::Never);
                    } else {
                        self.restore = RestoreState::Confirm { dest, existing };
                    }
                }
                Message::Details { seq, result } if seq == self.details_seq => {
                    self.details = result.unwrap_or_else(Details::Failed);
                }
                _ => {}
            }
        }
    }
}

/// Opens the repository, lists its snapshots (newest first) and loads its
/// index for the tree reads.
fn open_session(app: &App, repo: usize) -> Result<Session, String> {
    let cfg = app.config.repositories.get(repo).ok_or("no such repository")?;
    let opened = app.open(cfg).map_err(|e| vger_app::one_line(&e))?;
    let mut infos = vger_engine::snapshots::list(&opened).map_err(|e| vger_app::one_line(&e))?;
    infos.sort_by(|a, b| b.snapshot.time.cmp(&a.snapshot.time));
    let index = Arc::new(ChunkIndex::load(&opened).map_err(|e| vger_app::one_line(&e))?);
    let store = TreeStore::new(&opened, index, DEFAULT_CACHE_BYTES);
    Ok(Session { repo: Arc::new(opened), store, infos: Arc::new(infos) })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use vger_app::events::FrontEnd;

    use super::*;
    use crate::browse::{DirState, Line};
    use vger_engine::diff::Change;
    use vger_engine::find::FindChange;

    fn row(source: &str, host: &str, tags: &[&str]) -> SnapshotRow {
        SnapshotRow {
            short_id: "ab12cd34".into(),
            time: None,
            source: source.into(),
            host: host.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            files: 0,
            bytes: 0,
        }
    }

    #[test]
    fn the_filter_matches_label_host_tag_and_id_words() {
        let r = row("Documents", "laptop", &["weekly"]);
        assert!(r.matches(""));
        assert!(r.matches("docu"));
        assert!(r.matches("LAPTOP weekly"));
        assert!(r.matches("ab12"));
        assert!(!r.matches("laptop daily"));
        assert!(!r.matches("server"));
    }

    fn wait(s: &mut Snapshots, what: &str, done: impl Fn(&Snapshots) -> bool) {
        let start = std::time::Instant::now();
        while !done(s) {
            s.poll();
            assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn loaded(s: &Snapshots, dir: &[u8]) -> bool {
        s.browser.as_ref().is_some_and(|b| matches!(b.dirs.get(dir), Some(DirState::Loaded(_))))
    }

    fn shown(s: &Snapshots) -> Vec<String> {
        let b = s.browser.as_ref().unwrap();
        b.lines()
            .iter()
            .filter_map(|l| match l {
                Line::Entry { depth, item, .. } => Some(format!("{}{}", "  ".repeat(*depth), item.name)),
                _ => None,
            })
            .collect()
    }

    /// A real repository, backed up by the application layer, browsed and
    /// restored through the screen's model; restored bytes are compared.
    #[test]
    fn browse_a_snapshot_and_restore_a_file_and_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("data");
        std::fs::create_dir_all(src.join("docs/deep")).unwrap();
        std::fs::write(src.join("a.txt"), b"top file\n").unwrap();
        std::fs::write(src.join("docs/deep/b.bin"), vec![9u8; 300_000]).unwrap();
        std::fs::write(src.join("docs/c.txt"), b"c\n").unwrap();
        let app = crate::model::tests::config(dir.path(), &src);
        app.init(&app.config.repositories[0]).unwrap();
        let mut made = Vec::new();
        app.backup(&app.config.repositories[0], &Default::default(), &vger_app::events::Silent, &mut made).unwrap();

        let mut s = Snapshots::new(app, Arc::new(|| {}));
        s.show_repository(0);
        wait(&mut s, "the list", |s| s.list != ListState::Loading);
        assert_eq!(s.list, ListState::Loaded);
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0].files, 3);
        s.choose(0);
        wait(&mut s, "the top folder", |s| loaded(s, b""));
        assert_eq!(shown(&s), ["a.txt", "docs"]);
        assert_eq!(s.browser.as_ref().unwrap().dirs.len(), 1, "only the top folder was read");
        s.toggle_open(b"docs");
        wait(&mut s, "docs", |s| loaded(s, b"docs"));
        assert_eq!(shown(&s), ["a.txt", "docs", "  c.txt", "  deep"]);
        assert_eq!(s.browser.as_ref().unwrap().dirs.len(), 2, "deep is not read until opened");

        let browser = s.browser.as_mut().unwrap();
        browser.toggle_selected(b"a.txt");
        browser.toggle_selected(b"docs/deep");
        assert!(s.restore_blocker().unwrap().contains("Type the folder"));
        let target = dir.path().join("restored");
        s.target = target.display().to_string();
        assert!(s.restore_blocker().unwrap().contains("Checking the folder"), "not looked at yet");
        wait(&mut s, "the target's check", |s| s.restore_blocker().is_none());
        s.start_restore();
        wait(&mut s, "the restore", |s| !s.restoring());
        let RestoreState::Done(line) = &s.restore else { panic!("{:?}", s.restore) };
        assert!(line.starts_with("Restored 2 files (293.0 KiB) to "), "{line}");
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"top file\n");
        assert_eq!(std::fs::read(target.join("docs/deep/b.bin")).unwrap(), vec![9u8; 300_000]);
        assert!(!target.join("docs/c.txt").exists(), "only what was ticked");

        // Into the original place: the user is asked, and "keep" keeps.
        std::fs::write(src.join("a.txt"), b"changed since\n").unwrap();
        assert_eq!(s.original_place(), Some(src.clone()));
        s.target = src.display().to_string();
        wait(&mut s, "the target's check", |s| s.restore_blocker().is_none());
        s.start_restore();
        assert!(matches!(s.restore, RestoreState::Looking), "{:?}", s.restore);
        wait(&mut s, "the look at the target", |s| !matches!(s.restore, RestoreState::Looking));
        let RestoreState::Confirm { existing, .. } = &s.restore else { panic!("{:?}", s.restore) };
        assert_eq!(existing.len(), 2, "{existing:?}");
        s.confirm(Some(false));
        wait(&mut s, "the restore", |s| !s.restoring());
        assert!(matches!(&s.restore, RestoreState::Done(l) if l.contains("kept")), "{:?}", s.restore);
        assert_eq!(std::fs::read(src.join("a.txt")).unwrap(), b"changed since\n");
        s.start_restore();
        wait(&mut s, "the look at the target", |s| !matches!(s.restore, RestoreState::Looking));
        s.confirm(Some(true));
        wait(&mut s, "the restore", |s| !s.restoring());
        assert_eq!(std::fs::read(src.join("a.txt")).unwrap(), b"top file\n");

        // Cancelled (here before it starts): nothing is written, and it says so.
        struct Cancelled(CancelFlag);
        impl FrontEnd for Cancelled {
            fn cancel_flag(&self) -> CancelFlag {
                self.0.clone()
            }
        }
        let session = s.session.clone().unwrap();
        let job = RestoreJob {
            repo: session.repo.clone(),
            tree: s.tree().unwrap(),
            info: session.infos[0].clone(),
            label: "main".into(),
            selected: vec![b"docs".to_vec()],
            dest: dir.path().join("cancelled"),
            overwrite: Overwrite::Never,
        };
        let flag = CancelFlag::default();
        flag.cancel();
        let state = restore::run(&job, &Cancelled(flag));
        assert!(matches!(&state, RestoreState::Cancelled(l) if l.starts_with("Restore cancelled")), "{state:?}");
        assert!(!dir.path().join("cancelled/docs/c.txt").exists());
    }

    /// Search, versions, comparison and preview on a real repository of
    /// two snapshots, through the screen's model.
    #[test]
    fn search_versions_compare_and_preview() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("data");
        std::fs::create_dir_all(src.join("docs")).unwrap();
        std::fs::write(src.join("notes.txt"), b"first version\n").unwrap();
        std::fs::write(src.join("docs/Notes-old.md"), b"old\n").unwrap();
        std::fs::write(src.join("gone.bin"), [0u8, 1, 2, 3]).unwrap();
        let app = crate::model::tests::config(dir.path(), &src);
        let repo = app.config.repositories[0].clone();
        app.init(&repo).unwrap();
        let mut made = Vec::new();
        let at = |t: &str| vger_app::backup::BackupRequest { time: Some(t.parse().unwrap()), ..Default::default() };
        app.backup(&repo, &at("2026-01-01T10:00:00Z"), &vger_app::events::Silent, &mut made).unwrap();
        std::fs::write(src.join("notes.txt"), b"second version, longer\n").unwrap();
        std::fs::remove_file(src.join("gone.bin")).unwrap();
        std::fs::write(src.join("new.txt"), b"new\n").unwrap();
        app.backup(&repo, &at("2026-01-02T10:00:00Z"), &vger_app::events::Silent, &mut made).unwrap();

        let mut s = Snapshots::new(app, Arc::new(|| {}));
        s.show_repository(0);
        wait(&mut s, "the list", |s| s.list == ListState::Loaded);
        let working = |s: &Snapshots| !matches!(s.details, Details::Working(_));

        s.query = "NOTES".into();
        s.search();
        wait(&mut s, "the search", working);
        let Details::Found { results, searched: 2, more: false, .. } = &s.details else { panic!("{:?}", s.details) };
        let paths: Vec<_> = results.iter().map(|r| String::from_utf8_lossy(&r.path).into_owned()).collect();
        assert_eq!(paths, ["docs/Notes-old.md", "notes.txt"]);
        let changes: Vec<_> = results[1].versions.iter().map(|v| (v.row, v.change)).collect();
        assert_eq!(changes, [(0, FindChange::Modified), (1, FindChange::Added)], "newest first");

        s.versions(b"gone.bin");
        wait(&mut s, "the versions", working);
        let Details::Versions { versions, .. } = &s.details else { panic!("{:?}", s.details) };
        let changes: Vec<_> = versions.iter().map(|v| (v.row, v.change)).collect();
        assert_eq!(changes, [(0, FindChange::Removed), (1, FindChange::Added)]);

        s.compare(1);
        assert!(matches!(&s.details, Details::Failed(e) if e.contains("Choose a snapshot")));
        s.choose(0);
        s.compare(1);
        wait(&mut s, "the comparison", working);
        let Details::Diff { rows, summary, more: false, .. } = &s.details else { panic!("{:?}", s.details) };
        let mut got: Vec<_> = rows.iter().map(|r| (String::from_utf8_lossy(&r.path).into_owned(), r.change)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("gone.bin".to_string(), Change::Removed),
                ("new.txt".to_string(), Change::Added),
                ("notes.txt".to_string(), Change::Modified)
            ]
        );
        assert_eq!((summary.added, summary.removed, summary.modified), (1, 1, 1));

        s.preview(b"notes.txt");
        wait(&mut s, "the preview", working);
        let Details::Preview { preview, .. } = &s.details else { panic!("{:?}", s.details) };
        assert_eq!(*preview, explore::Preview::Text { text: "second version, longer\n".into(), cut: false });
        s.choose(1);
        s.preview(b"gone.bin");
        wait(&mut s, "the preview", working);
        assert!(matches!(&s.details, Details::Preview { preview: explore::Preview::Binary { size: 4, .. }, .. }));
        s.preview(b"docs");
        wait(&mut s, "the preview", working);
        assert!(matches!(&s.details, Details::Failed(e) if e.contains("not a file")), "{:?}", s.details);
    }
}
