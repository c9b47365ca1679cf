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
mod checks;
mod desktop;
mod explore;
mod files;
mod first_run;
mod lists;
mod maintenance;
mod model;
mod probe;
mod restore;
mod scheduler;
mod settings;
mod snapshots;
mod ui;
mod yaml_edit;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use eframe::egui;
use first_run::FirstRun;
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
    // A config that does not load is shown in the window too: someone who
    // started the app from a menu never sees standard error.
    let start = start_with(config.as_deref()).unwrap_or_else(|e| {
        eprintln!("vger-gui: {e}");
        Start::Broken(e.to_string())
    });
    // 200% scaling on demand (egui follows the display's own scale factor otherwise).
    let zoom = std::env::var("VGER_GUI_SCALE").ok().and_then(|v| v.parse::<f32>().ok()).map(|z| z.clamp(0.5, 4.0));
    // Never wider or taller than a 1920×1080 screen (less its panels) at
    // any scale: the window can be made larger, but must fit to start with.
    let size = [(1100.0 * zoom.unwrap_or(1.0)).min(1880.0), (700.0 * zoom.unwrap_or(1.0)).min(1000.0)];
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_title("vger").with_inner_size(size),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let result = eframe::run_native(
        "vger",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            if let Some(zoom) = zoom {
                ctx.set_zoom_factor(zoom);
            }
            let ctx_cell: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
            let _ = ctx_cell.set(ctx);
            let waker_ctx = ctx_cell.clone();
            let waker: Waker = Arc::new(move || {
                if let Some(c) = waker_ctx.get() {
                    c.request_repaint();
                }
            });
            Ok(Box::new(Window::new(start, waker)))
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

use model::Waker;

/// What the window opens with.
enum Start {
    Configured(Box<vger_app::App>),
    /// No config, or an empty one: the first-run form writes this file.
    FirstRun(PathBuf),
    /// The config does not load: its message.
    Broken(String),
}

/// A config that loads, or the file a first run would write; any other
/// error is the CLI's message.
fn start_with(explicit: Option<&std::path::Path>) -> Result<Start, vger_config::ConfigError> {
    use vger_config::ConfigError;
    let path = match vger_config::Config::locate(explicit) {
        Ok(path) => path,
        Err(ConfigError::Missing { path, .. }) => return Ok(Start::FirstRun(path)),
        Err(ConfigError::NotFound { searched }) => {
            // The user's own config file: the second place searched, after ./vger.yaml.
            let user = searched.get(1).or(searched.first()).cloned();
            return user.map(Start::FirstRun).ok_or(ConfigError::NotFound { searched });
        }
        Err(e) => return Err(e),
    };
    if std::fs::read_to_string(&path).is_ok_and(|t| first_run::is_blank_config(&t)) {
        return Ok(Start::FirstRun(path));
    }
    let loaded = vger_config::Config::load(Some(&path))?;
    Ok(Start::Configured(Box::new(vger_app::App::from_loaded(loaded))))
}

/// The screens of a configured app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Overview,
    Snapshots,
    Maintenance,
    Settings,
}

struct Screens {
    screen: Screen,
    overview: Overview,
    snapshots: Snapshots,
    maintenance: maintenance::Maintenance,
    settings: settings::Settings,
    /// The repositories and sources part of Settings.
    lists: lists::Lists,
    schedule: settings::ScheduleInfo,
    app: vger_app::App,
    waker: Waker,
    /// What the watcher thread saw of the config file and the daemon.
    looks: std::sync::mpsc::Receiver<settings::Look>,
    /// The config file read again, waiting until nothing runs.
    pending: Option<(settings::Stamp, Result<vger_config::Config, String>)>,
    /// The schedule, run here while no daemon runs it.
    scheduler: scheduler::Scheduler,
}

impl Screens {
    fn new(app: vger_app::App, waker: Waker) -> Self {
        let settings = settings::Settings::new(&app.config, &app.config_path);
        let (sender, looks) = std::sync::mpsc::channel();
        settings::watch(&app.config, &app.config_path, settings.stamp(), sender, waker.clone());
        let scheduler = scheduler::Scheduler::start(&app.config, &app.config_path, waker.clone());
        Screens {
            screen: Screen::Overview,
            overview: Overview::new(app.clone(), waker.clone()),
            snapshots: Snapshots::new(app.clone(), waker.clone()),
            maintenance: maintenance::Maintenance::new(app.clone(), waker.clone()),
            lists: lists::Lists::new(&app.config, &app.config_path, settings.stamp()),
            settings,
            schedule: settings::ScheduleInfo::default(),
            app,
            waker,
            looks,
            pending: None,
            scheduler,
        }
    }

    /// Takes the watcher's looks; never blocks. A config changed on disk
    /// (saved here, or by hand) is used once nothing runs.
    fn watch(&mut self) {
        while let Ok(look) = self.looks.try_recv() {
            self.overview.set_next_runs(&look.schedule);
            self.schedule = look.schedule;
            if let Some(loaded) = look.loaded {
                self.pending = Some((look.stamp, loaded));
            }
        }
        // A save's own write is known by its stamp once the save is taken.
        if self.running() || self.settings.saving() || self.lists.saving() {
            return;
        }
        let Some((stamp, loaded)) = self.pending.take() else { return };
        // Saved here: the form already shows it.
        if stamp != self.settings.stamp() {
            self.settings.reloaded(&loaded, stamp);
            // Written by the repositories and sources form: not news.
            if self.lists.wrote == Some(stamp) && !self.settings.dirty() {
                self.settings.message = None;
            }
        }
        if let Ok(config) = loaded {
            self.use_config(config);
        }
    }

    /// The screens on a new config (after a save or a change by hand).
    fn use_config(&mut self, config: vger_config::Config) {
        let app = vger_app::App::new(config, self.app.config_path.clone());
        self.overview = Overview::new(app.clone(), self.waker.clone());
        self.overview.set_next_runs(&self.schedule);
        self.snapshots = Snapshots::new(app.clone(), self.waker.clone());
        self.maintenance = maintenance::Maintenance::new(app.clone(), self.waker.clone());
        if self.screen == Screen::Snapshots {
            self.snapshots.show_repository(0);
        }
        // The repositories may have changed: a watcher for the new list.
        let (sender, looks) = std::sync::mpsc::channel();
        settings::watch(&app.config, &app.config_path, self.settings.stamp(), sender, self.waker.clone());
        self.looks = looks;
        let (said, wrote) = (self.lists.message.take(), self.lists.wrote);
        self.lists = lists::Lists::new(&app.config, &app.config_path, self.settings.stamp());
        (self.lists.message, self.lists.wrote) = (said, wrote);
        self.scheduler = scheduler::Scheduler::start(&app.config, &app.config_path, self.waker.clone());
        self.app = app;
    }

    fn running(&self) -> bool {
        self.overview.any_running() || self.snapshots.restoring() || self.maintenance.running()
    }

    fn show(&mut self, ctx: &egui::Context, seen: &mut Seen) {
        self.overview.poll();
        self.snapshots.poll();
        self.maintenance.poll();
        self.settings.poll();
        self.lists.poll();
        self.watch();
        for repo in self.scheduler.poll() {
            // The daemon's cycle, shown as "Back up now" is, with progress and Cancel (nothing if one runs).
            self.overview.run_scheduled(repo);
        }
        self.overview.set_app_next_runs(&self.scheduler.runner);
        egui::SidePanel::left("screens").resizable(false).exact_width(130.0).show(ctx, |ui| {
            ui.add_space(8.0);
            let screens = [
                (Screen::Overview, "Overview"),
                (Screen::Snapshots, "Snapshots"),
                (Screen::Maintenance, "Maintenance"),
                (Screen::Settings, "Settings"),
            ];
            for (screen, name) in screens {
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
                ui::overview::show(ui, &mut self.overview, seen);
            }
            Screen::Snapshots => {
                seen.screen = "snapshots";
                ui::snapshots::show(ui, &mut self.snapshots, seen);
            }
            Screen::Maintenance => {
                seen.screen = "maintenance";
                ui::maintenance::show(ui, &mut self.maintenance, seen);
            }
            Screen::Settings => {
                seen.screen = "settings";
                ui::settings::show(
                    ui,
                    &mut self.settings,
                    &mut self.lists,
                    &self.schedule,
                    &self.scheduler.runner,
                    seen,
                    &self.waker,
                );
            }
        });
    }
}

struct Window {
    tray: desktop::Tray,
    first_run: Option<FirstRun>,
    screens: Option<Screens>,
    broken: Option<String>,
    waker: Waker,
    probe: probe::Probe,
}

impl Window {
    fn new(start: Start, waker: Waker) -> Self {
        let (first_run, screens, broken) = match start {
            Start::Configured(app) => (None, Some(Screens::new(*app, waker.clone())), None),
            Start::FirstRun(path) => (Some(FirstRun::new(path, waker.clone())), None, None),
            Start::Broken(message) => (None, None, Some(message)),
        };
        Window {
            tray: desktop::Tray::start(waker.clone()),
            first_run,
            screens,
            broken,
            waker,
            probe: probe::Probe::from_env(),
        }
    }
}

impl eframe::App for Window {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let running = self.screens.as_ref().is_some_and(Screens::running);
        let started = self.probe.frame_start(running);
        let mut seen = Seen::new(ctx.pixels_per_point());
        for ask in self.tray.poll() {
            match ask {
                desktop::TrayAsk::BackUpAll => {
                    if let Some(s) = self.screens.as_mut() {
                        for repo in 0..s.overview.rows.len() {
                            s.overview.back_up_now(repo);
                        }
                    }
                }
                desktop::TrayAsk::Show => {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                }
                desktop::TrayAsk::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            }
        }
        if let Some(app) = self.first_run.as_mut().and_then(FirstRun::poll) {
            self.first_run = None;
            self.screens = Some(Screens::new(app, self.waker.clone()));
        }
        if let Some(f) = self.first_run.as_mut() {
            seen.screen = "first-run";
            egui::CentralPanel::default().show(ctx, |ui| ui::first_run::show(ui, f, &mut seen));
        } else if let Some(s) = self.screens.as_mut() {
            s.show(ctx, &mut seen);
        } else if let Some(message) = &self.broken {
            seen.screen = "broken-config";
            egui::CentralPanel::default().show(ctx, |ui| {
                ui.heading("The configuration cannot be read");
                ui.add_space(8.0);
                ui.colored_label(ui.visuals().error_fg_color, message);
                ui.add_space(8.0);
                ui.label(
                    "Open the file in a text editor and correct the place named above (file:line:column), \
                     or move the file away to create a new configuration here; then start vger again.",
                );
            });
            seen.line(message.clone());
        }
        if self.probe.continuous && running {
            ctx.request_repaint();
        }
        self.probe.frame_end(started, &seen);
    }
}
