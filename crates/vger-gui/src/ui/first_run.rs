//! The first-run screen: "Create a configuration".

use eframe::egui;

use crate::first_run::{CreateState, FirstRun, Strength};
use crate::probe::Seen;

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(10.0);
    ui.strong(title);
    ui.add_space(2.0);
}

/// A left-aligned label in a fixed-width column.
fn label(ui: &mut egui::Ui, text: &str) -> egui::Response {
    let layout = egui::Layout::left_to_right(egui::Align::Center);
    ui.allocate_ui_with_layout(egui::vec2(150.0, 20.0), layout, |ui| {
        ui.set_min_width(150.0);
        ui.label(text)
    })
    .inner
}

/// A labelled one-line field, remembered under `name`.
fn field(ui: &mut egui::Ui, seen: &mut Seen, name: &str, text: &mut String, hint: &str, password: bool) {
    ui.horizontal(|ui| {
        let label = label(ui, &format!("{name}:"));
        let edit = egui::TextEdit::singleline(text).hint_text(hint).password(password).desired_width(420.0);
        let r = ui.add(edit).labelled_by(label.id);
        seen.control(name, &r);
    });
}

pub fn show(ui: &mut egui::Ui, f: &mut FirstRun, seen: &mut Seen) {
    let busy = f.state == CreateState::Creating;
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        ui.add_enabled_ui(!busy, |ui| form(ui, f, seen));
        ui.add_space(12.0);
        let problems = f.problems();
        for p in &problems {
            ui.weak(format!("• {p}"));
            seen.line(format!("• {p}"));
        }
        ui.horizontal(|ui| {
            let create = ui.add_enabled(problems.is_empty() && !busy, egui::Button::new("Create"));
            seen.control("Create", &create);
            if create.clicked() {
                f.create();
            }
            match &f.state {
                CreateState::Creating => {
                    ui.spinner();
                    ui.label("Creating the repository…");
                    seen.line("Creating the repository…");
                }
                CreateState::Failed(e) => {
                    let text = format!("Could not create: {e}");
                    ui.colored_label(ui.visuals().error_fg_color, &text);
                    seen.line(text);
                }
                CreateState::Editing => {}
            }
        });
    });
}

fn form(ui: &mut egui::Ui, f: &mut FirstRun, seen: &mut Seen) {
    ui.heading("Create a configuration");
    let intro = format!("No vger configuration was found. This writes {}.", f.config_path.display());
    ui.label(&intro);
    seen.line(intro);

    section(ui, "1. Where the backups go");
    field(ui, seen, "Backup folder", &mut f.repository, "/media/usb/vger (a new or empty folder)", false);
    ui.weak("Best on another disk: a backup on the same disk is lost with it.");

    section(ui, "2. Passphrase");
    field(ui, seen, "Passphrase", &mut f.passphrase, "", true);
    field(ui, seen, "Passphrase again", &mut f.confirm, "", true);
    if !f.passphrase.is_empty() {
        let strength = Strength::of(&f.passphrase);
        let color = match strength {
            Strength::TooShort | Strength::Weak => ui.visuals().error_fg_color,
            Strength::Fair => ui.visuals().warn_fg_color,
            Strength::Strong => egui::Color32::from_rgb(90, 180, 90),
        };
        let text = format!("Strength: {}", strength.hint());
        ui.colored_label(color, &text);
        seen.line(text);
    }
    let warning = "⚠ The passphrase cannot be recovered: without it nobody, not even you, can read these backups. \
                   Write it down and keep it somewhere safe.";
    ui.colored_label(ui.visuals().warn_fg_color, warning);
    seen.line(warning);
    ui.weak(format!(
        "It is kept in {} (readable only by you) so that backups can run without asking.",
        f.passphrase_file().display()
    ));

    section(ui, "3. Folders to back up");
    ui.horizontal(|ui| {
        let label = label(ui, "Folders (one per line):");
        let edit = egui::TextEdit::multiline(&mut f.folders).hint_text("/home/me/Documents").desired_rows(3);
        let r = ui.add_sized([420.0, 60.0], edit).labelled_by(label.id);
        seen.control("Folders", &r);
    });
    ui.label("Leave out:");
    for choice in &mut f.excludes {
        let r = ui.checkbox(&mut choice.on, choice.label);
        seen.control(choice.label, &r);
    }
}
