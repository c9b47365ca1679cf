//! The first-run screen: "Create a configuration".

use eframe::egui;

use crate::first_run::{CreateState, FirstRun, RepoKind, Strength, TestState};
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
        if password {
            seen.secret_field(name, &r, text);
        } else {
            seen.text_field(name, &r, text);
        }
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
    ui.horizontal(|ui| {
        for kind in RepoKind::ALL {
            let r = ui.radio(f.kind == kind, kind.name());
            seen.control(format!("kind:{}", kind.name()), &r);
            if r.clicked() && f.kind != kind {
                f.kind = kind;
                f.test = TestState::Untested;
            }
        }
    });
    let before = (f.repository.clone(), f.url.clone(), f.access_token.clone(), f.secret_access_key.clone());
    match f.kind {
        RepoKind::Local => {
            field(ui, seen, "Backup folder", &mut f.repository, "/media/usb/vger (a new or empty folder)", false);
            ui.weak("Best on another disk: a backup on the same disk is lost with it.");
        }
        kind => {
            field(ui, seen, "URL", &mut f.url, kind.url_hint(), false);
            match kind {
                RepoKind::S3 => {
                    field(ui, seen, "Region", &mut f.region, "eu-central-1 (optional)", false);
                    field(ui, seen, "Access key ID", &mut f.access_key_id, "", false);
                    field(ui, seen, "Secret access key", &mut f.secret_access_key, "", true);
                }
                RepoKind::Sftp => {
                    field(ui, seen, "Key file", &mut f.sftp_key, "~/.ssh/id_ed25519 (optional)", false);
                    field(
                        ui,
                        seen,
                        "known_hosts file",
                        &mut f.sftp_known_hosts,
                        "~/.ssh/known_hosts (optional)",
                        false,
                    );
                    ui.weak("The server's host key must be in known_hosts: connect once with ssh first.");
                }
                _ => field(ui, seen, "Access token", &mut f.access_token, "", true),
            }
            if kind != RepoKind::Sftp {
                let r =
                    ui.checkbox(&mut f.allow_http, "Allow plain HTTP (only for a server on this machine or network)");
                seen.control("Allow plain HTTP", &r);
            }
        }
    }
    if before != (f.repository.clone(), f.url.clone(), f.access_token.clone(), f.secret_access_key.clone()) {
        f.test = TestState::Untested;
    }
    ui.horizontal(|ui| {
        let ready = f.repository_problems().is_empty() && f.test != TestState::Testing;
        let b = ui.add_enabled(ready, egui::Button::new("Test connection"));
        let b = b.on_hover_text("Opens the storage with the passphrase below and says what is there.");
        seen.control("Test connection", &b);
        if b.clicked() {
            f.test_connection();
        }
        match &f.test {
            TestState::Untested => {}
            TestState::Testing => {
                ui.spinner();
                ui.label("Connecting…");
                seen.line("Connecting…");
            }
            TestState::Done(_) => {}
        }
    });
    if let TestState::Done(reach) = &f.test {
        let text = reach.message();
        let color = if reach.usable() { egui::Color32::from_rgb(90, 180, 90) } else { ui.visuals().error_fg_color };
        ui.add(egui::Label::new(egui::RichText::new(&text).color(color)).wrap());
        seen.line(text);
    }

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
        seen.text_field("Folders", &r, &f.folders);
    });
    ui.label("Leave out:");
    for choice in &mut f.excludes {
        let r = ui.checkbox(&mut choice.on, choice.label);
        seen.control(choice.label, &r);
    }
}
