//! The Settings screen's model: the schedule, the retention rules and the
//! compression of `vger.yaml`, written back with only the changed lines
//! rewritten ([`crate::yaml_edit`]) after the CLI's own loader accepted
//! the new text (its message is shown otherwise, and nothing is written);
//! the daemon's state for this config; and the file watched for changes
//! made by hand (its modification time and size, polled).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use vger_config::Config;

use crate::yaml_edit;

/// One editable setting: where it is in the file and what the form holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key path in the file (`schedule.every`).
    pub path: &'static [&'static str],
    /// The label in the form (and the test's name for the field).
    pub label: &'static str,
    pub hint: &'static str,
    /// As the form shows it; empty means "not set".
    pub value: String,
    /// As the file has it.
    loaded: String,
}

/// The form's fields, in the order shown.
const FIELDS: [(&[&str], &str, &str); 9] = [
    (&["schedule", "every"], "Back up every", "6h, 1d (empty: no interval)"),
    (&["schedule", "cron"], "Or at (cron)", "0 3 * * * means every day at 03:00"),
    (&["retention", "keep_last"], "Keep the last", "number of snapshots"),
    (&["retention", "keep_hourly"], "Keep hourly", "hours with a snapshot"),
    (&["retention", "keep_daily"], "Keep daily", "days"),
    (&["retention", "keep_weekly"], "Keep weekly", "weeks"),
    (&["retention", "keep_monthly"], "Keep monthly", "months"),
    (&["retention", "keep_within"], "Keep everything within", "14d, 2w, 6m"),
    (&["compression"], "Compression", "lz4, zstd, zstd:1..22, none"),
];

/// What the file says for a field, as text ("" when not set).
fn value_of(config: &Config, path: &[&str]) -> String {
    let r = config.retention.as_ref();
    let n = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    match path {
        ["schedule", "every"] => config.schedule.as_ref().and_then(|s| s.every.clone()).unwrap_or_default(),
        ["schedule", "cron"] => config.schedule.as_ref().and_then(|s| s.cron.clone()).unwrap_or_default(),
        ["retention", "keep_last"] => n(r.and_then(|r| r.keep_last)),
        ["retention", "keep_hourly"] => n(r.and_then(|r| r.keep_hourly)),
        ["retention", "keep_daily"] => n(r.and_then(|r| r.keep_daily)),
        ["retention", "keep_weekly"] => n(r.and_then(|r| r.keep_weekly)),
        ["retention", "keep_monthly"] => n(r.and_then(|r| r.keep_monthly)),
        ["retention", "keep_within"] => r.and_then(|r| r.keep_within.clone()).unwrap_or_default(),
        ["compression"] => config.compression.map(|c| c.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

/// The file's identity for change detection: modification time and size.
pub type Stamp = Option<(SystemTime, u64)>;

pub fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// A running `vger daemon` for this config, from its lock file.
#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub pid: u32,
}

/// What the app shows about the scheduler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInfo {
    pub daemon: Option<Daemon>,
    /// Per repository, in the config's order: label, the daemon's last and next run.
    pub runs: Vec<(String, Option<String>, Option<String>)>,
}

/// The daemon's state for `config_path`, and each repository's last and next run.
fn schedule_info(config_path: &Path, cache: Option<&PathBuf>, repos: &[vger_config::RepositoryConfig]) -> ScheduleInfo {
    let daemon = running_daemon(&vger_app::dirs::daemon_lock_file(config_path, cache));
    let runs = repos
        .iter()
        .map(|r| {
            let state = vger_app::state::load(cache, r);
            (r.label().to_string(), state.daemon_last_run, state.daemon_next_run)
        })
        .collect();
    ScheduleInfo { daemon, runs }
}

/// One look of the [`watch`] thread.
pub struct Look {
    /// The config file's stamp when looked at.
    pub stamp: Stamp,
    /// The file read again as the CLI reads it, when its stamp changed.
    pub loaded: Option<Result<Config, String>>,
    pub schedule: ScheduleInfo,
}

/// Looks every second, on a thread of its own (the window never waits on
/// the disk), at the config file (read again when its stamp differs from
/// the last one seen, starting with `seen`) and at the daemon; sends each
/// look that differs from the one before and wakes the window. Ends when
/// the receiver is dropped.
pub fn watch(
    config: &Config,
    config_path: &Path,
    seen: Stamp,
    sender: std::sync::mpsc::Sender<Look>,
    waker: crate::model::Waker,
) {
    let (path, cache, repos) = (config_path.to_path_buf(), config.cache_dir.clone(), config.repositories.clone());
    std::thread::spawn(move || {
        let (mut last, mut shown) = (seen, None);
        loop {
            let now = stamp(&path);
            let loaded = (now != last).then(|| Config::load(Some(&path)).map(|l| l.config).map_err(|e| e.to_string()));
            last = now;
            let schedule = schedule_info(&path, cache.as_ref(), &repos);
            if loaded.is_some() || shown.as_ref() != Some(&schedule) {
                shown = Some(schedule.clone());
                if sender.send(Look { stamp: now, loaded, schedule }).is_err() {
                    return;
                }
                waker();
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
}

/// The daemon that holds the lock file of `config_path`, if one runs: the
/// file names its PID, and that process is alive and a `vger daemon`.
/// (Only read: taking the lock, even for a moment, could make a daemon
/// starting at that instant think another one runs.)
pub fn running_daemon(lock_file: &Path) -> Option<Daemon> {
    let text = std::fs::read_to_string(lock_file).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_vger = args.first().is_some_and(|a| a.ends_with(b"vger"));
    let is_daemon = args.iter().any(|a| *a == b"daemon");
    (is_vger && is_daemon).then_some(Daemon { pid })
}

/// The Settings screen.
pub struct Settings {
    pub path: PathBuf,
    pub schedule_enabled: bool,
    loaded_enabled: bool,
    pub fields: Vec<Field>,
    /// The last save's result, or why the file cannot be used.
    pub message: Option<Result<String, String>>,
    /// The file as last read or written.
    stamp: Stamp,
    /// A save running on a worker: the form as it is once saved.
    saving: Option<std::sync::mpsc::Receiver<Settings>>,
}

impl Settings {
    /// The form for `config`, read from `path` (whose stamp is read here).
    pub fn new(config: &Config, path: &Path) -> Self {
        Settings::with_stamp(config, path, stamp(path))
    }

    /// The form for `config`, read from `path` when it had `stamp`.
    pub fn with_stamp(config: &Config, path: &Path, stamp: Stamp) -> Self {
        let enabled = config.schedule.as_ref().is_some_and(|s| s.enabled);
        let fields = FIELDS
            .iter()
            .map(|(p, label, hint)| {
                let value = value_of(config, p);
                Field { path: p, label, hint, loaded: value.clone(), value }
            })
            .collect();
        Settings {
            path: path.to_path_buf(),
            schedule_enabled: enabled,
            loaded_enabled: enabled,
            fields,
            message: None,
            stamp,
            saving: None,
        }
    }

    /// Saves on a worker (the window never waits on the disk); [`Self::poll`]
    /// takes the result. The form is read-only meanwhile.
    pub fn start_save(&mut self, waker: crate::model::Waker) {
        if self.saving.is_some() {
            return;
        }
        let mut form = Settings {
            path: self.path.clone(),
            schedule_enabled: self.schedule_enabled,
            loaded_enabled: self.loaded_enabled,
            fields: self.fields.clone(),
            message: None,
            stamp: self.stamp,
            saving: None,
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        self.saving = Some(receiver);
        std::thread::spawn(move || {
            form.save();
            let _ = sender.send(form);
            waker();
        });
    }

    pub fn saving(&self) -> bool {
        self.saving.is_some()
    }

    /// Takes a finished save; never blocks.
    pub fn poll(&mut self) {
        if let Some(done) = self.saving.as_ref().and_then(|r| r.try_recv().ok()) {
            *self = done;
        }
    }

    pub fn field_mut(&mut self, label: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|f| f.label == label)
    }

    /// Whether the form differs from the file.
    pub fn dirty(&self) -> bool {
        self.schedule_enabled != self.loaded_enabled || self.fields.iter().any(|f| f.value.trim() != f.loaded)
    }

    /// The file's text with the form's changes, checked by the CLI's
    /// loader: the new text and config, or the loader's message.
    pub fn edited(&self) -> Result<(String, Config), String> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let mut out = text.clone();
        if self.schedule_enabled != self.loaded_enabled {
            out = yaml_edit::set(
                &out,
                &["schedule", "enabled"],
                Some(if self.schedule_enabled { "true" } else { "false" }),
            )
            .map_err(|e| e.to_string())?;
        }
        for f in self.fields.iter().filter(|f| f.value.trim() != f.loaded) {
            let v = f.value.trim();
            let value = (!v.is_empty()).then(|| yaml_edit::scalar(v));
            out = yaml_edit::set(&out, f.path, value.as_deref()).map_err(|e| e.to_string())?;
        }
        let config = Config::from_yaml_str(&out, &self.path).map_err(|e| e.to_string())?;
        // The edit landed where it was meant to: the loader reads back
        // what the form says.
        for f in &self.fields {
            let (read, want) = (value_of(&config, f.path), f.value.trim());
            let same = match f.path {
                ["compression"] => read.is_empty() == want.is_empty(),
                ["schedule", _] | ["retention", "keep_within"] => read == want,
                _ => read.parse::<u64>().ok() == want.parse::<u64>().ok(),
            };
            if !same {
                return Err(format!(
                    "`{}` reads back as `{read}`, not `{want}`; change it in the file by hand",
                    f.path.join(".")
                ));
            }
        }
        Ok((out, config))
    }

    /// Writes the changes (the rest of the file as it was) and returns the
    /// new config; on a refusal the file is left alone and the form keeps
    /// what was typed.
    pub fn save(&mut self) -> Option<Config> {
        if self.changed_on_disk() {
            // Read again first (the window does within a second), so that
            // a change made by hand at the same moment is not overwritten.
            self.message = Some(Err(format!(
                "{} was just changed by another program, so nothing was saved. \
                 It is read again in a moment (your changes stay in the form): then press Save again.",
                self.path.display()
            )));
            return None;
        }
        let result = self.edited().and_then(|(text, config)| {
            crate::files::write_atomic(&self.path, text.as_bytes(), None, true)
                .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
            Ok(config)
        });
        match result {
            Ok(config) => {
                let message = format!("Saved to {}.", self.path.display());
                *self = Settings::new(&config, &self.path);
                self.message = Some(Ok(message));
                Some(config)
            }
            Err(e) => {
                self.message = Some(Err(e));
                None
            }
        }
    }

    /// The file's stamp as last read or written here.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// Whether the file changed since it was last read or written here.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.path) != self.stamp
    }

    /// The file as read again after a change by hand (`loaded`: the
    /// config, or the loader's message; `now`: its stamp). The form takes
    /// the new values except where something was typed and not saved yet:
    /// that stays, to be saved on top of the new file.
    pub fn reloaded(&mut self, loaded: &Result<Config, String>, now: Stamp) {
        match loaded {
            Ok(config) => {
                // The stamp the watcher read: the window does not touch the disk.
                let mut fresh = Settings::with_stamp(config, &self.path, now);
                if self.schedule_enabled != self.loaded_enabled {
                    fresh.schedule_enabled = self.schedule_enabled;
                }
                for (new, old) in fresh.fields.iter_mut().zip(&self.fields) {
                    if old.value.trim() != old.loaded {
                        new.value = old.value.clone();
                    }
                }
                let kept = if fresh.dirty() { " Your unsaved changes are still in the form." } else { "" };
                fresh.message = Some(Ok(format!("The file changed on disk and was read again.{kept}")));
                *self = fresh;
            }
            Err(e) => {
                self.stamp = now;
                self.message = Some(Err(format!(
                    "The file was changed by another program and now has a mistake, so the app keeps \
                     using the settings it had. Correct the file in a text editor: {e}"
                )));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const TEXT: &str = "# My backups. Keep this comment.\nrepositories:\n  - url: /srv/vger   # the NAS\n    label: nas\n\nsources:\n  - /home/me\n\nschedule:\n  enabled: false\n  every: 6h   # twice as often as before\n\n# Retention below\nretention:\n  keep_daily: 7\n";

    fn settings(dir: &Path) -> Settings {
        let path = dir.join("vger.yaml");
        std::fs::write(&path, TEXT).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::from_yaml_str(TEXT, &path).unwrap();
        Settings::new(&config, &path)
    }

    #[test]
    fn saving_rewrites_only_the_changed_lines_and_the_cli_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        assert_eq!(s.field_mut("Back up every").unwrap().value, "6h");
        assert!(!s.dirty());
        s.schedule_enabled = true;
        s.field_mut("Back up every").unwrap().value = "2h".into();
        s.field_mut("Keep weekly").unwrap().value = "4".into();
        s.field_mut("Keep daily").unwrap().value = String::new();
        s.field_mut("Compression").unwrap().value = "zstd:3".into();
        assert!(s.dirty());
        let config = s.save().unwrap();
        assert!(matches!(&s.message, Some(Ok(m)) if m.starts_with("Saved")), "{:?}", s.message);
        let text = std::fs::read_to_string(&s.path).unwrap();
        let expected = TEXT
            .replace("enabled: false", "enabled: true")
            .replace("every: 6h   #", "every: 2h   #")
            .replace("  keep_daily: 7\n", "  keep_weekly: 4\n")
            + "\ncompression: zstd:3\n";
        assert_eq!(text, expected);
        let loaded = Config::load(Some(&s.path)).unwrap().config;
        assert_eq!(loaded.schedule.as_ref().unwrap().every.as_deref(), Some("2h"));
        assert_eq!(config.retention.as_ref().unwrap().keep_weekly, Some(4));
        assert_eq!(config.retention.as_ref().unwrap().keep_daily, None);
        assert_eq!(std::fs::metadata(&s.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!s.dirty());
        assert!(!s.changed_on_disk(), "its own write is not a change by hand");
    }

    #[test]
    fn the_window_saves_on_a_worker_and_takes_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.field_mut("Keep daily").unwrap().value = "9".into();
        s.start_save(std::sync::Arc::new(|| {}));
        assert!(s.saving());
        let start = std::time::Instant::now();
        while s.saving() {
            s.poll();
            assert!(start.elapsed().as_secs() < 30, "the save never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(matches!(&s.message, Some(Ok(m)) if m.starts_with("Saved")), "{:?}", s.message);
        assert!(!s.dirty());
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), TEXT.replace("keep_daily: 7", "keep_daily: 9"));
    }

    #[test]
    fn a_value_the_cli_refuses_is_not_written_and_its_message_shown() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.field_mut("Back up every").unwrap().value = "often".into();
        assert!(s.save().is_none());
        let Some(Err(message)) = &s.message else { panic!("{:?}", s.message) };
        assert!(message.contains("vger.yaml") && message.contains("every"), "{message}");
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), TEXT);
        assert_eq!(s.field_mut("Back up every").unwrap().value, "often", "what was typed stays");
    }

    #[test]
    fn a_change_by_hand_is_seen_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        assert!(!s.changed_on_disk());
        std::fs::write(&s.path, TEXT.replace("keep_daily: 7", "keep_daily: 30 # by hand")).unwrap();
        assert!(s.changed_on_disk());
        let loaded = Config::load(Some(&s.path)).map(|l| l.config).map_err(|e| e.to_string());
        s.reloaded(&loaded, stamp(&s.path));
        assert_eq!(s.field_mut("Keep daily").unwrap().value, "30");
        assert!(!s.changed_on_disk());
        std::fs::write(&s.path, "repositories: [\n").unwrap();
        assert!(s.changed_on_disk());
        s.reloaded(&Err("line 1: broken".into()), stamp(&s.path));
        assert!(matches!(&s.message, Some(Err(m)) if m.contains("line 1: broken")));
        assert!(!s.changed_on_disk(), "a broken file is reported once");
        assert_eq!(s.field_mut("Keep daily").unwrap().value, "30", "the form keeps the last good values");
    }

    /// Typed and not saved while the file is changed by hand: Save refuses
    /// until the file is read again, the reading keeps what was typed, and
    /// the save then lands on top of the change by hand.
    #[test]
    fn a_change_by_hand_while_typing_is_neither_lost_nor_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.field_mut("Keep weekly").unwrap().value = "4".into();
        let by_hand = TEXT.replace("keep_daily: 7", "keep_daily: 30 # by hand");
        std::fs::write(&s.path, &by_hand).unwrap();
        assert!(s.save().is_none());
        assert!(matches!(&s.message, Some(Err(m)) if m.contains("nothing was saved")), "{:?}", s.message);
        assert_eq!(std::fs::read_to_string(&s.path).unwrap(), by_hand);

        let loaded = Config::load(Some(&s.path)).map(|l| l.config).map_err(|e| e.to_string());
        s.reloaded(&loaded, stamp(&s.path));
        assert!(matches!(&s.message, Some(Ok(m)) if m.contains("unsaved changes")), "{:?}", s.message);
        assert_eq!(s.field_mut("Keep daily").unwrap().value, "30");
        assert_eq!(s.field_mut("Keep weekly").unwrap().value, "4");
        s.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&s.path).unwrap(),
            by_hand.replace("keep_daily: 30 # by hand\n", "keep_daily: 30 # by hand\n  keep_weekly: 4\n")
        );
    }

    #[test]
    fn a_daemon_is_known_by_its_lock_file_and_a_live_process() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("daemon.lock");
        assert_eq!(running_daemon(&lock), None);
        std::fs::write(&lock, format!("{}\n/x/vger.yaml\n", std::process::id())).unwrap();
        assert_eq!(running_daemon(&lock), None, "this test process is not a vger daemon");
        std::fs::write(&lock, "").unwrap();
        assert_eq!(running_daemon(&lock), None, "an emptied file: the daemon stopped");
    }
}
