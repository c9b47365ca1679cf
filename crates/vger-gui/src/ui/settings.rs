//! The Settings screen: the schedule (with the daemon's state), retention
//! and compression, saved into `vger.yaml` in place.

use eframe::egui;

use crate::model::Waker;
use crate::probe::Seen;
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
pub fn show(ui: &mut egui::Ui, s: &mut Settings, info: &ScheduleInfo, seen: &mut Seen, waker: &Waker) {
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
            None => "Scheduled backups are not running now: they are made by vger's background service \
                     (vger daemon), which is not started for this configuration. Until it is, back up with \
                     \"Back up now\" on the Overview."
                .to_string(),
        };
        let r = ui.label(&text);
        if info.daemon.is_none() {
            r.on_hover_text("To start it (once, in a terminal): systemctl --user enable --now vger-daemon");
        }
        seen.line(text);
        for (label, last, next) in &info.runs {
            // A stopped daemon's next run would not happen: not shown.
            let next = next.as_ref().filter(|_| info.daemon.is_some());
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
        match &s.message {
            Some(Ok(m)) => {
                ui.colored_label(egui::Color32::from_rgb(110, 190, 110), m);
                seen.line(m.clone());
            }
            Some(Err(m)) => {
                ui.colored_label(ui.visuals().error_fg_color, m);
                seen.line(m.clone());
            }
            None => {}
        }
    });
}
