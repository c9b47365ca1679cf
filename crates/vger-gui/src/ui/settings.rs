//! The Settings screen: the schedule (with the daemon's state), retention
//! and compression, saved into `vger.yaml` in place.

use eframe::egui;

use crate::lists::{lines_of, Change, Lists};
use crate::model::Waker;
use crate::probe::Seen;
use crate::scheduler::Runner;
use crate::settings::{ScheduleInfo, Settings};

fn field(ui: &mut egui::Ui, seen: &mut Seen, s: &mut Settings, label: &str) {
    let Some(f) = s.field_mut(label) else { return };
    ui.horizontal(|ui| {
        let l = ui.add_sized([170.0, 20.0], egui::Label::new(format!("{}:", f.label)));
        let r =
            ui.add(egui::TextEdit::singleline(&mut f.value).hint_text(f.hint).desired_width(220.0)).labelled_by(l.id);
        seen.text_field(f.label, &r, &f.value);
    });
}

fn when(t: &Option<String>) -> String {
    t.as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "none yet".into())
}

/// The screen; a saved file is read again by the window's watcher.
pub fn show(
    ui: &mut egui::Ui,
    s: &mut Settings,
    lists: &mut Lists,
    info: &ScheduleInfo,
    runner: &Runner,
    seen: &mut Seen,
    waker: &Waker,
) {
    ui.heading("Settings");
    let intro = format!("Saved into {}; comments and the rest of the file stay as they are.", s.path.display());
    ui.label(&intro);
    seen.line(intro);
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        ui.add_space(8.0);
        ui.strong("Schedule");
        let text = match &info.daemon {
            Some(d) => format!(
                "Scheduled backups are running: vger's background service (vger daemon, process {}) \
                 makes them, also while this window is closed.",
                d.pid
            ),
            None => match runner {
                Runner::ThisApp(_) => "Scheduled backups are made by this app while it is open (vger's \
                     background service, vger daemon, is not started for this configuration). To have them \
                     also while this window is closed, start the daemon; it then takes over."
                    .to_string(),
                Runner::Elsewhere(who) => format!("Scheduled backups are made by another program: {who}."),
                Runner::Failed(e) => format!("Scheduled backups cannot run: {e}"),
                Runner::Starting => "Reading the schedule…".to_string(),
                Runner::Nothing => "No schedule is set: type how often below (\"Back up every\" or a cron time), \
                     tick \"Scheduled backups on\" and save. Until then, back up with \"Back up now\" on the Overview."
                    .to_string(),
            },
        };
        let r = ui.label(&text);
        if info.daemon.is_none() {
            r.on_hover_text("To start it (once, in a terminal): systemctl --user enable --now vger-daemon");
        }
        seen.line(text);
        for (label, last, next) in &info.runs {
            // A stopped daemon's next run would not happen: not shown.
            let next = next.as_ref().filter(|_| info.daemon.is_some() || matches!(runner, Runner::ThisApp(_)));
            let line = match (last, next) {
                (None, None) => continue,
                (_, None) => format!("{label}: last scheduled backup {}", when(last)),
                (_, Some(_)) => format!("{label}: last scheduled backup {}, next {}", when(last), when(&next.cloned())),
            };
            ui.label(&line);
            seen.line(line);
        }
        let saving = s.saving();
        ui.add_enabled_ui(!saving, |ui| {
            let r = ui.checkbox(&mut s.schedule_enabled, "Scheduled backups on");
            seen.control("Scheduled backups on", &r);
            field(ui, seen, s, "Back up every");
            field(ui, seen, s, "Or at (cron)");
            ui.weak("Repositories with a schedule of their own keep it.");

            ui.add_space(8.0);
            ui.strong("Which snapshots to keep when old ones are deleted (Maintenance, Prune)");
            for label in
                ["Keep the last", "Keep hourly", "Keep daily", "Keep weekly", "Keep monthly", "Keep everything within"]
            {
                field(ui, seen, s, label);
            }
            ui.weak("Leave a rule empty to not use it. With every rule empty, all snapshots are kept.");

            ui.add_space(8.0);
            ui.strong("Compression of new data");
            field(ui, seen, s, "Compression");
        });

        ui.add_space(12.0);
        ui.horizontal(|ui| {
            let b = ui.add_enabled(s.dirty() && !saving, egui::Button::new("Save"));
            seen.control("Save settings", &b);
            if b.clicked() {
                s.start_save(waker.clone());
            }
            if saving {
                ui.spinner();
            } else if s.dirty() {
                ui.weak("Unsaved changes");
            }
        });
        outcome(ui, seen, &s.message);
        ui.add_space(12.0);
        ui.separator();
        show_lists(ui, lists, seen, waker);
    });
}

/// Gives a button whose text is the same in every row ("Remove") an
/// accessible name that says which row it acts on.
fn named(button: &egui::Response, name: &str) {
    let enabled = button.enabled();
    button.widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Button, enabled, name));
}

/// A save's result: green when done, in the error colour when refused.
fn outcome(ui: &mut egui::Ui, seen: &mut Seen, message: &Option<Result<String, String>>) {
    let (color, text) = match message {
        Some(Ok(m)) => (egui::Color32::from_rgb(110, 190, 110), m),
        Some(Err(m)) => (ui.visuals().error_fg_color, m),
        None => return,
    };
    ui.colored_label(color, text);
    seen.line(text.clone());
}

/// A labelled field; multi-line when `rows` > 1.
fn text(ui: &mut egui::Ui, seen: &mut Seen, name: &str, value: &mut String, hint: &str, rows: usize) {
    ui.horizontal(|ui| {
        let l = ui.add_sized([170.0, 20.0], egui::Label::new(format!("{name}:")));
        let edit = if rows > 1 {
            egui::TextEdit::multiline(value).desired_rows(rows)
        } else {
            egui::TextEdit::singleline(value)
        };
        let r = ui.add(edit.hint_text(hint).desired_width(380.0)).labelled_by(l.id);
        seen.text_field(name, &r, value);
    });
}

/// Repositories and sources: each with Remove, a source's folders and
/// excludes editable, and a form to add one of each.
fn show_lists(ui: &mut egui::Ui, lists: &mut Lists, seen: &mut Seen, waker: &Waker) {
    let busy = lists.saving();
    let mut change = None;
    ui.add_enabled_ui(!busy, |ui| {
        ui.strong("Repositories (where backups go)");
        let last = lists.repositories.len() == 1;
        for (i, (label, url)) in lists.repositories.iter().enumerate() {
            ui.horizontal(|ui| {
                let line = format!("{label}: {url}");
                ui.label(&line);
                seen.line(line);
                let b = ui.add_enabled(!last, egui::Button::new("Remove"));
                let b = b.on_hover_text("Removes it from the configuration; the backups stay where they are.");
                named(&b, &format!("Remove repository {label}"));
                seen.control(format!("remove repository:{label}"), &b);
                if b.clicked() {
                    change = Some(Change::RemoveRepository(i));
                }
            });
        }
        let (label, url) = &mut lists.new_repository;
        text(ui, seen, "New repository label", label, "usb (optional)", 1);
        text(ui, seen, "New repository URL", url, "/media/usb/vger, s3://…, sftp://…, https://…", 1);
        let b = ui.button("Add repository");
        seen.control("Add repository", &b);
        if b.clicked() {
            change = Some(Change::AddRepository { label: label.clone(), url: url.clone() });
        }
        ui.weak("A new repository is created with `vger init` (or the first run) before it takes backups.");

        ui.add_space(10.0);
        ui.strong("Sources (what is backed up)");
        for i in 0..lists.sources.len() {
            let dirty = lists.source_dirty(i);
            let src = &mut lists.sources[i];
            ui.group(|ui| {
                let title = format!("Source {}", src.label);
                ui.label(egui::RichText::new(&title).strong());
                seen.line(title);
                let label = src.label.clone();
                text(ui, seen, &format!("Folders of {label}"), &mut src.paths, "one full path per line", 2);
                text(ui, seen, &format!("Excludes of {label}"), &mut src.excludes, "*.tmp, cache/ (one per line)", 2);
                ui.horizontal(|ui| {
                    let save = ui.add_enabled(dirty, egui::Button::new("Save source"));
                    named(&save, &format!("Save source {label}"));
                    seen.control(format!("save source:{label}"), &save);
                    if save.clicked() {
                        change = Some(Change::EditSource {
                            index: i,
                            paths: lines_of(&src.paths),
                            excludes: lines_of(&src.excludes),
                        });
                    }
                    let remove = ui.button("Remove source");
                    named(&remove, &format!("Remove source {label}"));
                    seen.control(format!("remove source:{label}"), &remove);
                    if remove.clicked() {
                        change = Some(Change::RemoveSource(i));
                    }
                });
            });
        }
        let (label, paths, excludes) = &mut lists.new_source;
        text(ui, seen, "New source label", label, "photos (optional)", 1);
        text(ui, seen, "New source folders", paths, "one full path per line", 2);
        text(ui, seen, "New source excludes", excludes, "one pattern per line (optional)", 2);
        let b = ui.button("Add source");
        seen.control("Add source", &b);
        if b.clicked() {
            change =
                Some(Change::AddSource { label: label.clone(), paths: lines_of(paths), excludes: lines_of(excludes) });
        }
    });
    if busy {
        ui.spinner();
    }
    outcome(ui, seen, &lists.message);
    if let Some(change) = change {
        lists.start(change, waker.clone());
    }
}
