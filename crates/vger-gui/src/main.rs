//! `vger-gui`: the desktop app for vger.
//!
//! Toolkit: egui/eframe with the glow (OpenGL) renderer. It draws through
//! Mesa's software OpenGL under Xvfb, so CI needs no GPU; it builds from
//! crates.io alone (no binaries downloaded at build time) in a few minutes
//! on two cores; AccessKit gives every control an accessible name; and its
//! immediate mode keeps the screens thin over the toolkit-free view models
//! in [`model`], which the tests drive without a display.
//!
//! The app calls the application layer (`vger-app`) and the engine, never
//! the `vger` command.

mod model;
mod probe;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use eframe::egui;
use model::{BackupState, Overview, RepoStatus};
use probe::RowSeen;

fn usage() -> &'static str {
    "usage: vger-gui [--config FILE]"
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut config: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(p) => config = Some(PathBuf::from(p)),
                None => {
                    eprintln!("vger-gui: --config needs a file; {}", usage());
                    return std::process::ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{}", usage());
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("vger-gui: unknown argument `{other}`; {}", usage());
                return std::process::ExitCode::from(2);
            }
        }
    }
    let loaded = match vger_config::Config::load(config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vger-gui: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let app = vger_app::App::from_loaded(loaded);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("vger").with_inner_size([900.0, 600.0]),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let result = eframe::run_native(
        "vger",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let ctx_cell: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
            let _ = ctx_cell.set(ctx);
            let waker_ctx = ctx_cell.clone();
            let waker = Arc::new(move || {
                if let Some(c) = waker_ctx.get() {
                    c.request_repaint();
                }
            });
            Ok(Box::new(Window { overview: Overview::new(app, waker), probe: probe::Probe::from_env() }))
        }),
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vger-gui: cannot open a window: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

struct Window {
    overview: Overview,
    probe: probe::Probe,
}

/// Adds a line of text to the row and remembers it for the test hook.
fn line(ui: &mut egui::Ui, seen: &mut RowSeen, text: String, color: Option<egui::Color32>) {
    match color {
        Some(c) => ui.colored_label(c, &text),
        None => ui.label(&text),
    };
    seen.lines.push(text);
}

impl eframe::App for Window {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let started = self.probe.frame_start(self.overview.any_running());
        self.overview.poll();
        egui::TopBottomPanel::top("title").show(ctx, |ui| {
            ui.heading("Overview");
            ui.label(format!("Config: {}", self.overview.app.config_path.display()));
            if self.overview.any_running() {
                ui.label("A backup is running; this window stays usable.");
            }
        });
        let mut seen_rows = Vec::with_capacity(self.overview.rows.len());
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                let now = chrono::Utc::now();
                let mut start = None;
                let mut cancel = None;
                for (i, row) in self.overview.rows.iter().enumerate() {
                    let mut seen = RowSeen::default();
                    ui.group(|ui| {
                        let title = format!("{} — {}", row.label, row.url);
                        ui.strong(&title);
                        seen.lines.push(title);
                        let error = ui.visuals().error_fg_color;
                        let warn = ui.visuals().warn_fg_color;
                        match &row.status {
                            RepoStatus::Loading => line(ui, &mut seen, "Reading snapshots…".into(), None),
                            RepoStatus::Failed(e) => line(ui, &mut seen, format!("Cannot open: {e}"), Some(error)),
                            RepoStatus::Snapshots { count, last } => {
                                let text = match last {
                                    Some(l) => format!(
                                        "Last snapshot: {} ({}, {} added, source {}); {} in all",
                                        l.time.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M"),
                                        model::count(l.files, "file"),
                                        model::human_bytes(l.added_bytes),
                                        l.source,
                                        model::count(*count as u64, "snapshot"),
                                    ),
                                    None => "No snapshots yet".into(),
                                };
                                line(ui, &mut seen, text, None);
                            }
                        }
                        if let Some(w) = row.staleness(now) {
                            line(ui, &mut seen, format!("⚠ {w}"), Some(warn));
                        }
                        let button = match &row.backup {
                            BackupState::Running { progress, cancelling } => {
                                seen.backup = "running";
                                match progress {
                                    Some(p) => {
                                        let fraction = p.total_bytes.map(|t| p.bytes as f32 / t.max(1) as f32);
                                        let text = model::progress_line(p);
                                        let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0))
                                            .text(text.clone())
                                            .animate(fraction.is_none());
                                        ui.add(bar);
                                        seen.lines.push(text);
                                        line(ui, &mut seen, format!("Current file: {}", p.current), None);
                                    }
                                    None => line(ui, &mut seen, "Starting backup…".into(), None),
                                }
                                let label = if *cancelling { "Cancelling…" } else { "Cancel" };
                                let response = ui.add_enabled(!cancelling, egui::Button::new(label));
                                if response.clicked() {
                                    cancel = Some(i);
                                }
                                (label, response.rect)
                            }
                            other => {
                                seen.backup = match other {
                                    BackupState::Done { snapshots, added_bytes } => {
                                        let text = format!(
                                            "Backup finished: {} written, {} added",
                                            model::count(*snapshots as u64, "snapshot"),
                                            model::human_bytes(*added_bytes)
                                        );
                                        line(ui, &mut seen, text, None);
                                        "done"
                                    }
                                    BackupState::Failed(e) => {
                                        line(ui, &mut seen, format!("Backup failed: {e}"), Some(error));
                                        "failed"
                                    }
                                    BackupState::Cancelled => {
                                        let text = "Backup cancelled: no snapshot was written; data already stored is reused by the next backup.".to_string();
                                        line(ui, &mut seen, text, None);
                                        "cancelled"
                                    }
                                    _ => "idle",
                                };
                                let response = ui.button("Back up now");
                                if response.clicked() {
                                    start = Some(i);
                                }
                                ("Back up now", response.rect)
                            }
                        };
                        let (label, r) = button;
                        seen.button = Some((label.to_string(), [r.min.x, r.min.y, r.width(), r.height()]));
                    });
                    seen_rows.push(seen);
                }
                if let Some(i) = start {
                    self.overview.back_up_now(i);
                }
                if let Some(i) = cancel {
                    self.overview.cancel(i);
                }
            });
        });
        if self.probe.continuous && self.overview.any_running() {
            ctx.request_repaint();
        }
        self.probe.frame_end(started, &seen_rows);
    }
}
