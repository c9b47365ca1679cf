//! Test hooks: what the window shows, written as JSON for end-to-end tests,
//! and how long the UI thread took per frame.
//!
//! `VGER_GUI_STATE_FILE=PATH` makes the app write its visible state to PATH
//! whenever it changes (atomically: a temporary file, then a rename): the
//! screen shown, its lines of text, and each control by name with its
//! position in window pixels, so a test can find it and click it.
//! `VGER_GUI_FRAME_TIMES=1` also keeps the window repainting while a backup
//! runs, so the longest gap between two frames measures the longest stall
//! of the event loop (without it, egui paints only on input or progress).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One repository row as the user sees it.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct RowSeen {
    /// Every line of text in the row, top to bottom.
    pub lines: Vec<String>,
    /// `idle`, `running`, `done`, `failed` or `cancelled`.
    pub backup: &'static str,
    /// The row's button ("Back up now" or "Cancel") and where it is, in
    /// window pixels: left, top, width, height.
    pub button: Option<(String, [f32; 4])>,
    /// Whether that button has the keyboard focus (only written when it has).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub button_focused: bool,
}

/// A control as a test finds it.
#[derive(Debug, Serialize, PartialEq)]
pub struct ControlSeen {
    /// Its name: the text on it, or a name given by the screen
    /// (`open:docs`, `select:docs/a.txt`).
    pub name: String,
    /// Left, top, width, height in window pixels.
    pub rect: [f32; 4],
    pub enabled: bool,
    /// A text field's content (never a password's), so a test can tell
    /// that what it typed arrived whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A password field's length in characters (its content is never
    /// written), so a test can tell that no key was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars: Option<usize>,
    /// Whether the control has the keyboard focus (only written when it has).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub focused: bool,
}

/// What one frame showed.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Seen {
    /// `overview`, `snapshots` or `first-run`.
    pub screen: &'static str,
    /// The Overview's repositories.
    pub rows: Vec<RowSeen>,
    /// The other screens' text, top to bottom.
    pub lines: Vec<String>,
    pub controls: Vec<ControlSeen>,
    /// Pixels per point (the scale the window draws at).
    #[serde(skip)]
    pub pixels_per_point: f32,
}

impl Seen {
    pub fn new(pixels_per_point: f32) -> Self {
        Seen { pixels_per_point, ..Seen::default() }
    }

    /// Remembers a control drawn this frame.
    pub fn control(&mut self, name: impl Into<String>, response: &eframe::egui::Response) {
        let r = response.rect;
        let k = self.pixels_per_point;
        self.controls.push(ControlSeen {
            name: name.into(),
            rect: [r.min.x * k, r.min.y * k, r.width() * k, r.height() * k],
            enabled: response.enabled(),
            value: None,
            chars: None,
            focused: response.has_focus(),
        });
    }

    /// Remembers a text field drawn this frame, with its content.
    pub fn text_field(&mut self, name: impl Into<String>, response: &eframe::egui::Response, text: &str) {
        self.control(name, response);
        if let Some(c) = self.controls.last_mut() {
            c.value = Some(text.to_string());
        }
    }

    /// Remembers a password field drawn this frame, with its length only.
    pub fn secret_field(&mut self, name: impl Into<String>, response: &eframe::egui::Response, text: &str) {
        self.control(name, response);
        if let Some(c) = self.controls.last_mut() {
            c.chars = Some(text.chars().count());
        }
    }

    /// Remembers a line of text drawn this frame.
    pub fn line(&mut self, text: impl Into<String>) {
        self.lines.push(text.into());
    }
}

#[derive(Debug, Serialize, PartialEq)]
struct StateSeen<'a> {
    #[serde(flatten)]
    seen: &'a Seen,
    frames: u64,
    /// Longest time spent in one `update` (the UI thread's own work).
    max_update_ms: u64,
    /// Longest gap between two frames while a backup ran.
    max_gap_running_ms: u64,
}

/// Per-frame bookkeeping of the hooks.
pub struct Probe {
    /// The state file's writer thread (the UI thread never writes it).
    writer: Option<std::sync::mpsc::Sender<String>>,
    /// `VGER_GUI_FRAME_LOG=1`: each frame gap over [`SLOW`] goes to
    /// standard error with the time the frame before spent in `update`.
    log_slow: bool,
    last_update: Duration,
    /// Keep painting while a backup runs (frame-time measurement).
    pub continuous: bool,
    last_json: String,
    last_frame: Option<Instant>,
    frames: u64,
    max_update: Duration,
    max_gap_running: Duration,
}

impl Probe {
    pub fn from_env() -> Self {
        Probe {
            writer: std::env::var_os("VGER_GUI_STATE_FILE").map(PathBuf::from).map(state_writer),
            log_slow: std::env::var("VGER_GUI_FRAME_LOG").is_ok_and(|v| v == "1"),
            last_update: Duration::ZERO,
            continuous: std::env::var("VGER_GUI_FRAME_TIMES").is_ok_and(|v| v == "1"),
            last_json: String::new(),
            last_frame: None,
            frames: 0,
            max_update: Duration::ZERO,
            max_gap_running: Duration::ZERO,
        }
    }

    /// Call at the start of a frame; returns the frame's start time.
    pub fn frame_start(&mut self, running: bool) -> Instant {
        let now = Instant::now();
        if let (Some(prev), true) = (self.last_frame, running) {
            let gap = now - prev;
            self.max_gap_running = self.max_gap_running.max(gap);
            if self.log_slow && gap > SLOW {
                eprintln!(
                    "vger-gui: frame {}: {} ms since the last frame, which spent {} ms in update",
                    self.frames,
                    gap.as_millis(),
                    self.last_update.as_millis()
                );
            }
        }
        self.last_frame = Some(now);
        self.frames += 1;
        now
    }

    /// Call at the end of a frame with what the frame showed.
    pub fn frame_end(&mut self, started: Instant, seen: &Seen) {
        self.last_update = started.elapsed();
        self.max_update = self.max_update.max(self.last_update);
        let Some(writer) = &self.writer else { return };
        let state = StateSeen {
            seen,
            frames: 0,
            max_update_ms: self.max_update.as_millis() as u64,
            max_gap_running_ms: self.max_gap_running.as_millis() as u64,
        };
        // The frame counter is left out of the comparison so an idle
        // window does not rewrite the file; it is filled in when written.
        let Ok(json) = serde_json::to_string(&state) else { return };
        if json == self.last_json {
            return;
        }
        let written = StateSeen { frames: self.frames, ..state };
        if let Ok(text) = serde_json::to_string_pretty(&written) {
            let _ = writer.send(text);
        }
        self.last_json = json;
    }
}

/// A frame gap worth logging with `VGER_GUI_FRAME_LOG=1`.
const SLOW: Duration = Duration::from_millis(50);

/// The thread that writes the state file (atomically: a temporary file,
/// then a rename), only the latest of the states sent meanwhile.
fn state_writer(path: PathBuf) -> std::sync::mpsc::Sender<String> {
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        while let Ok(mut text) = receiver.recv() {
            while let Ok(newer) = receiver.try_recv() {
                text = newer;
            }
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    });
    sender
}
