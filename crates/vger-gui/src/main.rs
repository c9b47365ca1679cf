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

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use eframe::egui;
use model::{BackupState, Overview, RepoStatus};

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
            Ok(Box::new(Window { overview: Overview::new(app, waker) }))
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
}

impl eframe::App for Window {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.overview.poll();
        egui::TopBottomPanel::top("title").show(ctx, |ui| {
            ui.heading("Overview");
            ui.label(format!("Config: {}", self.overview.app.config_path.display()));
            if self.overview.any_running() {
                ui.label("A backup is running; this window stays usable.");
            }
        });
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                let now = chrono::Utc::now();
                let mut start = None;
                let mut cancel = None;
                for (i, row) in self.overview.rows.iter().enumerate() {
                    ui.group(|ui| {
                        ui.strong(format!("{} — {}", row.label, row.url));
                        match &row.status {
                            RepoStatus::Loading => {
                                ui.label("Reading snapshots…");
                            }
                            RepoStatus::Failed(e) => {
                                ui.colored_label(ui.visuals().error_fg_color, format!("Cannot open: {e}"));
                            }
                            RepoStatus::Snapshots { count, last } => {
                                match last {
                                    Some(l) => ui.label(format!(
                                        "Last snapshot: {} ({} files, {} added, source {}); {count} snapshots",
                                        l.time.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M"),
                                        l.files,
                                        model::human_bytes(l.added_bytes),
                                        l.source
                                    )),
                                    None => ui.label("No snapshots yet"),
                                };
                            }
                        }
                        if let Some(w) = row.staleness(now) {
                            ui.colored_label(ui.visuals().warn_fg_color, format!("⚠ {w}"));
                        }
                        match &row.backup {
                            BackupState::Running { progress, cancelling } => {
                                match progress {
                                    Some(p) => {
                                        let fraction = p.total_bytes.map(|t| p.bytes as f32 / t.max(1) as f32);
                                        let bar = egui::ProgressBar::new(fraction.unwrap_or(0.0))
                                            .text(model::progress_line(p))
                                            .animate(fraction.is_none());
                                        ui.add(bar);
                                        ui.label(format!("Current file: {}", p.current));
                                    }
                                    None => {
                                        ui.label("Starting backup…");
                                    }
                                }
                                let label = if *cancelling { "Cancelling…" } else { "Cancel" };
                                if ui.add_enabled(!cancelling, egui::Button::new(label)).clicked() {
                                    cancel = Some(i);
                                }
                            }
                            other => {
                                match other {
                                    BackupState::Done { snapshots, added_bytes } => {
                                        ui.label(format!(
                                            "Backup finished: {snapshots} snapshot(s), {} added",
                                            model::human_bytes(*added_bytes)
                                        ));
                                    }
                                    BackupState::Failed(e) => {
                                        ui.colored_label(ui.visuals().error_fg_color, format!("Backup failed: {e}"));
                                    }
                                    BackupState::Cancelled => {
                                        ui.label("Backup cancelled; the repository is unchanged.");
                                    }
                                    _ => {}
                                }
                                if ui.button("Back up now").clicked() {
                                    start = Some(i);
                                }
                            }
                        }
                    });
                }
                if let Some(i) = start {
                    self.overview.back_up_now(i);
                }
                if let Some(i) = cancel {
                    self.overview.cancel(i);
                }
            });
        });
    }
}
