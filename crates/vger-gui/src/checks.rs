//! Questions about the disk that a form asks while the user types (does
//! this folder exist, is it empty, is it a repository), answered on a
//! worker thread so that the UI thread never waits on the disk: a slow or
//! hung mount (NFS, a sleeping USB disk) would otherwise freeze the window.
//!
//! The form calls [`PathChecks::ask`] each frame with the paths it needs;
//! a new list goes to the worker once typing pauses ([`DEBOUNCE`]), and the
//! same list is looked at again every [`REFRESH`] (a folder made meanwhile
//! in a file manager is noticed). Until an answer for a path arrives the
//! form says it is checking.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::model::Waker;

/// How long typing must pause before the paths typed are looked at.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// How often the same paths are looked at again.
pub const REFRESH: Duration = Duration::from_secs(2);

/// What a path is, as far as the forms care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Dir,
    File,
    /// A socket, device or the like.
    Other,
}

/// What was found at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    /// A folder with at least one entry (or one that cannot be listed).
    pub has_entries: bool,
    /// A folder holding a file named `config` (a vger repository's).
    pub has_repo_config: bool,
    /// A file of nothing but blank lines and `#` comments.
    pub blank_text: bool,
}

impl Found {
    /// Looks at `path` (on a worker: this touches the disk).
    pub fn at(path: &Path) -> Found {
        let meta = std::fs::metadata(path);
        let kind = match &meta {
            Err(_) => Kind::Missing,
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(m) if m.is_file() => Kind::File,
            Ok(_) => Kind::Other,
        };
        let dir = kind == Kind::Dir;
        // Config files are small; anything large is not blank.
        let small = meta.as_ref().is_ok_and(|m| m.len() < (1 << 20));
        Found {
            kind,
            has_entries: dir && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(true),
            has_repo_config: dir && path.join("config").is_file(),
            blank_text: kind == Kind::File
                && small
                && std::fs::read_to_string(path).is_ok_and(|t| crate::first_run::is_blank_config(&t)),
        }
    }
}

/// The answers for a list of paths.
pub type Answers = BTreeMap<PathBuf, Found>;

/// A worker that looks at lists of paths, and the latest answers.
pub struct PathChecks {
    sender: Sender<Vec<PathBuf>>,
    receiver: Receiver<Answers>,
    asked: Option<(Vec<PathBuf>, Instant)>,
    answers: Answers,
}

impl PathChecks {
    /// Starts the worker; it ends when this is dropped.
    pub fn new(waker: Waker) -> Self {
        let (sender, questions) = mpsc::channel::<Vec<PathBuf>>();
        let (answer, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut last: Option<Answers> = None;
            while let Ok(mut paths) = questions.recv() {
                // Typing goes on: wait for the latest list.
                loop {
                    match questions.recv_timeout(DEBOUNCE) {
                        Ok(newer) => paths = newer,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let found: Answers = paths.iter().map(|p| (p.clone(), Found::at(p))).collect();
                // The same answer again wakes nobody.
                if last.as_ref() == Some(&found) {
                    continue;
                }
                last = Some(found.clone());
                if answer.send(found).is_err() {
                    return;
                }
                waker();
            }
        });
        PathChecks { sender, receiver, asked: None, answers: Answers::new() }
    }

    /// Asks about `paths` (sent on when they differ from the last list, or
    /// when that was asked [`REFRESH`] ago) and takes what the worker
    /// answered; never blocks.
    pub fn ask(&mut self, paths: Vec<PathBuf>) {
        let stale = match &self.asked {
            Some((last, at)) => *last != paths || at.elapsed() >= REFRESH,
            None => true,
        };
        if stale {
            let _ = self.sender.send(paths.clone());
            self.asked = Some((paths, Instant::now()));
        }
        while let Ok(answers) = self.receiver.try_recv() {
            self.answers = answers;
        }
    }

    /// What was found at `path`, once the worker looked.
    pub fn found(&self, path: &Path) -> Option<Found> {
        self.answers.get(path).copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn answered(checks: &mut PathChecks, paths: &[PathBuf]) -> Vec<Found> {
        let start = Instant::now();
        loop {
            checks.ask(paths.to_vec());
            let found: Option<Vec<Found>> = paths.iter().map(|p| checks.found(p)).collect();
            if let Some(found) = found {
                return found;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no answer");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn folders_files_and_repositories_are_told_apart_off_the_ui_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, full, repo, blank, text) = (
            dir.path().join("empty"),
            dir.path().join("full"),
            dir.path().join("repo"),
            dir.path().join("blank.yaml"),
            dir.path().join("text.yaml"),
        );
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("x"), b"x").unwrap();
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(repo.join("config"), b"c").unwrap();
        std::fs::write(&blank, "# nothing\n\n").unwrap();
        std::fs::write(&text, "sources: []\n").unwrap();
        let missing = dir.path().join("missing");
        let mut checks = PathChecks::new(Arc::new(|| {}));
        let found = answered(&mut checks, &[empty, full, repo, blank, text, missing.clone()]);
        let kinds: Vec<Kind> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [Kind::Dir, Kind::Dir, Kind::Dir, Kind::File, Kind::File, Kind::Missing]);
        assert_eq!(found.iter().map(|f| f.has_entries).collect::<Vec<_>>(), [false, true, true, false, false, false]);
        assert!(found[2].has_repo_config && !found[1].has_repo_config);
        assert!(found[3].blank_text && !found[4].blank_text);

        // A folder made meanwhile is noticed at the next refresh.
        std::fs::create_dir(&missing).unwrap();
        let start = Instant::now();
        while checks.found(&missing).map(|f| f.kind) != Some(Kind::Dir) {
            checks.ask(vec![missing.clone()]);
            assert!(start.elapsed() < REFRESH * 3, "the new folder was never seen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
