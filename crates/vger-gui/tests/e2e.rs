//! End to end: the real `vger-gui` in a real X server (Xvfb), clicked with
//! xdotool, its visible state read from the app's `VGER_GUI_STATE_FILE`
//! hook, its snapshots checked and restored with the real `vger` binary.
//! Screenshots go to `test-artifacts/` at the workspace root.
//!
//! Needs `Xvfb`, `xdotool` and ImageMagick's `import` (the `.ci/run` script
//! installs them) and the `vger` binary (`cargo build -p vger-cli`). When a
//! tool is missing the test prints SKIPPED, except under `CI=true`, where
//! it fails.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

// vger-cli's, shared by path: one way to start a vger-server in tests.
#[path = "../../vger-cli/tests/common/vger_server.rs"]
mod vger_server;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vger_server::VgerServer;

const PASS: &str = "e2e-passphrase";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vger_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_vger-gui")).with_file_name("vger")
}

/// `None` when everything is there; otherwise why not (or a panic under CI).
fn missing_tools() -> Option<String> {
    let mut missing = Vec::new();
    for tool in ["Xvfb", "xdotool", "import"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(tool);
        }
    }
    if !vger_bin().exists() {
        missing.push("the vger binary (cargo build -p vger-cli)");
    }
    if missing.is_empty() {
        return None;
    }
    let why = format!("missing {}", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {why}");
    Some(why)
}

/// Stops (TERM, then KILL) and reaps a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // Asked first, so that Xvfb removes its lock and socket; killed
        // if it has not ended within a second.
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Xvfb of `screen` (`WIDTHxHEIGHTx24`) on the first free display number from 100.
fn start_xvfb(screen: &str) -> (Reaped, String) {
    // Tests run in parallel: one at a time picks a number, or two could
    // both see :100 free.
    static PICKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _picking = PICKING.lock().unwrap_or_else(|e| e.into_inner());
    for n in 100..200 {
        let (lock, socket) = (format!("/tmp/.X{n}-lock"), format!("/tmp/.X11-unix/X{n}"));
        // A lock whose server is gone (killed, so it could not clean up) is
        // stale: its number is free again. Without this every killed run
        // used up a number for good, until none of the hundred was left.
        let holder = fs::read_to_string(&lock).ok().and_then(|t| t.trim().parse::<u32>().ok());
        if holder.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_file(&lock);
            let _ = fs::remove_file(&socket);
        }
        if Path::new(&lock).exists() || Path::new(&socket).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([format!(":{n}").as_str(), "-screen", "0", screen, "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut xvfb = Reaped(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // The socket alone is not enough: a server of another run may
            // have won this number (ours then exits); the lock names the
            // winner's process.
            let holder = fs::read_to_string(&lock).ok().and_then(|t| t.trim().parse::<u32>().ok());
            if Path::new(&socket).exists() && holder == Some(xvfb.0.id()) {
                return (xvfb, format!(":{n}"));
            }
            if xvfb.0.try_wait().unwrap().is_some() {
                break; // lost a race for this number; try the next
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free X display between :100 and :199");
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A new scratch folder, or None (after printing SKIPPED) when the
    /// tools are missing outside CI.
    fn ready() -> Option<Self> {
        if let Some(why) = missing_tools() {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        Some(Env::new())
    }

    /// A source folder `src` holding `files` (path, content).
    fn source(&self, files: &[(&str, &[u8])]) -> PathBuf {
        let src = self.path("src");
        for (rel, bytes) in files {
            let path = src.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        src
    }

    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("vger-gui-e2e-").tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".xdg-run")).unwrap();
        Env { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self, source: &Path) -> PathBuf {
        let yaml = format!(
            "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: src\n    path: \"{}\"\n",
            self.path("repo").display(),
            source.display()
        );
        let config = self.path("vger.yaml");
        fs::write(&config, yaml).unwrap();
        config
    }

    fn private(&self, cmd: &mut Command) {
        self.private_dirs(cmd);
        cmd.env("VGER_PASSPHRASE", PASS);
    }

    /// Private cache and state folders, no passphrase from the environment.
    fn private_dirs(&self, cmd: &mut Command) {
        cmd.env_remove("VGER_PASSPHRASE")
            .env("XDG_CACHE_HOME", self.path(".xdg-cache"))
            .env("XDG_STATE_HOME", self.path(".xdg-state"))
            .env("XDG_RUNTIME_DIR", self.path(".xdg-run"))
            .env_remove("VGER_CONFIG");
    }

    fn vger(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(self.path("vger.yaml")).args(args);
        self.private(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "vger {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn snapshot_ids(&self) -> Vec<String> {
        let list: serde_json::Value = serde_json::from_str(&self.vger(&["list", "--json"])).unwrap();
        list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
    }
}

/// The running app in its X server.
struct Gui {
    _app: Reaped,
    _xvfb: Reaped,
    display: String,
    window: String,
    state_file: PathBuf,
}

impl Gui {
    fn start(env: &Env) -> Self {
        Self::start_with(env, &[])
    }

    fn start_with(env: &Env, vars: &[(&str, &str)]) -> Self {
        Self::launch(env, &env.path("vger.yaml"), true, "1280x800x24", vars)
    }

    /// The app on `config` in an X server of `screen`; with `passphrase`,
    /// the environment gives the repository's passphrase.
    fn launch(env: &Env, config: &Path, passphrase: bool, screen: &str, vars: &[(&str, &str)]) -> Self {
        Self::launch_in(env, config, passphrase, start_xvfb(screen), vars)
    }

    /// As [`Gui::launch`], in an X server already started (with a panel
    /// on it, say).
    fn launch_in(
        env: &Env,
        config: &Path,
        passphrase: bool,
        (xvfb, display): (Reaped, String),
        vars: &[(&str, &str)],
    ) -> Self {
        let state_file = env.path("gui-state.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vger-gui"));
        cmd.arg("--config").arg(config);
        if passphrase {
            env.private(&mut cmd);
        } else {
            env.private_dirs(&mut cmd);
        }
        cmd.env("DISPLAY", &display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("VGER_GUI_STATE_FILE", &state_file)
            .env_remove("WAYLAND_DISPLAY")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(fs::File::create(env.path("gui.log")).unwrap());
        let app = Reaped(cmd.spawn().unwrap());
        let out = Command::new("timeout")
            .args(["30", "xdotool", "search", "--sync", "--onlyvisible", "--name", "^vger$"])
            .env("DISPLAY", &display)
            .output()
            .unwrap();
        let window = String::from_utf8(out.stdout).unwrap().lines().next().unwrap_or_default().to_string();
        assert!(
            !window.is_empty(),
            "the vger window never mapped; log: {}",
            fs::read_to_string(env.path("gui.log")).unwrap_or_default()
        );
        // No window manager gives it the keyboard: typing needs this.
        let focused =
            Command::new("xdotool").args(["windowfocus", "--sync", &window]).env("DISPLAY", &display).status();
        assert!(focused.unwrap().success(), "cannot focus the window");
        Gui { _app: app, _xvfb: xvfb, display, window, state_file }
    }

    /// Waits (up to `secs`) until the visible state satisfies `done`.
    fn wait(&self, secs: u64, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            let read = fs::read_to_string(&self.state_file).map(|t| serde_json::from_str::<serde_json::Value>(&t));
            if let Ok(Ok(state)) = read {
                if done(&state) {
                    return state;
                }
                last = state;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; the window shows {last:#}");
    }

    /// Waits for the control `name` to be shown and enabled, and clicks its middle.
    fn click(&self, name: &str) -> serde_json::Value {
        let state = self
            .wait(30, &format!("`{name}` to be enabled"), |s| control(s, name).is_some_and(|c| c["enabled"] == true));
        let rect = &control(&state, name).unwrap()["rect"];
        let x = rect[0].as_f64().unwrap() + rect[2].as_f64().unwrap() / 2.0;
        let y = rect[1].as_f64().unwrap() + rect[3].as_f64().unwrap() / 2.0;
        self.xdotool(&["mousemove", "--window", &self.window, &format!("{}", x as i64), &format!("{}", y as i64)]);
        self.xdotool(&["click", "1"]);
        state
    }

    /// The state as last written, if it reads.
    fn state(&self) -> Option<serde_json::Value> {
        fs::read_to_string(&self.state_file).ok().and_then(|t| serde_json::from_str(&t).ok())
    }

    /// Presses Tab (no mouse) until the control `name` has the keyboard
    /// focus; each press waits for the focus to move.
    fn tab_to(&self, name: &str) {
        // A control of the screen, or the first Overview row's button.
        let focused = |s: &serde_json::Value| -> Option<String> {
            let row = &s["rows"][0];
            if row["button_focused"] == true {
                return row["button"][0].as_str().map(str::to_string);
            }
            s["controls"].as_array()?.iter().find(|c| c["focused"] == true)?["name"].as_str().map(str::to_string)
        };
        let mut seen = Vec::new();
        for _ in 0..60 {
            let now = self.state().and_then(|s| focused(&s));
            if now.as_deref() == Some(name) {
                return;
            }
            self.xdotool(&["key", "Tab"]);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && self.state().and_then(|s| focused(&s)) == now {
                std::thread::sleep(Duration::from_millis(30));
            }
            seen.push(self.state().and_then(|s| focused(&s)).unwrap_or_default());
        }
        panic!("Tab never reached `{name}`; the focus went through {seen:?}");
    }

    /// Types `text` into the focused field `name` (cleared first), trying
    /// again when a key was lost, as [`Gui::type_into`] does.
    fn type_focused(&self, name: &str, text: &str) {
        for attempt in 1..=3 {
            self.xdotool(&["key", "ctrl+a", "BackSpace"]);
            self.xdotool(&["type", "--delay", "5", text]);
            if self.wait_holds(name, text) {
                return;
            }
            eprintln!("typing into `{name}` lost keys (attempt {attempt}); typing again");
        }
        panic!("`{name}` never held {text:?}");
    }

    /// Whether the field `name` holds `text` within 5 s: a password field
    /// shows its length only, any other its text.
    fn wait_holds(&self, name: &str, text: &str) -> bool {
        let arrived = |c: &serde_json::Value| {
            if c["chars"].is_u64() {
                c["chars"].as_u64() == Some(text.chars().count() as u64)
            } else {
                c["value"] == text
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.state().as_ref().and_then(|s| control(s, name)).is_some_and(arrived) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Clicks a text field, clears it and types `text` (a newline is Return).
    /// A field that reports its content (all but passwords) must then hold
    /// `text`: on a loaded machine X can lose a keystroke, so typing is
    /// tried again, up to three times.
    fn type_into(&self, name: &str, text: &str) {
        for attempt in 1..=3 {
            self.click(name);
            self.xdotool(&["key", "ctrl+a", "BackSpace"]);
            self.xdotool(&["type", "--delay", "5", text]);
            if self.wait_holds(name, text) {
                return;
            }
            eprintln!("typing into `{name}` lost keys (attempt {attempt}); typing again");
        }
        panic!("`{name}` never held {text:?}");
    }

    fn xdotool(&self, args: &[&str]) {
        let status = Command::new("xdotool").args(args).env("DISPLAY", &self.display).status().unwrap();
        assert!(status.success(), "xdotool {args:?}");
    }

    /// Waits (up to `secs`) until the first row of the visible state satisfies `done`.
    fn wait_row(&self, secs: u64, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Ok(text) = fs::read_to_string(&self.state_file) {
                if let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) {
                    if done(&state["rows"][0]) {
                        return state;
                    }
                    last = state;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; the window shows {last:#}");
    }

    fn click_button(&self, state: &serde_json::Value, label: &str) {
        let button = &state["rows"][0]["button"];
        assert_eq!(button[0], label, "{state:#}");
        let rect = &button[1];
        let x = rect[0].as_f64().unwrap() + rect[2].as_f64().unwrap() / 2.0;
        let y = rect[1].as_f64().unwrap() + rect[3].as_f64().unwrap() / 2.0;
        let status = Command::new("xdotool")
            .args([
                "mousemove",
                "--window",
                &self.window,
                &format!("{}", x as i64),
                &format!("{}", y as i64),
                "click",
                "1",
            ])
            .env("DISPLAY", &self.display)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screenshot(&self, name: &str) {
        // The state file is written as a frame is laid out, before it is
        // on screen: give the paint a moment, or the picture can show the
        // frame before (seen once: a folder shown closed just after it opened).
        std::thread::sleep(Duration::from_millis(250));
        let dir = workspace_root().join("test-artifacts");
        fs::create_dir_all(&dir).unwrap();
        let status = Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(status.success(), "screenshot {name}");
    }
}

/// The control `name` of the visible state.
fn control<'a>(state: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    state["controls"].as_array()?.iter().find(|c| c["name"] == name)
}

/// The names of the snapshot list's rows (`snapshot:ID`), newest first.
fn snapshot_rows(state: &serde_json::Value) -> Vec<String> {
    state["controls"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["name"].as_str().filter(|n| n.starts_with("snapshot:")).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn lines(row: &serde_json::Value) -> String {
    row["lines"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A deterministic, poorly compressible byte pattern.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn assert_same_tree(a: &Path, b: &Path) {
    for entry in fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            assert_same_tree(&entry.path(), &other);
        } else {
            assert_eq!(fs::read(entry.path()).unwrap(), fs::read(&other).unwrap(), "{}", other.display());
        }
    }
}

#[test]
fn back_up_now_in_the_window_makes_a_snapshot_that_restores() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("hello.txt", b"hello from the window\n"), ("docs/deep/data.bin", &pattern(3 << 20, 7))]);
    env.config(&src);
    env.vger(&["init"]);
    env.vger(&["backup"]);
    assert_eq!(env.snapshot_ids().len(), 1);

    let gui = Gui::start(&env);
    let state = gui.wait_row(30, "the row to show one snapshot", |row| {
        lines(row).contains("; 1 snapshot in all") && row["backup"] == "idle"
    });
    gui.screenshot("overview.png");

    // Change the source so the new snapshot differs from the first.
    fs::write(src.join("docs/new.txt"), b"added before the click\n").unwrap();
    gui.click_button(&state, "Back up now");
    let state = gui.wait_row(120, "the backup to finish", |row| row["backup"] == "done" || row["backup"] == "failed");
    assert_eq!(state["rows"][0]["backup"], "done", "{state:#}");
    assert!(lines(&state["rows"][0]).contains("Backup finished: 1 snapshot written"), "{state:#}");
    // The row never shows the old count beside "finished": it reads the
    // list again, then shows the new one.
    assert!(!lines(&state["rows"][0]).contains("; 1 snapshot in all"), "{state:#}");
    gui.wait_row(30, "the row to show two snapshots", |row| lines(row).contains("; 2 snapshots in all"));
    gui.screenshot("overview-after-backup.png");

    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let dest = env.path("restored");
    let newest = env.vger(&["list", "--json", "--last", "1"]);
    let newest: serde_json::Value = serde_json::from_str(&newest).unwrap_or(serde_json::Value::Null);
    let id = newest[0]["id"].as_str().map(str::to_string).unwrap_or_else(|| "latest".into());
    env.vger(&["restore", &id, dest.to_str().unwrap()]);
    assert_same_tree(&src, &dest);
    assert_eq!(fs::read(dest.join("docs/new.txt")).unwrap(), b"added before the click\n");
}

/// A config that does not load: the window says why (started from a
/// menu, no one would see standard error).
#[test]
fn a_broken_config_is_shown_in_the_window() {
    let Some(env) = Env::ready() else { return };
    fs::write(env.path("vger.yaml"), "repositories:\n  - url: [not, a, string]\n").unwrap();
    let gui = Gui::start(&env);
    let state = gui.wait(30, "the message", |s| s["screen"] == "broken-config");
    assert!(lines(&state).contains("vger.yaml"), "the message names the file: {state:#}");
    gui.screenshot("broken-config.png");
}

#[test]
fn a_failed_backup_shows_its_message_in_the_window() {
    let Some(env) = Env::ready() else { return };
    let missing = env.path("no-such-folder");
    env.config(&missing);
    env.vger(&["init"]);

    let gui = Gui::start(&env);
    let state = gui.wait_row(30, "the row to show no snapshots", |row| lines(row).contains("No snapshots yet"));
    gui.click_button(&state, "Back up now");
    let state = gui.wait_row(60, "the backup to end", |row| row["backup"] != "idle" && row["backup"] != "running");
    gui.screenshot("overview-failed-backup.png");
    let row = &state["rows"][0];
    assert_eq!(row["backup"], "failed", "{state:#}");
    let text = lines(row);
    assert!(text.contains("Backup failed: "), "{text}");
    assert!(text.contains("no-such-folder"), "the message names the missing source: {text}");
    assert!(text.contains("under Sources in Settings"), "the message says how to fix it: {text}");
    assert!(env.snapshot_ids().is_empty());
    // The desktop is told (here, with no notification service under
    // Xvfb, the app says so on standard error and goes on).
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = fs::read_to_string(env.path("gui.log")).unwrap_or_default();
        if log.contains("the backup of local failed") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        log.contains("vger-gui: notified: vger: the backup of local failed")
            || log.contains("vger-gui: no desktop notification ("),
        "{log}"
    );
    assert!(log.contains("tray icon"), "the tray icon's fate is logged: {log}");
    // Without a tray or notifications, the window works on: a second
    // attempt fails again and is told again. After the failure the row
    // reads the snapshots again and grows by a line, moving the button:
    // click where it is once the row has settled (the stale position
    // missed it under load).
    let state = gui.wait_row(30, "the row to settle", |row| {
        let text = lines(row);
        text.contains("Backup failed: ") && !text.contains("Reading snapshots")
    });
    gui.click_button(&state, "Back up now");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::read_to_string(env.path("gui.log")).unwrap_or_default().matches("the backup of local failed").count() < 2
    {
        if Instant::now() > deadline {
            let log = fs::read_to_string(env.path("gui.log")).unwrap_or_default();
            let now = fs::read_to_string(&gui.state_file).unwrap_or_default();
            panic!(
                "the second attempt was never told\nlog:\n{log}\nstate before the click: {state:#}\nstate now: {now}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lock file a scheduler holds for the test's config, and its text.
fn scheduler_lock(env: &Env) -> Option<String> {
    let dir = env.path(".xdg-run/vger");
    let entry = fs::read_dir(dir).ok()?.flatten().find(|e| e.file_name().to_string_lossy().starts_with("daemon-"))?;
    fs::read_to_string(entry.path()).ok().filter(|t| !t.trim().is_empty())
}

/// `vger daemon` for the test's config, its output kept in `daemon.log`.
fn daemon(env: &Env) -> Command {
    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(env.path("vger.yaml")).arg("daemon");
    cmd.stdout(Stdio::null()).stderr(fs::File::create(env.path("daemon.log")).unwrap());
    env.private(&mut cmd);
    cmd
}

/// With a schedule and no daemon, the open app backs up by itself on
/// time (nothing is clicked) and shows the next run; a daemon started
/// meanwhile refuses, naming the app, as a second daemon would.
#[test]
fn the_app_runs_the_schedule_itself_and_a_daemon_started_meanwhile_refuses() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("a.txt", b"scheduled\n")]);
    env.config(&src);
    let mut yaml = fs::read_to_string(env.path("vger.yaml")).unwrap();
    yaml.push_str("schedule:\n  enabled: true\n  every: 10s\n");
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    env.vger(&["init"]);

    let gui = Gui::start(&env);
    let state = gui.wait_row(30, "the next run", |row| lines(row).contains("Next scheduled backup (by this app"));
    assert_eq!(state["rows"][0]["backup"], "idle", "{state:#}");
    gui.screenshot("overview-app-schedule.png");
    let lock = scheduler_lock(&env).expect("the app holds the scheduler lock");
    assert!(lock.ends_with("vger-gui\n"), "{lock}");
    let state = gui.wait_row(60, "the scheduled backup", |row| row["backup"] == "done" || row["backup"] == "failed");
    assert_eq!(state["rows"][0]["backup"], "done", "{state:#}");
    assert!(!env.snapshot_ids().is_empty());

    let out = daemon(&env).output().unwrap();
    let said = fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(!out.status.success(), "a daemon started beside the app: {said}");
    assert!(said.contains("the vger desktop app (vger-gui, PID ") && said.contains("while it is open"), "{said}");

    gui.click("screen:Settings");
    let state = gui.wait(10, "the settings", |s| s["screen"] == "settings");
    assert!(lines(&state).contains("Scheduled backups are made by this app while it is open"), "{state:#}");
    // The run is recorded where the daemon keeps its own (it carries on from there).
    gui.wait(10, "the recorded run", |s| lines(s).contains("local: last scheduled backup 20"));
    gui.screenshot("settings-app-schedule.png");
}

/// A daemon started first keeps the schedule: the app shows its state and
/// runs nothing itself; once the daemon stops, the app takes over.
#[test]
fn a_daemon_started_first_keeps_the_schedule_and_the_app_takes_over_when_it_stops() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("a.txt", b"by the daemon\n")]);
    env.config(&src);
    let mut yaml = fs::read_to_string(env.path("vger.yaml")).unwrap();
    yaml.push_str("schedule:\n  enabled: true\n  every: 2h\n");
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    env.vger(&["init"]);
    let daemon = Reaped(daemon(&env).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !scheduler_lock(&env).is_some_and(|l| l.starts_with(&format!("{}\n", daemon.0.id()))) {
        assert!(Instant::now() < deadline, "the daemon never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }

    let gui = Gui::start(&env);
    gui.click("screen:Settings");
    let state = gui.wait(30, "the daemon", |s| lines(s).contains("Scheduled backups are running"));
    assert!(lines(&state).contains(&format!("process {})", daemon.0.id())), "{state:#}");
    gui.screenshot("settings-daemon.png");
    drop(daemon);
    let state = gui.wait(30, "the app to take over", |s| lines(s).contains("made by this app while it is open"));
    assert!(scheduler_lock(&env).is_some_and(|l| l.ends_with("vger-gui\n")), "{state:#}");
}

/// The UI thread's longest stall while a few hundred MiB are backed up,
/// then restored through the Snapshots screen (bytes compared): the
/// app repaints continuously (`VGER_GUI_FRAME_TIMES=1`) and reports the
/// longest gap between two frames and the longest single frame. The issue's
/// target is under 100 ms; the assertion allows a debug build on a busy CI
/// machine 1 s, and the figures are printed for the report.
#[test]
fn the_window_keeps_painting_during_a_large_backup() {
    let Some(env) = Env::ready() else { return };
    let src = env.path("src");
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    let mib: u64 = std::env::var("VGER_GUI_E2E_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let mut random = fs::File::open("/dev/urandom").unwrap();
    for i in 0..mib.div_ceil(8) {
        let mut file = fs::File::create(big.join(format!("f{i:03}.bin"))).unwrap();
        std::io::copy(&mut Read::by_ref(&mut random).take(8 << 20), &mut file).unwrap();
    }
    env.config(&src);
    env.vger(&["init"]);

    let gui = Gui::start_with(&env, &[("VGER_GUI_FRAME_TIMES", "1"), ("VGER_GUI_FRAME_LOG", "1")]);
    let state = gui.wait_row(30, "the row to show no snapshots", |row| lines(row).contains("No snapshots yet"));
    let started = Instant::now();
    gui.click_button(&state, "Back up now");
    gui.wait_row(30, "the backup to start", |row| row["backup"] == "running");
    gui.screenshot("overview-backup-running.png");
    let state = gui.wait_row(900, "the backup to finish", |row| row["backup"] != "running" && row["backup"] != "idle");
    let took = started.elapsed();
    assert_eq!(state["rows"][0]["backup"], "done", "{state:#}");
    let gap = state["max_gap_running_ms"].as_u64().unwrap();
    let update = state["max_update_ms"].as_u64().unwrap();
    eprintln!(
        "backup of {mib} MiB took {:.1} s over {} frames; longest gap between frames {gap} ms, longest frame {update} ms",
        took.as_secs_f64(),
        state["frames"]
    );
    assert!(state["frames"].as_u64().unwrap() > 10, "the window did not keep painting: {state:#}");
    let log = fs::read_to_string(env.path("gui.log")).unwrap_or_default();
    let slow: Vec<&str> = log.lines().filter(|l| l.contains(" ms since the last frame")).collect();
    eprintln!("{} frame gaps over 50 ms; the longest ones:", slow.len());
    let mut longest = slow.clone();
    longest.sort_by_key(|l| {
        std::cmp::Reverse(l.split(": ").nth(2).and_then(|t| t.split(' ').next()).and_then(|n| n.parse::<u64>().ok()))
    });
    for line in longest.iter().take(8) {
        eprintln!("  {line}");
    }
    assert!(gap < 1000, "the UI thread stalled {gap} ms during the backup");
    // VGER_GUI_E2E_RESTORE=0 leaves the restore out (a 2 GiB run needs
    // twice the scratch space otherwise).
    if std::env::var("VGER_GUI_E2E_RESTORE").is_ok_and(|v| v == "0") {
        return;
    }

    // Then all of it back through the Snapshots screen: the folder ticked.
    gui.click("screen:Snapshots");
    let state = gui.wait(30, "the list", |s| lines(s).contains("1 snapshot"));
    gui.click(&snapshot_rows(&state)[0]);
    gui.click("select:big");
    let dest = env.path("restored");
    gui.type_into("Restore to", dest.to_str().unwrap());
    let started = Instant::now();
    gui.click("Restore");
    gui.wait(60, "the restore to start", |s| lines(s).contains("Restoring:") || lines(s).contains("Restored "));
    gui.screenshot("snapshots-restore-running.png");
    let state =
        gui.wait(900, "the restore to finish", |s| lines(s).contains("Restored ") || lines(s).contains("failed"));
    let took = started.elapsed();
    assert!(lines(&state).contains(&format!("Restored {} files", mib.div_ceil(8))), "{state:#}");
    let gap = state["max_gap_running_ms"].as_u64().unwrap();
    eprintln!(
        "restore of {mib} MiB took {:.1} s; longest gap between frames during the backup and the restore {gap} ms",
        took.as_secs_f64()
    );
    assert!(gap < 1000, "the UI thread stalled {gap} ms");
    assert_same_tree(&src, &dest);
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The whole first use in the window: no config, the first-run form
/// (typed into with the keyboard), "Back up now", the Snapshots screen,
/// browsing into folders, restoring one file and one folder to a new
/// folder (bytes compared with the source), then to the original place,
/// which asks before replacing anything. The CLI then reads the config
/// and repository the window made. Screenshots of every screen.
#[test]
fn first_run_backup_browse_and_restore_in_the_window() {
    let Some(env) = Env::ready() else { return };
    let src = env.path("src");
    fs::create_dir_all(src.join("docs/deep")).unwrap();
    fs::create_dir_all(src.join("node_modules/pkg")).unwrap();
    fs::write(src.join("hello.txt"), b"hello from the first run\n").unwrap();
    fs::write(src.join("docs/c.txt"), b"not ticked\n").unwrap();
    fs::write(src.join("docs/deep/data.bin"), pattern(3 << 20, 11)).unwrap();
    fs::write(src.join("docs/deep/notes.txt"), b"deep notes\n").unwrap();
    fs::write(src.join("node_modules/pkg/index.js"), b"excluded\n").unwrap();
    let config = env.path("conf/vger.yaml");
    let repo = env.path("repo");

    let gui = Gui::launch(&env, &config, false, "1280x800x24", &[]);
    gui.wait(30, "the first-run form", |s| s["screen"] == "first-run");
    gui.screenshot("first-run-empty.png");
    // A folder that holds something else: the disk is looked at off the
    // UI thread, and the answer shows under the form.
    gui.type_into("Backup folder", src.to_str().unwrap());
    let state = gui.wait(10, "the folder's check", |s| lines(s).contains("is neither empty nor a vger repository"));
    assert!(control(&state, "Test connection").is_some_and(|c| c["enabled"] == false), "{state:#}");
    gui.screenshot("first-run-folder-not-empty.png");
    gui.type_into("Backup folder", repo.to_str().unwrap());
    gui.type_into("Passphrase", "short");
    gui.wait(10, "the strength hint", |s| lines(s).contains("Strength: too short"));
    gui.type_into("Passphrase", PASS);
    gui.type_into("Passphrase again", PASS);
    gui.type_into("Folders", src.to_str().unwrap());
    let state = gui.wait(10, "a complete form", |s| control(s, "Create").is_some_and(|c| c["enabled"] == true));
    assert!(lines(&state).contains("cannot be recovered"), "{state:#}");
    gui.screenshot("first-run-filled.png");
    gui.click("Create");
    gui.wait(60, "the Overview", |s| s["screen"] == "overview");
    assert_eq!(mode_of(&config), 0o600);
    assert_eq!(mode_of(&config.with_extension("passphrase")), 0o600);
    assert!(!fs::read_to_string(&config).unwrap().contains(PASS), "the passphrase is not in the config");

    let state = gui.wait_row(30, "no snapshots yet", |row| lines(row).contains("No snapshots yet"));
    gui.click_button(&state, "Back up now");
    gui.wait_row(120, "the backup to finish", |row| row["backup"] == "done" || row["backup"] == "failed");
    let state = gui.wait_row(30, "one snapshot", |row| lines(row).contains("; 1 snapshot in all"));
    assert_eq!(state["rows"][0]["backup"], "done", "{state:#}");
    gui.screenshot("first-run-overview.png");

    gui.click("screen:Snapshots");
    let state = gui.wait(30, "the snapshot list", |s| lines(s).contains("1 snapshot"));
    gui.screenshot("snapshots-list.png");
    gui.click(&snapshot_rows(&state)[0]);
    let state = gui.wait(30, "the top folder", |s| control(s, "select:hello.txt").is_some());
    assert!(control(&state, "open:docs/deep").is_none(), "only the top folder is read: {state:#}");
    assert!(!lines(&state).contains("node_modules"), "excluded by the first run's choice: {state:#}");
    gui.click("open:docs");
    gui.click("open:docs/deep");
    gui.wait(30, "docs/deep", |s| control(s, "select:docs/deep/data.bin").is_some());
    gui.click("select:hello.txt");
    gui.click("select:docs/deep");
    gui.wait(10, "two ticks", |s| control(s, "Restore").is_some() && lines(s).contains("  [x] deep"));
    let dest = env.path("restored");
    gui.type_into("Restore to", dest.to_str().unwrap());
    gui.screenshot("snapshots-tree.png");
    gui.click("Restore");
    let state = gui.wait(120, "the restore", |s| lines(s).contains("Restored ") || lines(s).contains("failed"));
    assert!(lines(&state).contains("Restored 3 files (3.0 MiB) to "), "{state:#}");
    gui.screenshot("snapshots-restored.png");
    assert_eq!(fs::read(dest.join("hello.txt")).unwrap(), fs::read(src.join("hello.txt")).unwrap());
    assert_same_tree(&src.join("docs/deep"), &dest.join("docs/deep"));
    assert!(!dest.join("docs/c.txt").exists(), "only what was ticked is restored");

    // To the original place: asked first; "Keep existing files" keeps them.
    fs::write(src.join("hello.txt"), b"edited after the backup\n").unwrap();
    gui.click("Original place");
    gui.click("Restore");
    gui.wait(10, "the question", |s| lines(s).contains("already in"));
    gui.screenshot("snapshots-replace-question.png");
    gui.click("Keep existing files");
    let state = gui.wait(60, "the restore", |s| lines(s).contains("Restored "));
    assert!(lines(&state).contains("kept 3 existing files"), "{state:#}");
    assert_eq!(fs::read(src.join("hello.txt")).unwrap(), b"edited after the backup\n");

    // The CLI reads what the window wrote, its passphrase from the file.
    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(&config).args(["list", "--json"]);
    env.private_dirs(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
}

/// 200% scaling (`VGER_GUI_SCALE=2`): the Snapshots screen with a tree
/// open, one screenshot to look at.
#[test]
fn the_snapshots_screen_at_200_percent() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("hello.txt", b"hello\n"), ("docs/a.txt", b"a\n")]);
    env.config(&src);
    env.vger(&["init"]);
    env.vger(&["backup"]);
    let gui = Gui::launch(&env, &env.path("vger.yaml"), true, "1920x1080x24", &[("VGER_GUI_SCALE", "2")]);
    gui.click("screen:Snapshots");
    let state = gui.wait(30, "the list", |s| lines(s).contains("1 snapshot"));
    gui.click(&snapshot_rows(&state)[0]);
    gui.click("open:docs");
    let state = gui.wait(30, "docs", |s| control(s, "select:docs/a.txt").is_some());
    // Controls are twice their 100% size in pixels.
    let height = control(&state, "Reload").unwrap()["rect"][3].as_f64().unwrap();
    assert!(height >= 30.0, "the Reload button is {height} px high at 200%");
    // The window fits a 1920×1080 screen: the Restore button at its bottom is on it.
    let rect = &control(&state, "Restore").unwrap()["rect"];
    let bottom = rect[1].as_f64().unwrap() + rect[3].as_f64().unwrap();
    assert!(bottom <= 1080.0, "the Restore button ends at {bottom} px, below a 1080 px screen");
    gui.screenshot("snapshots-200-percent.png");

    // The Overview with the app's own schedule, and the repositories and sources.
    let yaml = fs::read_to_string(env.path("vger.yaml")).unwrap();
    fs::write(env.path("vger.yaml"), format!("{yaml}schedule:\n  enabled: true\n  every: 6h\n")).unwrap();
    gui.click("screen:Overview");
    gui.wait_row(30, "the next run", |row| lines(row).contains("Next scheduled backup (by this app"));
    gui.screenshot("overview-200-percent.png");
    gui.click("screen:Settings");
    gui.wait(10, "the settings", |s| s["screen"] == "settings");
    gui.xdotool(&["mousemove", "--window", &gui.window, "900", "600", "click", "--repeat", "30", "5"]);
    let state = gui.wait(10, "the lists", |s| control(s, "Add source").is_some());
    let rect = &control(&state, "Add source").unwrap()["rect"];
    assert!(
        rect[3].as_f64().unwrap() >= 30.0 && rect[1].as_f64().unwrap() + rect[3].as_f64().unwrap() <= 1080.0,
        "{rect}"
    );
    gui.screenshot("settings-200-percent.png");
}

/// Keyboard alone: from the first-run form to a repository and a
/// snapshot, with Tab to move, typing into the focused field, Space to
/// tick a box and Enter to press a button; then the screens by keyboard.
#[test]
fn the_first_run_and_a_backup_by_keyboard_alone() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("hello.txt", b"typed, not clicked\n"), ("node_modules/pkg/index.js", b"excluded\n")]);
    let config = env.path("conf/vger.yaml");
    let repo = env.path("repo");

    let gui = Gui::launch(&env, &config, false, "1280x800x24", &[]);
    gui.wait(30, "the first-run form", |s| s["screen"] == "first-run");
    gui.tab_to("Backup folder");
    gui.type_focused("Backup folder", repo.to_str().unwrap());
    gui.tab_to("Passphrase");
    gui.type_focused("Passphrase", PASS);
    gui.tab_to("Passphrase again");
    gui.type_focused("Passphrase again", PASS);
    gui.tab_to("Folders");
    gui.type_focused("Folders", src.to_str().unwrap());
    // The node_modules box is offered ticked: Space unticks it.
    gui.tab_to("node_modules folders");
    gui.xdotool(&["key", "space"]);
    gui.wait(10, "a complete form", |s| control(s, "Create").is_some_and(|c| c["enabled"] == true));
    gui.tab_to("Create");
    gui.screenshot("first-run-keyboard.png");
    gui.xdotool(&["key", "Return"]);
    gui.wait(60, "the Overview", |s| s["screen"] == "overview");
    assert!(repo.join("config").is_file(), "the repository was made");

    gui.wait_row(30, "no snapshots yet", |row| lines(row).contains("No snapshots yet"));
    gui.tab_to("Back up now");
    gui.xdotool(&["key", "Return"]);
    gui.wait_row(120, "the backup to finish", |row| row["backup"] == "done" || row["backup"] == "failed");
    let dest = env.path("dest");
    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(&config).args(["restore", "latest"]).arg(&dest);
    env.private_dirs(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(dest.join("hello.txt")).unwrap(), b"typed, not clicked\n");
    // Unticked by Space: node_modules was backed up.
    assert_eq!(fs::read(dest.join("node_modules/pkg/index.js")).unwrap(), b"excluded\n");

    gui.tab_to("screen:Snapshots");
    gui.xdotool(&["key", "Return"]);
    gui.wait(30, "the Snapshots screen", |s| s["screen"] == "snapshots");
    gui.screenshot("snapshots-keyboard.png");
}

const SERVER_TOKEN: &str = "gui-e2e-token-0123456789abcdef";

/// First run against a vger-server started here: "Test connection" on a
/// dead address says it cannot reach it, on the server that nothing is
/// there yet; Create makes the repository on the server, a backup goes
/// there, and the CLI lists it with the config the window wrote.
#[test]
fn first_run_on_a_vger_server_with_test_connection() {
    let Some(env) = Env::ready() else { return };
    let Some(binary) = VgerServer::binary_beside(&vger_bin()) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and no vger-server binary");
        eprintln!("SKIPPED: no vger-server binary (cargo build -p vger-server)");
        return;
    };
    let server = VgerServer::start(&binary, &env.path("server-data"), SERVER_TOKEN);
    let src = env.source(&[("hello.txt", b"to the server\n")]);
    let config = env.path("conf/vger.yaml");

    let gui = Gui::launch(&env, &config, false, "1280x900x24", &[]);
    gui.wait(30, "the first-run form", |s| s["screen"] == "first-run");
    gui.click("kind:vger-server");
    gui.type_into("URL", "http://127.0.0.1:1/laptop");
    gui.type_into("Access token", SERVER_TOKEN);
    gui.click("Allow plain HTTP");
    gui.click("Test connection");
    let state =
        gui.wait(60, "the test's result", |s| lines(s).contains("Cannot reach") || lines(s).contains("Reachable"));
    assert!(lines(&state).contains("Cannot reach the storage: "), "{state:#}");
    gui.screenshot("first-run-server-unreachable.png");

    gui.type_into("URL", &format!("http://{}/laptop", server.addr));
    gui.click("Test connection");
    let state =
        gui.wait(60, "the test's result", |s| lines(s).contains("Cannot reach") || lines(s).contains("Reachable"));
    assert!(lines(&state).contains("Reachable; no repository there yet"), "{state:#}");
    gui.type_into("Passphrase", PASS);
    gui.type_into("Passphrase again", PASS);
    gui.type_into("Folders", src.to_str().unwrap());
    gui.screenshot("first-run-server.png");
    gui.click("Create");
    gui.wait(60, "the Overview", |s| s["screen"] == "overview");
    let state = gui.wait_row(30, "no snapshots yet", |row| lines(row).contains("No snapshots yet"));
    gui.click_button(&state, "Back up now");
    let state = gui.wait_row(120, "the backup", |row| row["backup"] == "done" || row["backup"] == "failed");
    assert_eq!(state["rows"][0]["backup"], "done", "{state:#}");
    assert!(env.path("server-data/laptop").is_dir(), "the repository is on the server");

    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(&config).args(["list", "--json"]);
    env.private_dirs(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
}

/// A 40×30 PNG, red over blue.
fn png() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(40, 30, |_, y| {
        if y < 15 {
            image::Rgba([220, 40, 40, 255])
        } else {
            image::Rgba([40, 40, 220, 255])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// The rest of the Snapshots screen (search across snapshots, versions,
/// comparing two snapshots, text and image previews), the Maintenance
/// screen (check with verification, prune's preview then delete,
/// compact) and Settings (saved in place, a change by hand picked up, a
/// running daemon shown), each in the real window with a screenshot.
#[test]
fn search_compare_preview_maintenance_and_settings_in_the_window() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[
        ("hello.txt", b"hello, first version\n"),
        ("docs/report.txt", b"quarterly numbers\n"),
        ("picture.png", &png()),
    ]);
    let yaml = format!(
        "# Kept: a comment at the top.\nrepositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: src\n    path: \"{}\"\n\n# How many to keep\nretention:\n  keep_last: 1   # only the newest\n",
        env.path("repo").display(),
        src.display()
    );
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    env.vger(&["init"]);
    env.vger(&["backup", "--time", "2026-01-01T10:00:00Z"]);
    fs::write(src.join("hello.txt"), b"hello, second version, longer\n").unwrap();
    fs::write(src.join("docs/new.txt"), b"added later\n").unwrap();
    env.vger(&["backup", "--time", "2026-01-02T10:00:00Z"]);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2);

    let gui = Gui::start(&env);
    gui.click("screen:Snapshots");
    let state = gui.wait(30, "the list", |s| lines(s).contains("2 snapshots"));
    let names = snapshot_rows(&state);
    assert_eq!(names.len(), 2, "{state:#}");
    // Newest first.
    let (newest, oldest) = (names[0].clone(), names[1].clone());

    gui.type_into("Search all snapshots", "hello");
    gui.click("Search");
    let state = gui.wait(60, "the search", |s| lines(s).contains("matching"));
    let text = lines(&state);
    assert!(text.contains("1 path matching “hello” in 2 snapshots"), "{text}");
    assert!(text.contains("modified") && text.contains("added"), "{text}");
    gui.screenshot("snapshots-search.png");

    gui.click(&newest);
    gui.wait(30, "the tree", |s| control(s, "preview:hello.txt").is_some());
    gui.click(&format!("compare:{}", oldest.trim_start_matches("snapshot:")));
    let state = gui.wait(60, "the comparison", |s| lines(s).contains("From "));
    let text = lines(&state);
    assert!(text.contains("+ docs/new.txt"), "{text}");
    assert!(text.contains("M hello.txt"), "{text}");
    assert!(text.contains("1 added, 0 removed, 1 modified"), "{text}");
    gui.screenshot("snapshots-compare.png");

    gui.click("preview:hello.txt");
    let state = gui.wait(60, "the preview", |s| lines(s).contains("text: "));
    assert!(lines(&state).contains("text: hello, second version, longer"), "{state:#}");
    gui.screenshot("snapshots-preview-text.png");
    gui.click("preview:picture.png");
    let state = gui.wait(60, "the image", |s| lines(s).contains("image, "));
    assert!(lines(&state).contains("image, 40×30 pixels"), "{state:#}");
    gui.screenshot("snapshots-preview-image.png");
    gui.click("versions:hello.txt");
    let state = gui.wait(60, "the versions", |s| lines(s).contains("hello.txt: in "));
    assert!(lines(&state).contains("hello.txt: in 2 snapshots"), "{state:#}");

    gui.click("screen:Maintenance");
    gui.click("Check");
    let state =
        gui.wait(120, "the check", |s| lines(s).contains("Check finished") || lines(s).contains("Check failed"));
    assert!(lines(&state).contains("10% of the data read back"), "{state:#}");
    gui.screenshot("maintenance-check.png");
    gui.click("Prune");
    let state = gui.wait(60, "the preview", |s| lines(s).contains("would delete") || lines(s).contains("failed"));
    let text = lines(&state);
    assert!(text.contains("The rules would delete 1 snapshot and keep 1:"), "{text}");
    assert!(text.contains("keep (last)"), "{text}");
    assert_eq!(env.snapshot_ids().len(), 2, "the preview deletes nothing");
    gui.screenshot("maintenance-prune-preview.png");
    gui.click("Delete snapshots");
    let state = gui.wait(60, "the prune", |s| lines(s).contains("Prune finished") || lines(s).contains("failed"));
    assert!(lines(&state).contains("Deleted 1 snapshot"), "{state:#}");
    assert_eq!(env.snapshot_ids().len(), 1);
    gui.click("Compact");
    let state = gui.wait(120, "the compact", |s| lines(s).contains("Compact finished") || lines(s).contains("failed"));
    assert!(lines(&state).contains("Compact finished"), "{state:#}");
    gui.screenshot("maintenance-compact.png");

    gui.click("screen:Settings");
    let state = gui.wait(10, "the settings", |s| s["screen"] == "settings");
    assert!(lines(&state).contains("No schedule is set"), "{state:#}");
    gui.click("Scheduled backups on");
    gui.type_into("Back up every", "2h");
    gui.click("Save settings");
    gui.wait(30, "the save", |s| lines(s).contains("Saved to"));
    let written = fs::read_to_string(env.path("vger.yaml")).unwrap();
    assert_eq!(written, format!("{yaml}\nschedule:\n  enabled: true\n  every: 2h\n"), "only the new lines were added");
    env.vger(&["list"]); // the CLI reads the saved file

    // Saved, the schedule is run by the open app (no daemon runs).
    gui.wait(30, "the app's schedule", |s| lines(s).contains("made by this app while it is open"));

    // A change by hand while the window is open.
    let edited = written.replace("keep_last: 1   # only the newest", "keep_last: 3   # by hand");
    fs::write(env.path("vger.yaml"), &edited).unwrap();
    gui.wait(30, "the reload", |s| lines(s).contains("changed on disk and was read again"));
    gui.screenshot("settings.png");
}

/// Compact and Check cancelled from the Maintenance screen: each says so,
/// and `vger check --verify-data` then finds the repository whole. The
/// app's config has `before_compact` and `before_check` hooks that wait
/// two seconds, so that both are still running when Cancel is clicked (the
/// repository is small enough to compact in less than the click takes);
/// the CLI checks through a copy of the config without them.
#[test]
fn a_compact_and_a_check_cancelled_in_the_window_leave_a_repository_that_checks() {
    let Some(env) = Env::ready() else { return };
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..16u64 {
        fs::write(src.join(format!("f{i:02}.bin")), pattern(4 << 20, i + 1)).unwrap();
    }
    env.config(&src);
    let mut yaml = fs::read_to_string(env.path("vger.yaml")).unwrap();
    yaml.push_str("retention:\n  keep_last: 1\n");
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    env.vger(&["init"]);
    env.vger(&["backup"]);
    for i in (0..16).filter(|i| i % 4 != 0) {
        fs::remove_file(src.join(format!("f{i:02}.bin"))).unwrap();
    }
    env.vger(&["backup"]);
    env.vger(&["prune"]);
    assert_eq!(env.snapshot_ids().len(), 1);
    fs::write(env.path("plain.yaml"), &yaml).unwrap();
    yaml.push_str("hooks:\n  before_compact: [\"sleep 2\"]\n  before_check: [\"sleep 2\"]\n");
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    let check = || {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(env.path("plain.yaml")).args(["check", "--verify-data"]);
        env.private(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "vger check: {}", String::from_utf8_lossy(&out.stderr));
    };

    let gui = Gui::start_with(&env, &[("VGER_GUI_COMPACT_GRACE_SECONDS", "0")]);
    gui.click("screen:Maintenance");
    gui.click("Compact");
    gui.click("Cancel task");
    let state = gui.wait(120, "the compact to stop", |s| {
        lines(s).contains("Compact cancelled") || lines(s).contains("Compact finished") || lines(s).contains("failed")
    });
    gui.screenshot("maintenance-compact-cancelled.png");
    assert!(lines(&state).contains("Compact cancelled; the repository is as it was"), "{state:#}");
    check();

    gui.click("Check");
    gui.click("Cancel task");
    let state = gui.wait(120, "the check to stop", |s| {
        lines(s).contains("Check cancelled") || lines(s).contains("Check finished") || lines(s).contains("failed")
    });
    gui.screenshot("maintenance-check-cancelled.png");
    assert!(lines(&state).contains("Check cancelled"), "{state:#}");
    check();

    // Then to the end: compact frees the deleted files' space, and the repository checks.
    gui.click("Compact");
    let state = gui.wait(300, "the compact", |s| lines(s).contains("Compact finished") || lines(s).contains("failed"));
    assert!(lines(&state).contains("Compact finished") && !lines(&state).contains("Freed 0 B"), "{state:#}");
    check();
}

/// Settings: a source added, a source's excludes changed, a repository
/// added and removed again; each written into `vger.yaml` with its
/// comments kept, and read by the CLI; a label used twice is refused in
/// the CLI's words and nothing is written.
#[test]
fn repositories_and_sources_are_edited_in_settings() {
    let Some(env) = Env::ready() else { return };
    let src = env.source(&[("a.txt", b"a\n")]);
    let docs = env.source(&[("docs/d.txt", b"d\n")]).join("docs");
    env.config(&src);
    let yaml = format!("# kept by hand\n{}", fs::read_to_string(env.path("vger.yaml")).unwrap());
    fs::write(env.path("vger.yaml"), &yaml).unwrap();
    env.vger(&["init"]);

    let gui = Gui::start(&env);
    gui.click("screen:Settings");
    gui.wait(10, "the settings", |s| s["screen"] == "settings");
    // The lists are below the schedule: scroll down to them.
    gui.xdotool(&["mousemove", "--window", &gui.window, "600", "400", "click", "--repeat", "20", "5"]);
    gui.type_into("New source label", "papers");
    gui.type_into("New source folders", docs.to_str().unwrap());
    gui.click("Add source");
    let state = gui.wait(30, "the new source", |s| control(s, "Folders of papers").is_some());
    assert!(lines(&state).contains("Saved to "), "{state:#}");
    assert!(!lines(&state).contains("changed on disk"), "its own save is not news: {state:#}");
    let text = fs::read_to_string(env.path("vger.yaml")).unwrap();
    assert!(text.starts_with("# kept by hand\n") && text.contains("label: papers"), "{text}");

    gui.xdotool(&["mousemove", "--window", &gui.window, "600", "400", "click", "--repeat", "20", "5"]);
    gui.type_into("Excludes of src", "*.tmp");
    gui.click("save source:src");
    gui.wait(30, "the excludes", |s| {
        control(s, "Excludes of src").is_some_and(|c| c["value"] == "*.tmp")
            && control(s, "save source:src").is_some_and(|c| c["enabled"] == false)
    });
    let text = fs::read_to_string(env.path("vger.yaml")).unwrap();
    assert!(text.contains("    exclude:\n      - \"*.tmp\"\n"), "{text}");

    gui.xdotool(&["mousemove", "--window", &gui.window, "600", "300", "click", "--repeat", "20", "4"]);
    gui.type_into("New repository label", "local");
    gui.type_into("New repository URL", env.path("usb").to_str().unwrap());
    gui.click("Add repository");
    let state = gui.wait(30, "the refusal", |s| lines(s).contains("used twice"));
    assert!(lines(&state).contains("repository label `local` is used twice"), "{state:#}");
    assert_eq!(fs::read_to_string(env.path("vger.yaml")).unwrap(), text, "nothing written");
    gui.type_into("New repository label", "usb");
    gui.click("Add repository");
    gui.wait(30, "the new repository", |s| control(s, "remove repository:usb").is_some());
    gui.xdotool(&["mousemove", "--window", &gui.window, "600", "400", "click", "--repeat", "20", "5"]);
    gui.screenshot("settings-lists.png");
    gui.click("remove repository:usb");
    gui.wait(30, "the removal", |s| {
        control(s, "remove repository:local").is_some() && control(s, "remove repository:usb").is_none()
    });
    let text = fs::read_to_string(env.path("vger.yaml")).unwrap();
    assert!(!text.contains("usb") && text.contains("label: papers") && text.starts_with("# kept by hand\n"), "{text}");
    env.vger(&["backup"]);
    let list = env.vger(&["list"]);
    assert!(list.contains("papers") && list.contains("src"), "{list}");
}

const NOTIFICATION_DAEMON: &str = "/usr/lib/notification-daemon/notification-daemon";

/// A D-Bus session bus of the test's own: the daemon and its address.
fn session_bus() -> (Reaped, String) {
    session_bus_with(&[])
}

/// A session bus whose daemon (and so every service it starts on demand)
/// has `vars` in its environment.
fn session_bus_with(vars: &[(&str, &Path)]) -> (Reaped, String) {
    use std::io::BufRead;
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
    (Reaped(bus), address.trim().to_string())
}

/// A failed backup raises a desktop notification: a real notification
/// service (GNOME's notification-daemon) on a session bus of the test's
/// own shows it on the X screen; the app logs that it was delivered. The
/// bus has no StatusNotifier host, so there is no tray, and the app works
/// without it.
#[test]
fn a_failed_backup_raises_a_desktop_notification() {
    let Some(env) = Env::ready() else { return };
    if !tools_ready(&["dbus-daemon", "dbus-send", NOTIFICATION_DAEMON], "dbus-daemon dbus-bin notification-daemon") {
        return;
    }
    env.config(&env.path("no-such-folder"));
    env.vger(&["init"]);
    let (_bus, address) = session_bus();
    let gui = Gui::start_with(&env, &[("DBUS_SESSION_BUS_ADDRESS", &address)]);
    let _notifier = Reaped(
        Command::new(NOTIFICATION_DAEMON)
            .env("DISPLAY", &gui.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Until the service owns its name on the bus.
    assert!(
        wait_for_bus_name(&address, "org.freedesktop.Notifications", 20),
        "notification-daemon never took its name"
    );
    let state = gui.wait_row(30, "the row", |row| lines(row).contains("No snapshots yet"));
    gui.click_button(&state, "Back up now");
    gui.wait_row(60, "the failure", |row| row["backup"] == "failed");
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = fs::read_to_string(env.path("gui.log")).unwrap_or_default();
        if log.contains("vger-gui: notified: ") || log.contains("no desktop notification") || Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(log.contains("vger-gui: notified: vger: the backup of local failed"), "{log}");
    assert!(log.contains("vger-gui: no tray icon ("), "no StatusNotifier host on this bus: {log}");
    std::thread::sleep(Duration::from_millis(500));
    gui.screenshot("notification-backup-failed.png");
}

/// Whether the commands `tools` are installed; if not, says so and skips
/// (`false`), or fails under CI, where `.ci/run` installs `packages`.
fn tools_ready(tools: &[&str], packages: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {missing:?} missing");
    eprintln!("SKIPPED: {missing:?} missing (apt install {packages})");
    false
}

/// Whether `name` has an owner on the bus at `address`, within `secs`.
fn wait_for_bus_name(address: &str, name: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
            .args(["org.freedesktop.DBus.NameHasOwner", &format!("string:{name}")])
            .env("DBUS_SESSION_BUS_ADDRESS", address)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Visible windows of X class `class` on `display`, each with its
/// geometry (x, y, width, height).
fn windows_of_class(display: &str, class: &str) -> Vec<(String, [i64; 4])> {
    let out =
        Command::new("xdotool").args(["search", "--onlyvisible", "--class", class]).env("DISPLAY", display).output();
    let ids = out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    ids.lines()
        .filter_map(|id| {
            let out = Command::new("xdotool")
                .args(["getwindowgeometry", "--shell", id])
                .env("DISPLAY", display)
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))?.parse::<i64>().ok());
            Some((id.to_string(), [field("X")?, field("Y")?, field("WIDTH")?, field("HEIGHT")?]))
        })
        .collect()
}

/// The tray icon in a real panel: Xfce's panel, whose Status Tray plugin
/// is a StatusNotifier host, runs on the test's own session bus and X
/// server. The app's icon registers with it and shows in the panel; a
/// right click opens the app's menu (drawn by the panel from the app's
/// D-Bus menu), whose "Back up now" makes a snapshot that restores and
/// whose "Quit" ends the app.
#[test]
fn the_tray_icon_in_a_real_panel_backs_up_and_quits() {
    let Some(env) = Env::ready() else { return };
    if !tools_ready(&["dbus-daemon", "dbus-send", "xfce4-panel", "xprop"], "dbus-daemon dbus-bin xfce4-panel x11-utils")
    {
        return;
    }
    let src = env.source(&[("from-the-tray.txt", b"backed up from the panel's menu\n")]);
    env.config(&src);
    env.vger(&["init"]);

    // The panel's settings service (xfconfd) starts on demand from the
    // bus: a config folder of the test's own keeps it off the user's, so
    // the panel starts with Debian's default layout (Status Tray included).
    let xdg = env.path("xdg-config");
    fs::create_dir_all(&xdg).unwrap();
    let (_bus, address) = session_bus_with(&[("XDG_CONFIG_HOME", xdg.as_path())]);
    let (xvfb, display) = start_xvfb("1280x800x24");
    let _panel = Reaped(
        Command::new("xfce4-panel")
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_CONFIG_HOME", &xdg)
            .stdout(Stdio::null())
            .stderr(fs::File::create(env.path("panel.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for_bus_name(&address, "org.kde.StatusNotifierWatcher", 30),
        "the panel never offered a tray; its log: {}",
        fs::read_to_string(env.path("panel.log")).unwrap_or_default()
    );
    let mut gui =
        Gui::launch_in(&env, &env.path("vger.yaml"), true, (xvfb, display), &[("DBUS_SESSION_BUS_ADDRESS", &address)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = fs::read_to_string(env.path("gui.log")).unwrap_or_default();
        if log.contains("tray icon") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(log.contains("vger-gui: tray icon shown"), "{log}");
    let out = Command::new("dbus-send")
        .args(["--session", "--print-reply", "--dest=org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher"])
        .args(["org.freedesktop.DBus.Properties.Get", "string:org.kde.StatusNotifierWatcher"])
        .arg("string:RegisteredStatusNotifierItems")
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("/StatusNotifierItem"), "{out:?}");
    gui.wait_row(30, "the row", |row| lines(row).contains("No snapshots yet"));

    // The Status Tray plugin runs in a wrapper process of its own; its
    // window holds the one icon there is, the app's.
    let tray = || {
        windows_of_class(&gui.display, "wrapper-2.0").into_iter().find(|(id, _)| {
            let out = Command::new("xprop").args(["-id", id, "_NET_WM_PID"]).env("DISPLAY", &gui.display).output();
            let pid =
                out.map(|o| String::from_utf8_lossy(&o.stdout).rsplit(' ').next().unwrap_or("").trim().to_string());
            pid.ok()
                .and_then(|p| fs::read(format!("/proc/{p}/cmdline")).ok())
                .is_some_and(|c| String::from_utf8_lossy(&c).contains("libsystray"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (_, icon) = loop {
        if let Some(found) = tray().filter(|(_, g)| g[2] > 0) {
            break found;
        }
        assert!(Instant::now() < deadline, "no Status Tray window in the panel");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Right click on the icon, with the panel above the app's window (no
    // window manager keeps it there), and pick an item of the menu that
    // opens below it: three items, "Back up now" first, "Quit" last.
    let menu_item = |first: bool| {
        for (id, _) in windows_of_class(&gui.display, "xfce4-panel") {
            gui.xdotool(&["windowraise", &id]);
        }
        let (x, y) = (icon[0] + icon[2] / 2, icon[1] + icon[3] / 2);
        gui.xdotool(&["mousemove", &x.to_string(), &y.to_string(), "click", "3"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let menu = loop {
            let menus: Vec<_> = windows_of_class(&gui.display, "wrapper-2.0")
                .into_iter()
                .filter(|(_, g)| g[1] >= icon[1] + icon[3] - 2 && g[3] > 40)
                .collect();
            if let Some((_, g)) = menus.into_iter().next() {
                break g;
            }
            assert!(Instant::now() < deadline, "the tray icon's menu never opened");
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_millis(300));
        let item_y = if first { menu[1] + menu[3] / 6 } else { menu[1] + menu[3] * 5 / 6 };
        (menu, item_y)
    };
    let (menu, item_y) = menu_item(true);
    gui.screenshot("tray-menu.png");
    gui.xdotool(&["mousemove", &(menu[0] + menu[2] / 2).to_string(), &item_y.to_string(), "click", "1"]);
    gui.wait_row(120, "the backup from the tray", |row| row["backup"] == "done" || row["backup"] == "failed");
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 1, "one snapshot, made from the tray's menu: {ids:?}");
    let dest = env.path("restored");
    env.vger(&["restore", &ids[0], dest.to_str().unwrap()]);
    assert_same_tree(&src, &dest);

    let (menu, item_y) = menu_item(false);
    gui.xdotool(&["mousemove", &(menu[0] + menu[2] / 2).to_string(), &item_y.to_string(), "click", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while matches!(gui._app.0.try_wait(), Ok(None)) {
        assert!(Instant::now() < deadline, "Quit in the tray's menu did not end the app");
        std::thread::sleep(Duration::from_millis(100));
    }
}
