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

mod browse;
mod model;
mod probe;
mod restore;
mod snapshots;
mod ui;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use eframe::egui;
use model::Overview;
use probe::Seen;
use snapshots::Snapshots;

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
            Ok(Box::new(Window::new(app, waker)))
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

/// The screens of a configured app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Overview,
    Snapshots,
}

struct Window {
    screen: Screen,
    overview: Overview,
    snapshots: Snapshots,
    probe: probe::Probe,
}

impl Window {
    fn new(app: vger_app::App, waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        Window {
            screen: Screen::Overview,
            overview: Overview::new(app.clone(), waker.clone()),
            snapshots: Snapshots::new(app, waker),
            probe: probe::Probe::from_env(),
        }
    }

    fn running(&self) -> bool {
        self.overview.any_running() || self.snapshots.restoring()
    }
}

impl eframe::App for Window {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let started = self.probe.frame_start(self.running());
        self.overview.poll();
        self.snapshots.poll();
        let mut seen = Seen::new(ctx.pixels_per_point());
        egui::SidePanel::left("screens").resizable(false).exact_width(130.0).show(ctx, |ui| {
            ui.add_space(8.0);
            for (screen, name) in [(Screen::Overview, "Overview"), (Screen::Snapshots, "Snapshots")] {
                let r =
                    ui.add_sized([ui.available_width(), 28.0], egui::Button::selectable(self.screen == screen, name));
                seen.control(format!("screen:{name}"), &r);
                if r.clicked() && self.screen != screen {
                    self.screen = screen;
                    if screen == Screen::Snapshots {
                        // Read again: a backup may have added snapshots.
                        let repo = if self.snapshots.repo == usize::MAX { 0 } else { self.snapshots.repo };
                        self.snapshots.show_repository(repo);
                    }
                }
            }
        });
        egui::CentralPanel::default().show(ctx, |ui| match self.screen {
            Screen::Overview => {
                seen.screen = "overview";
                ui::overview::show(ui, &mut self.overview, &mut seen);
            }
            Screen::Snapshots => {
                seen.screen = "snapshots";
                ui::snapshots::show(ui, &mut self.snapshots, &mut seen);
            }
        });
        if self.probe.continuous && self.running() {
            ctx.request_repaint();
        }
        self.probe.frame_end(started, &seen);
    }
}
