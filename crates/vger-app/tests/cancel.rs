//! Cancelling long operations through the application layer, as a front
//! end would (its flag set from a progress event): backup, restore, check
//! and compact each stop at a safe point, and afterwards a full check with
//! data verification passes and every snapshot restores byte for byte.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use vger_app::backup::BackupRequest;
use vger_app::events::{CancelFlag, Event, FrontEnd, Operation, ProgressReport, Silent};
use vger_app::{App, Outcome};
use vger_config::{Config, Environment, RepositoryConfig};
use vger_engine::check::CheckOptions;
use vger_engine::compact::CompactOptions;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::RestoreOptions;
use vger_engine::snapshots;
use vger_storage::testsuite::pattern;

const PASS: &str = "cancel-test-passphrase";

/// Cancels the first `operation` once `when` holds for one of its progress
/// reports; records the last report it saw.
struct CancelWhen {
    operation: Operation,
    when: fn(&ProgressReport) -> bool,
    flag: CancelFlag,
    fired: AtomicBool,
    last: Mutex<Option<ProgressReport>>,
}

impl CancelWhen {
    fn new(operation: Operation, when: fn(&ProgressReport) -> bool) -> Self {
        CancelWhen {
            operation,
            when,
            flag: CancelFlag::default(),
            fired: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }
}

impl FrontEnd for CancelWhen {
    fn event(&self, event: &Event<'_>) {
        if let Event::Progress(r) = event {
            if r.operation == self.operation && (self.when)(r) && !self.fired.swap(true, Ordering::SeqCst) {
                self.flag.cancel();
            }
            *self.last.lock().unwrap() = Some((*r).clone());
        }
    }

    fn progress_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(2))
    }

    fn cancel_flag(&self) -> CancelFlag {
        self.flag.clone()
    }
}

/// Records the last progress report (never cancels).
#[derive(Default)]
struct LastReport(Mutex<Option<ProgressReport>>);

impl FrontEnd for LastReport {
    fn event(&self, event: &Event<'_>) {
        if let Event::Progress(r) = event {
            *self.0.lock().unwrap() = Some((*r).clone());
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    app: App,
}

impl Fixture {
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    fn repo(&self) -> &RepositoryConfig {
        &self.app.config.repositories[0]
    }

    fn open(&self) -> Repository {
        self.app.open(self.repo()).unwrap()
    }

    fn snapshot_count(&self) -> usize {
        snapshots::list(&self.open()).unwrap().len()
    }

    fn backup(&self) -> Outcome {
        self.app.backup(self.repo(), &BackupRequest::default(), &Silent, &mut Vec::new()).unwrap()
    }

    /// A full check with data verification finds nothing wrong.
    fn assert_consistent(&self) {
        let opts = CheckOptions { verify_data: true, ..CheckOptions::default() };
        let report = self.app.check(self.repo(), &opts, &Silent).unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
    }

    /// The latest snapshot restores to exactly what `src` holds now.
    fn assert_latest_restores(&self) {
        let repo = self.open();
        let snap = snapshots::find(&repo, "latest").unwrap();
        let dest = self.dir.path().join(format!("restored-{}", snapshots::short_id(&snap.id)));
        vger_app::restore::restore_snapshot(&repo, "r", &snap, &dest, &RestoreOptions::default(), &Silent).unwrap();
        assert_eq!(files(&dest), files(&self.src()));
    }
}

/// `count` files of `size` bytes, a repository with 1 MiB packs, and
/// `extra` YAML at the top level of the config.
fn fixture(count: usize, size: usize, extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..count {
        std::fs::write(src.join(format!("f{i:04}.bin")), pattern(i as u64 + 1, size)).unwrap();
    }
    let yaml = format!(
        "repositories:\n  - label: r\n    url: \"{}\"\n    encryption: {{ passphrase: {PASS} }}\nsources:\n  - label: data\n    path: \"{}\"\ncache_dir: \"{}\"\n{extra}",
        dir.path().join("repo").display(),
        src.display(),
        dir.path().join("cache").display()
    );
    let path = dir.path().join("vger.yaml");
    let env = Environment::from_map(HashMap::new(), dir.path());
    let config = Config::from_yaml_str_in(&yaml, &path, &env).unwrap();
    let app = App::new(config, path);
    let repo = &app.config.repositories[0];
    let opts = InitOptions {
        kdf: vger_crypto::KdfParams::insecure_fast(),
        pack_target_size: 1 << 20,
        ..vger_app::init::init_options(&app.config, repo).unwrap()
    };
    Repository::init(app.storage(repo, true).unwrap(), Some(PASS.as_bytes().to_vec()), opts).unwrap();
    Fixture { dir, app }
}

/// Relative path -> content of every file below `root`.
fn files(root: &Path) -> HashMap<PathBuf, Vec<u8>> {
    let mut out = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_cancelled_backup_commits_nothing_and_the_next_one_reuses_its_chunks() {
    // 16 MiB read at 4 MiB/s: about four seconds, cancelled after 2 MiB.
    let f = fixture(32, 512 << 10, "limits: { io_read_mib_per_sec: 4 }\n");
    let front = CancelWhen::new(Operation::Backup, |r| r.bytes >= 2 << 20);
    let err = f.app.backup(f.repo(), &BackupRequest::default(), &front, &mut Vec::new()).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let last = front.last.lock().unwrap().clone().unwrap();
    assert!(last.done && last.bytes < 12 << 20, "stopped early: {last:?}");
    assert!(last.new_bytes >= 2 << 20, "new bytes are counted: {last:?}");
    assert_eq!(f.snapshot_count(), 0, "no snapshot of a cancelled backup");
    f.assert_consistent();

    // The chunks stored before the cancel are indexed: the next backup
    // (unthrottled) does not store them again.
    let mut app = f.app.clone();
    app.config.limits = None;
    let front = LastReport::default();
    let mut made = Vec::new();
    assert_eq!(app.backup(f.repo(), &BackupRequest::default(), &front, &mut made).unwrap(), Outcome::Ok);
    let report = front.0.lock().unwrap().clone().unwrap();
    assert_eq!(report.bytes, 16 << 20);
    let added = made[0].report.snapshot.stats.added_bytes;
    assert_eq!(report.new_bytes, added, "progress and the snapshot agree on new bytes");
    assert!(added <= (16 << 20) - last.new_bytes + (64 << 10), "added {added} after {} were stored", last.new_bytes);
    f.assert_consistent();
    f.assert_latest_restores();
}

#[test]
fn a_cancelled_restore_leaves_only_whole_files_and_the_repository_untouched() {
    let f = fixture(1500, 3000, "");
    f.backup();
    let repo = f.open();
    let snap = snapshots::find(&repo, "latest").unwrap();
    let dest = f.dir.path().join("partial");
    let front = CancelWhen::new(Operation::Restore, |r| r.files >= 5);
    let err =
        vger_app::restore::restore_snapshot(&repo, "r", &snap, &dest, &RestoreOptions::default(), &front).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let source = files(&f.src());
    let restored = files(&dest);
    assert!(restored.len() < source.len(), "stopped early: {} of {} files", restored.len(), source.len());
    for (path, data) in &restored {
        assert_eq!(source.get(path), Some(data), "{} is whole", path.display());
    }
    f.assert_consistent();
    f.assert_latest_restores();
}

#[test]
fn a_cancelled_check_stops_and_a_later_one_passes() {
    let f = fixture(24, 256 << 10, "");
    f.backup();
    let front = CancelWhen::new(Operation::Check, |_| true);
    let opts = CheckOptions { verify_data: true, ..CheckOptions::default() };
    let err = f.app.check(f.repo(), &opts, &front).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    f.assert_consistent();
}

#[test]
fn a_compact_cancelled_while_repacking_keeps_every_snapshot_whole() {
    // 1 MiB packs of 256 KiB files; a second snapshot without half of the
    // files, and the first snapshot deleted: half of each pack is unused.
    let f = fixture(48, 256 << 10, "");
    f.backup();
    let first = snapshots::find(&f.open(), "latest").unwrap().id;
    for i in (0..48).step_by(2) {
        std::fs::remove_file(f.src().join(format!("f{i:04}.bin"))).unwrap();
    }
    f.backup();
    vger_engine::prune::delete_snapshots(&f.open(), &[first]).unwrap();
    let opts = CompactOptions { grace: Duration::ZERO, threshold_pct: 10, ..CompactOptions::default() };

    // Cancelled once the first pack is being copied: what was copied is
    // committed, the packs not reached are kept.
    let front = CancelWhen::new(Operation::Compact, |r| r.bytes > 0);
    let err = f.app.compact(f.repo(), &opts, &front).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let last = front.last.lock().unwrap().clone().unwrap();
    assert!(last.total_bytes.is_some_and(|t| last.bytes < t), "stopped before the last pack: {last:?}");
    f.assert_consistent();
    f.assert_latest_restores();

    // A compact not cancelled finishes the work.
    let report = f.app.compact(f.repo(), &opts, &Silent).unwrap();
    assert!(report.packs_repacked > 0, "{report:?}");
    f.assert_consistent();
    f.assert_latest_restores();
}
