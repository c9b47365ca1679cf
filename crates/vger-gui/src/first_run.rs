//! First run: with no config (or an empty one) the app offers to create
//! one: a local folder repository, a new passphrase, the folders to back
//! up and common excludes. The config text is checked by the same loader
//! the CLI uses before anything is written; the repository is created by
//! the application layer's `init`.
//!
//! The passphrase is written to a file of its own beside the config
//! (mode 0600, readable only by the user) and the config names it with
//! `passcommand: cat -- FILE`: backups can run unattended as the CLI and
//! daemon run them, and the config itself can be shown or shared without
//! the secret in it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use vger_app::App;

use crate::checks::{Found, Kind, PathChecks};

/// A group of exclude patterns offered as one checkbox.
#[derive(Debug, Clone)]
pub struct ExcludeChoice {
    pub label: &'static str,
    pub patterns: &'static [&'static str],
    pub on: bool,
}

/// What is offered: caches, dependency folders, temporary files and the
/// trash are rebuilt or unwanted; `.git` is off by default, since a
/// repository's history may exist nowhere else.
pub fn exclude_choices() -> Vec<ExcludeChoice> {
    vec![
        ExcludeChoice {
            label: "Cache folders (.cache, __pycache__)",
            patterns: &[".cache/", "__pycache__/"],
            on: true,
        },
        ExcludeChoice { label: "node_modules folders", patterns: &["node_modules/"], on: true },
        ExcludeChoice {
            label: "Temporary and swap files (*.tmp, *.swp, *~)",
            patterns: &["*.tmp", "*.swp", "*~"],
            on: true,
        },
        ExcludeChoice { label: "Trash folders", patterns: &[".Trash-*/", ".local/share/Trash/"], on: true },
        ExcludeChoice { label: ".git folders (version history)", patterns: &[".git/"], on: false },
    ]
}

/// How hard a passphrase is to guess, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    TooShort,
    Weak,
    Fair,
    Strong,
}

/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 10;

impl Strength {
    /// A rough estimate from length and the kinds of characters used
    /// (bits = length × log2 of the alphabet, halved; repeats count little).
    pub fn of(passphrase: &str) -> Self {
        let chars: Vec<char> = passphrase.chars().collect();
        if chars.len() < MIN_PASSPHRASE {
            return Strength::TooShort;
        }
        let has = |f: fn(&char) -> bool| chars.iter().any(f);
        let alphabet = [
            (has(char::is_ascii_lowercase), 26.0),
            (has(char::is_ascii_uppercase), 26.0),
            (has(char::is_ascii_digit), 10.0),
            (has(|c| !c.is_ascii_alphanumeric()), 33.0),
        ]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, n)| n)
        .sum::<f64>();
        let mut distinct = chars.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // Repeats add little; and people choose, they do not draw at
        // random, so each character counts half of what it could.
        let length = chars.len().min(distinct.len() * 2) as f64;
        let bits = length * f64::log2(alphabet.max(2.0)) * 0.5;
        match bits {
            b if b < 40.0 => Strength::Weak,
            b if b < 70.0 => Strength::Fair,
            _ => Strength::Strong,
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Strength::TooShort => "too short: use at least 10 characters",
            Strength::Weak => {
                "weak: easy to guess for whoever gets a copy of the backups; use four or more random words"
            }
            Strength::Fair => "fair: a few more words or characters make it strong",
            Strength::Strong => "strong",
        }
    }
}

/// Where the repository is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Local,
    S3,
    Sftp,
    Server,
}

impl RepoKind {
    pub const ALL: [RepoKind; 4] = [RepoKind::Local, RepoKind::S3, RepoKind::Sftp, RepoKind::Server];

    /// The name on its radio button (and the test's name for it: `kind:NAME`).
    pub fn name(self) -> &'static str {
        match self {
            RepoKind::Local => "Local folder",
            RepoKind::S3 => "S3",
            RepoKind::Sftp => "SFTP",
            RepoKind::Server => "vger-server",
        }
    }

    /// What the URL field expects.
    pub fn url_hint(self) -> &'static str {
        match self {
            RepoKind::Local => "",
            RepoKind::S3 => "s3://s3.eu-central-1.amazonaws.com/bucket/vger",
            RepoKind::Sftp => "sftp://user@nas.example.org:22/srv/vger",
            RepoKind::Server => "https://backup.example.org/laptop",
        }
    }
}

/// What "Test connection" found, from the application layer's typed errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// Reachable, and nothing is there yet: Create makes the repository.
    Empty,
    /// A repository is there and the passphrase typed opens it: Create uses it.
    Opens,
    /// A repository is there; the passphrase typed does not open it.
    WrongPassphrase,
    /// The storage did not answer (the cause).
    Unreachable(String),
    /// The storage refused the credentials or the access (its message).
    Denied(String),
    /// Anything else (the message).
    Failed(String),
}

impl Reach {
    /// The line shown under the button.
    pub fn message(&self) -> String {
        match self {
            Reach::Empty => "Reachable; no repository there yet: Create makes one.".into(),
            Reach::Opens => {
                "Reachable; a vger repository is there and this passphrase opens it: Create uses it.".into()
            }
            Reach::WrongPassphrase => {
                "Reachable; a vger repository is there, but this passphrase does not open it.".into()
            }
            Reach::Unreachable(e) => format!("Cannot reach the storage: {e}"),
            Reach::Denied(e) => format!("The storage refused access (wrong credentials?): {e}"),
            Reach::Failed(e) => format!("Connection test failed: {e}"),
        }
    }

    /// Whether Create can go ahead after this result.
    pub fn usable(&self) -> bool {
        matches!(self, Reach::Empty | Reach::Opens)
    }
}

/// "Test connection": not yet pressed, running, or its result.
#[derive(Debug, Clone, PartialEq)]
pub enum TestState {
    Untested,
    Testing,
    Done(Reach),
}

/// Where the creation stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateState {
    Editing,
    Creating,
    Failed(String),
}

/// Said while the disk checks have not answered yet.
pub const CHECKING: &str = "Checking the folders…";

/// The first-run form.
pub struct FirstRun {
    /// The config file to write.
    pub config_path: PathBuf,
    pub kind: RepoKind,
    /// The local folder (kind `Local`).
    pub repository: String,
    /// The URL of a remote repository (the other kinds).
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub access_token: String,
    pub sftp_key: String,
    pub sftp_known_hosts: String,
    /// `allow_insecure_http`: plain `http://` / `s3+http://`.
    pub allow_http: bool,
    pub test: TestState,
    tested: Option<Receiver<Reach>>,
    pub passphrase: String,
    pub confirm: String,
    /// One folder per line.
    pub folders: String,
    pub excludes: Vec<ExcludeChoice>,
    pub state: CreateState,
    done: Option<Receiver<Result<App, String>>>,
    waker: Arc<dyn Fn() + Send + Sync>,
    /// The folder and file checks, on a worker.
    checks: PathChecks,
}

/// `"..."` for YAML, with `$` doubled so the loader's `${VAR}` expansion
/// leaves it as typed (a JSON string is a YAML double-quoted scalar).
fn quoted(s: &str) -> String {
    serde_json::to_string(&s.replace('$', "$$")).unwrap_or_else(|_| "\"\"".into())
}

/// A source label from a folder's name (letters, digits, `-`, `_`, `.`).
fn label_of(path: &Path, taken: &[String]) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    let base: String =
        name.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect::<String>();
    let base = if base.trim_matches('-').is_empty() { "folder".to_string() } else { base };
    let mut label = base.clone();
    let mut n = 2;
    while taken.contains(&label) {
        label = format!("{base}-{n}");
        n += 1;
    }
    label
}

impl FirstRun {
    pub fn new(config_path: PathBuf, waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        FirstRun {
            config_path,
            kind: RepoKind::Local,
            repository: String::new(),
            url: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            access_token: String::new(),
            sftp_key: String::new(),
            sftp_known_hosts: String::new(),
            allow_http: false,
            test: TestState::Untested,
            tested: None,
            passphrase: String::new(),
            confirm: String::new(),
            folders: String::new(),
            excludes: exclude_choices(),
            state: CreateState::Editing,
            done: None,
            checks: PathChecks::new(waker.clone()),
            waker,
        }
    }

    /// The file that will hold the passphrase.
    pub fn passphrase_file(&self) -> PathBuf {
        self.config_path.with_extension("passphrase")
    }

    pub fn folder_list(&self) -> Vec<PathBuf> {
        self.folders.lines().map(str::trim).filter(|l| !l.is_empty()).map(PathBuf::from).collect()
    }

    /// The paths the form's checks look at (on the [`PathChecks`] worker).
    fn paths_to_check(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.config_path.clone(), self.passphrase_file()];
        match self.kind {
            RepoKind::Local => {
                let repo = PathBuf::from(self.repository.trim());
                if repo.is_absolute() {
                    paths.extend(repo.parent().map(Path::to_path_buf));
                    paths.push(repo);
                }
            }
            RepoKind::Sftp => {
                for value in [&self.sftp_key, &self.sftp_known_hosts] {
                    if !value.trim().is_empty() {
                        paths.push(PathBuf::from(value.trim()));
                    }
                }
            }
            _ => {}
        }
        paths.extend(self.folder_list().into_iter().filter(|f| f.is_absolute()));
        paths
    }

    /// What the checks found at `path`; `None` while they look.
    fn found(&self, path: &Path) -> Option<Found> {
        self.checks.found(path)
    }

    /// Whether some path of the form has not been looked at yet.
    pub fn checking(&self) -> bool {
        self.paths_to_check().iter().any(|p| self.found(p).is_none())
    }

    /// What still stops "Create", in the order of the form. What the disk
    /// holds is as the [`PathChecks`] worker last found it.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.repository_problems();
        // A local folder inside a source would back itself up.
        let repo = match self.kind {
            RepoKind::Local => PathBuf::from(self.repository.trim()),
            _ => PathBuf::new(),
        };
        if std::env::var_os("VGER_PASSPHRASE").is_some() {
            out.push("VGER_PASSPHRASE is set and would be used instead of the passphrase typed here: start vger-gui without it.".into());
        }
        let strength = Strength::of(&self.passphrase);
        if strength == Strength::TooShort {
            out.push(format!("The passphrase is {}.", strength.hint()));
        } else if self.passphrase != self.confirm {
            out.push("The two passphrases differ.".into());
        }
        let folders = self.folder_list();
        if folders.is_empty() {
            out.push("Add at least one folder to back up.".into());
        }
        for f in &folders {
            if !f.is_absolute() {
                out.push(format!("`{}` must be a full path (starting with /).", f.display()));
            } else if self.found(f).is_some_and(|x| x.kind != Kind::Dir) {
                out.push(format!("{} is not a folder.", f.display()));
            } else if repo.is_absolute() && repo.starts_with(f) {
                out.push(format!("The backup folder is inside {}: it would back itself up.", f.display()));
            }
        }
        if self.found(&self.config_path).is_some_and(|c| c.kind != Kind::Missing && !c.blank_text) {
            out.push(format!("{} exists already; it is not replaced.", self.config_path.display()));
        }
        if self.found(&self.passphrase_file()).is_some_and(|p| p.kind != Kind::Missing) {
            out.push(format!("{} exists already; move it away first.", self.passphrase_file().display()));
        }
        if self.checking() && !out.iter().any(|p| p == CHECKING) {
            out.push(CHECKING.into());
        }
        out
    }

    /// What is wrong with the repository part of the form, in its order.
    pub fn repository_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let need = |out: &mut Vec<String>, value: &str, what: &str| {
            if value.trim().is_empty() {
                out.push(format!("Type the {what}."));
            }
        };
        match self.kind {
            RepoKind::Local => {
                let repo = PathBuf::from(self.repository.trim());
                let found = self.found(&repo);
                let parent = repo.parent().and_then(|p| self.found(p));
                if self.repository.trim().is_empty() {
                    out.push("Type the folder the backups go to.".into());
                } else if !repo.is_absolute() {
                    out.push("The backup folder must be a full path (starting with /).".into());
                } else {
                    match found {
                        None => out.push(CHECKING.into()),
                        Some(f) if f.kind == Kind::Missing => match parent {
                            None => out.push(CHECKING.into()),
                            Some(p) if p.kind != Kind::Dir => {
                                out.push(format!("The folder that would hold {} does not exist.", repo.display()))
                            }
                            Some(_) => {}
                        },
                        // A folder holding a repository is fine: Create opens it.
                        Some(f) if f.kind != Kind::Dir || (f.has_entries && !f.has_repo_config) => out.push(format!(
                            "{} is neither empty nor a vger repository: choose a new or empty folder.",
                            repo.display()
                        )),
                        Some(_) => {}
                    }
                }
                return out;
            }
            RepoKind::S3 => {
                out.extend(self.url_problem("S3 URL", "s3://HOST/BUCKET/PREFIX", "s3://", Some("s3+http://"), "keys"));
                need(&mut out, &self.access_key_id, "access key ID");
                need(&mut out, &self.secret_access_key, "secret access key");
            }
            RepoKind::Sftp => {
                out.extend(self.url_problem("SFTP URL", "sftp://USER@HOST:PORT/PATH", "sftp://", None, ""));
                for (value, what) in [(&self.sftp_key, "key file"), (&self.sftp_known_hosts, "known_hosts file")] {
                    let p = Path::new(value.trim());
                    match self.found(p).map(|f| f.kind) {
                        _ if value.trim().is_empty() => {}
                        None => out.push(CHECKING.into()),
                        Some(Kind::File) => {}
                        Some(_) => out.push(format!("The {what} {} does not exist.", p.display())),
                    }
                }
            }
            RepoKind::Server => {
                out.extend(self.url_problem(
                    "server's URL",
                    "https://HOST/NAME",
                    "https://",
                    Some("http://"),
                    "the token",
                ));
                need(&mut out, &self.access_token, "access token");
            }
        }
        out
    }

    /// What is wrong with the URL field: empty, not `secure` (or `plain`,
    /// which sends `sends` and the data unencrypted and needs "Allow
    /// plain HTTP" ticked).
    fn url_problem(&self, what: &str, example: &str, secure: &str, plain: Option<&str>, sends: &str) -> Option<String> {
        let url = self.url.trim();
        let is_plain = plain.is_some_and(|p| url.starts_with(p));
        if url.is_empty() {
            Some(format!("Type the {what} ({example})."))
        } else if !url.starts_with(secure) && !is_plain {
            let or = plain.map(|p| format!(" (or {p} for plain HTTP)")).unwrap_or_default();
            Some(format!("The {what} starts with {secure}{or}."))
        } else if is_plain && !self.allow_http {
            let p = plain.unwrap_or_default();
            Some(format!("{p} sends {sends} and data unencrypted: tick \"Allow plain HTTP\" or use {secure}."))
        } else {
            None
        }
    }

    /// The `repositories:` entry of the form.
    fn repository_yaml(&self) -> String {
        let mut y = String::from("repositories:\n");
        let kv = |y: &mut String, key: &str, value: &str| {
            if !value.trim().is_empty() {
                y.push_str(&format!("    {key}: {}\n", quoted(value.trim())));
            }
        };
        match self.kind {
            RepoKind::Local => {
                y.push_str("  - label: local\n");
                kv(&mut y, "url", &self.repository);
            }
            kind => {
                let label = match kind {
                    RepoKind::S3 => "s3",
                    RepoKind::Sftp => "sftp",
                    _ => "server",
                };
                y.push_str(&format!("  - label: {label}\n"));
                kv(&mut y, "url", &self.url);
                match kind {
                    RepoKind::S3 => {
                        kv(&mut y, "region", &self.region);
                        kv(&mut y, "access_key_id", &self.access_key_id);
                        kv(&mut y, "secret_access_key", &self.secret_access_key);
                    }
                    RepoKind::Sftp => {
                        kv(&mut y, "sftp_key", &self.sftp_key);
                        kv(&mut y, "sftp_known_hosts", &self.sftp_known_hosts);
                    }
                    _ => kv(&mut y, "access_token", &self.access_token),
                }
                if self.allow_http {
                    y.push_str("    allow_insecure_http: true\n");
                }
            }
        }
        y
    }

    /// "Test connection": opens the storage on a worker with the
    /// passphrase typed, and sorts what happened by the typed error.
    pub fn test_connection(&mut self) {
        if self.test == TestState::Testing || !self.repository_problems().is_empty() {
            return;
        }
        self.test = TestState::Testing;
        let (sender, receiver) = mpsc::channel();
        self.tested = Some(receiver);
        let text = format!("{}sources: []\n", self.repository_yaml());
        let (path, passphrase, waker) = (self.config_path.clone(), self.passphrase.clone(), self.waker.clone());
        std::thread::spawn(move || {
            let _ = sender.send(test_connection(&text, &path, passphrase));
            waker();
        });
    }

    /// The config as written.
    pub fn yaml(&self) -> String {
        let mut y = String::from("# Written by vger-gui's first run; the vger command reads it too.\n\n");
        y.push_str(&self.repository_yaml());
        if self.kind != RepoKind::Local {
            y.push_str("    # Credentials are in this file: it is readable only by you.\n");
        }
        y.push('\n');
        y.push_str("encryption:\n");
        y.push_str("  # The passphrase is in this file, readable only by you. Keep a copy\n");
        y.push_str("  # elsewhere: without it the backups cannot be read by anyone.\n");
        let command = format!("cat -- {}", vger_app::hooks::shell_quote(&self.passphrase_file().to_string_lossy()));
        y.push_str(&format!("  passcommand: {}\n\n", quoted(&command)));
        y.push_str("sources:\n");
        let mut labels = Vec::new();
        for f in self.folder_list() {
            let label = label_of(&f, &labels);
            y.push_str(&format!("  - label: {}\n    path: {}\n", quoted(&label), quoted(&f.to_string_lossy())));
            labels.push(label);
        }
        let patterns: Vec<&str> =
            self.excludes.iter().filter(|e| e.on).flat_map(|e| e.patterns.iter().copied()).collect();
        if !patterns.is_empty() {
            y.push_str("\nexclude_patterns:\n");
            for p in patterns {
                y.push_str(&format!("  - {}\n", quoted(p)));
            }
        }
        y
    }

    /// Starts creating (a worker checks the text, writes the passphrase
    /// file, inits the repository, then writes the config).
    pub fn create(&mut self) {
        if self.state == CreateState::Creating || !self.problems().is_empty() {
            return;
        }
        self.state = CreateState::Creating;
        let (sender, receiver) = mpsc::channel();
        self.done = Some(receiver);
        let (config_path, secret_path) = (self.config_path.clone(), self.passphrase_file());
        let (text, passphrase, waker) = (self.yaml(), self.passphrase.clone(), self.waker.clone());
        std::thread::spawn(move || {
            let _ = sender.send(create(&config_path, &text, &secret_path, &passphrase));
            waker();
        });
    }

    /// The new app once it is created, and what the disk checks found;
    /// never blocks.
    pub fn poll(&mut self) -> Option<App> {
        self.checks.ask(self.paths_to_check());
        if let Some(reach) = self.tested.as_ref().and_then(|r| r.try_recv().ok()) {
            self.tested = None;
            self.test = TestState::Done(reach);
        }
        let result = self.done.as_ref()?.try_recv().ok()?;
        self.done = None;
        match result {
            Ok(app) => Some(app),
            Err(e) => {
                self.state = CreateState::Failed(e);
                None
            }
        }
    }
}

/// Whether a config file holds nothing but blank lines and comments.
pub fn is_blank_config(text: &str) -> bool {
    text.lines().map(str::trim).all(|l| l.is_empty() || l.starts_with('#'))
}

/// Opens the repository the form describes (`text`: its config) with
/// `passphrase`, retrying little, and says what that found.
fn test_connection(text: &str, path: &Path, passphrase: String) -> Reach {
    let mut config = match vger_config::Config::from_yaml_str(text, path) {
        Ok(c) => c,
        Err(e) => return Reach::Failed(e.to_string()),
    };
    // The typed passphrase, not the file the config will name.
    config.encryption.passcommand = None;
    config.encryption.passphrase = None;
    for repo in &mut config.repositories {
        repo.retry = Some(vger_config::RetryConfig { max_retries: 1, retry_delay_ms: 200, retry_max_delay_ms: 500 });
    }
    let Some(repo) = config.repositories.first().cloned() else { return Reach::Failed("no repository".into()) };
    let app = App::new(config, path.to_path_buf()).with_prompt(move |_| Ok(Some(passphrase.clone().into_bytes())));
    match app.open(&repo) {
        Ok(_) => Reach::Opens,
        Err(e) => reach_of(&e),
    }
}

/// What an opening error means for the form.
pub fn reach_of(e: &vger_app::AppError) -> Reach {
    use vger_app::Problem;
    match e.problem() {
        Problem::NotARepository => Reach::Empty,
        Problem::WrongPassphrase => Reach::WrongPassphrase,
        Problem::Unreachable(s) => Reach::Unreachable(s.to_string()),
        Problem::PermissionDenied(s) => Reach::Denied(s.to_string()),
        _ => Reach::Failed(vger_app::one_line(e)),
    }
}

fn create(config_path: &Path, text: &str, secret_path: &Path, passphrase: &str) -> Result<App, String> {
    let config = vger_config::Config::from_yaml_str(text, config_path).map_err(|e| e.to_string())?;
    crate::files::write_atomic(secret_path, passphrase.as_bytes(), Some(0o600), false)
        .map_err(|e| format!("cannot write the passphrase file {}: {e}", secret_path.display()))?;
    let app = App::new(config, config_path.to_path_buf());
    // A repository already there (another machine's, or made earlier) is
    // used when the passphrase opens it; otherwise a new one is made.
    let initialised =
        app.config.repositories.first().ok_or_else(|| "the config names no repository".to_string()).and_then(|repo| {
            match app.open(repo) {
                Ok(_) => Ok(()),
                Err(e) if reach_of(&e) == Reach::Empty => app.init(repo).map(drop).map_err(|e| vger_app::one_line(&e)),
                Err(e) => Err(reach_of(&e).message()),
            }
        });
    let written = initialised.and_then(|_| {
        crate::files::write_atomic(config_path, text.as_bytes(), Some(0o600), true)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))
    });
    match written {
        Ok(()) => Ok(app),
        Err(e) => {
            let _ = std::fs::remove_file(secret_path);
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn strength_grows_with_length_and_variety() {
        assert_eq!(Strength::of("short"), Strength::TooShort);
        assert_eq!(Strength::of("aaaaaaaaaaaa"), Strength::Weak);
        assert_eq!(Strength::of("correcthorse"), Strength::Weak);
        assert_eq!(Strength::of("correct horse battery"), Strength::Fair);
        assert_eq!(Strength::of("correct horse battery staple 7"), Strength::Strong);
    }

    /// Waits for the disk checks of what the form holds now.
    fn settle(f: &mut FirstRun) {
        let start = std::time::Instant::now();
        loop {
            f.poll();
            if !f.checking() {
                return;
            }
            assert!(start.elapsed().as_secs() < 10, "the checks never answered");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn problems(f: &mut FirstRun) -> Vec<String> {
        settle(f);
        f.problems()
    }

    fn repository_problems(f: &mut FirstRun) -> Vec<String> {
        settle(f);
        f.repository_problems()
    }

    #[test]
    fn the_checks_answer_off_the_ui_thread_and_create_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = form(dir.path());
        // Nothing has looked at the disk yet: Create waits.
        assert_eq!(f.problems(), [CHECKING]);
        f.create();
        assert_eq!(f.state, CreateState::Editing, "Create went ahead before the checks answered");
        assert!(problems(&mut f).is_empty(), "{:?}", f.problems());
        // A folder that is not empty and not a repository, found by the worker.
        std::fs::create_dir_all(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full/x"), b"x").unwrap();
        f.repository = dir.path().join("full").display().to_string();
        assert!(repository_problems(&mut f)[0].contains("neither empty nor a vger repository"));
        f.repository = dir.path().join("no/such/repo").display().to_string();
        assert!(repository_problems(&mut f)[0].contains("that would hold"), "{:?}", f.repository_problems());
        f.folders = dir.path().join("full/x").display().to_string();
        f.repository = dir.path().join("repo").display().to_string();
        assert_eq!(problems(&mut f), [format!("{} is not a folder.", dir.path().join("full/x").display())]);
    }

    fn form(dir: &Path) -> FirstRun {
        let mut f = FirstRun::new(dir.join("conf/vger.yaml"), Arc::new(|| {}));
        f.repository = dir.join("repo").display().to_string();
        f.passphrase = "a long enough passphrase".into();
        f.confirm = f.passphrase.clone();
        std::fs::create_dir_all(dir.join("My Documents")).unwrap();
        f.folders = format!("{}\n\n", dir.join("My Documents").display());
        f
    }

    #[test]
    fn the_form_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = FirstRun::new(dir.path().join("vger.yaml"), Arc::new(|| {}));
        let p = problems(&mut f).join("\n");
        assert!(p.contains("Type the folder the backups go to"), "{p}");
        assert!(p.contains("too short"), "{p}");
        assert!(p.contains("at least one folder"), "{p}");
        f = form(dir.path());
        assert!(problems(&mut f).is_empty(), "{:?}", problems(&mut f));
        f.confirm.push('x');
        assert_eq!(problems(&mut f), ["The two passphrases differ."]);
        f.confirm.pop();
        f.repository = dir.path().join("My Documents/repo").display().to_string();
        assert!(problems(&mut f)[0].contains("would back itself up"), "{:?}", problems(&mut f));
        f.repository = "relative".into();
        assert!(problems(&mut f)[0].contains("full path"));
    }

    #[test]
    fn the_text_passes_the_cli_loader_and_keeps_dollars_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = form(dir.path());
        let odd = dir.path().join("it's $HOME \"x\"");
        std::fs::create_dir_all(&odd).unwrap();
        f.folders.push_str(&odd.display().to_string());
        let text = f.yaml();
        let config = vger_config::Config::from_yaml_str(&text, &f.config_path).unwrap();
        let paths: Vec<_> = config.sources.iter().map(|s| s.path.clone().unwrap()).collect();
        assert_eq!(paths, [dir.path().join("My Documents"), odd], "{text}");
        assert_eq!(config.sources[0].label.as_deref(), Some("My-Documents"));
        assert!(config.exclude_patterns.contains(&"node_modules/".to_string()), "{text}");
        assert!(!config.exclude_patterns.contains(&".git/".to_string()), "{text}");
    }

    #[test]
    fn create_writes_a_private_config_and_passphrase_and_a_repository_that_opens() {
        if std::env::var_os("VGER_PASSPHRASE").is_some() {
            return; // The form refuses, as it should; covered by the e2e test.
        }
        let dir = tempfile::tempdir().unwrap();
        let mut f = form(dir.path());
        settle(&mut f);
        f.create();
        let start = std::time::Instant::now();
        let app = loop {
            if let Some(app) = f.poll() {
                break app;
            }
            assert!(!matches!(f.state, CreateState::Failed(_)), "{:?}", f.state);
            assert!(start.elapsed().as_secs() < 60);
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        for file in [&f.config_path, &f.passphrase_file()] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        assert_eq!(std::fs::read(f.passphrase_file()).unwrap(), b"a long enough passphrase");
        let loaded = vger_config::Config::load(Some(&f.config_path)).unwrap();
        let repo = app.open(&loaded.config.repositories[0]).unwrap();
        assert_eq!(vger_engine::snapshots::list(&repo).unwrap().len(), 0);
        // The checks look again within a few seconds and see the new files.
        let start = std::time::Instant::now();
        while !problems(&mut f).iter().any(|p| p.contains("exists already")) {
            assert!(start.elapsed() < crate::checks::REFRESH * 5, "never replaces a config");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn tested(f: &mut FirstRun) -> Reach {
        settle(f);
        f.test_connection();
        let start = std::time::Instant::now();
        loop {
            f.poll();
            if let TestState::Done(reach) = &f.test {
                return reach.clone();
            }
            assert!(start.elapsed().as_secs() < 60, "the test never ended");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn each_kind_asks_for_its_fields_and_writes_text_the_cli_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = form(dir.path());
        f.kind = RepoKind::S3;
        let p = repository_problems(&mut f).join("\n");
        assert!(p.contains("S3 URL") && p.contains("access key ID") && p.contains("secret access key"), "{p}");
        f.url = "s3+http://127.0.0.1:9000/bucket/x".into();
        f.access_key_id = "AK".into();
        f.secret_access_key = "S$K".into();
        assert!(repository_problems(&mut f)[0].contains("Allow plain HTTP"), "{:?}", repository_problems(&mut f));
        f.allow_http = true;
        assert!(problems(&mut f).is_empty(), "{:?}", problems(&mut f));
        let c = vger_config::Config::from_yaml_str(&f.yaml(), &f.config_path).unwrap();
        let r = &c.repositories[0];
        assert_eq!(
            (r.url.as_str(), r.access_key_id.as_deref(), r.secret_access_key.as_deref()),
            (f.url.as_str(), Some("AK"), Some("S$K"))
        );
        assert!(r.allow_insecure_http);

        f.kind = RepoKind::Sftp;
        f.url = "http://x".into();
        f.sftp_key = dir.path().join("no-key").display().to_string();
        let p = repository_problems(&mut f).join("\n");
        assert!(p.contains("starts with sftp://") && p.contains("key file"), "{p}");
        f.url = "sftp://me@nas:22/srv/vger".into();
        f.sftp_key.clear();
        let c = vger_config::Config::from_yaml_str(&f.yaml(), &f.config_path).unwrap();
        assert_eq!(c.repositories[0].url, "sftp://me@nas:22/srv/vger");

        f.kind = RepoKind::Server;
        f.url = "https://backup.example.org/laptop".into();
        assert_eq!(repository_problems(&mut f), ["Type the access token."]);
        f.access_token = "tok".into();
        let c = vger_config::Config::from_yaml_str(&f.yaml(), &f.config_path).unwrap();
        assert_eq!(c.repositories[0].access_token.as_deref(), Some("tok"));
        assert_eq!(c.repositories[0].label(), "server");
    }

    #[test]
    fn test_connection_tells_empty_dead_opens_and_wrong_passphrase_apart() {
        if std::env::var_os("VGER_PASSPHRASE").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut f = form(dir.path());
        assert_eq!(tested(&mut f), Reach::Empty, "a new local folder");

        // Nothing listens on port 1 of this machine.
        f.kind = RepoKind::Server;
        f.url = "http://127.0.0.1:1/repo".into();
        f.access_token = "tok".into();
        f.allow_http = true;
        let reach = tested(&mut f);
        assert!(matches!(reach, Reach::Unreachable(_)), "{reach:?}");
        assert!(reach.message().starts_with("Cannot reach the storage: "), "{}", reach.message());

        f.kind = RepoKind::Local;
        settle(&mut f);
        f.create();
        let start = std::time::Instant::now();
        while f.poll().is_none() {
            assert!(!matches!(f.state, CreateState::Failed(_)), "{:?}", f.state);
            assert!(start.elapsed().as_secs() < 60);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(tested(&mut f), Reach::Opens);
        f.passphrase = "another passphrase".into();
        assert_eq!(tested(&mut f), Reach::WrongPassphrase);
        assert!(!Reach::WrongPassphrase.usable());
    }
}
