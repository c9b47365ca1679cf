//! The Maintenance screen: Check with a data-verification percentage,
//! Prune with a preview, Compact; progress, Cancel and each result.

use eframe::egui;

use crate::maintenance::{decision_line, Maintenance, Task, TaskState};
use crate::model::{count, progress_line};
use crate::probe::Seen;

pub fn show(ui: &mut egui::Ui, m: &mut Maintenance, seen: &mut Seen) {
    ui.horizontal(|ui| {
        ui.heading("Maintenance");
        if let Some(i) =
            super::repository_picker(ui, "maintenance-repository", &m.repository_labels(), m.repo, "of repository")
        {
            m.set_repository(i);
        }
    });
    ui.add_space(8.0);
    let idle = !m.running();
    egui::Grid::new("tasks").num_columns(2).spacing([16.0, 10.0]).show(ui, |ui| {
        let check = task_row(ui, seen, idle, "Check", "Check", |ui, seen| {
            ui.label("Reads the repository's structure and tells whether every snapshot can be restored.");
            ui.horizontal(|ui| {
                let label = ui.label("Also read back and verify");
                let slider = egui::Slider::new(&mut m.verify_percent, 0..=100).suffix("% of the data");
                let s = ui.add_enabled(idle, slider).labelled_by(label.id);
                seen.control("Verify percentage", &s);
            });
        });
        if check {
            m.check();
        }
        let text = "Shows which snapshots the retention rules keep and which they delete; nothing is deleted until you confirm.";
        if task_row(ui, seen, idle, "Prune…", "Prune", |ui, _| ui.label(text)) {
            m.prune_preview();
        }
        let text = "Frees the space of data that no snapshot uses any more (after a prune).";
        if task_row(ui, seen, idle, "Compact", "Compact", |ui, _| ui.label(text)) {
            m.compact();
        }
    });
    ui.separator();
    state(ui, m, seen);
}

/// A row of the tasks' grid: its button (`name` for the tests) and what
/// `explain` draws beside it. Whether the button was clicked.
fn task_row<R>(
    ui: &mut egui::Ui,
    seen: &mut Seen,
    idle: bool,
    button: &str,
    name: &str,
    explain: impl FnOnce(&mut egui::Ui, &mut Seen) -> R,
) -> bool {
    let b = ui.add_enabled(idle, egui::Button::new(button));
    seen.control(name, &b);
    ui.vertical(|ui| explain(ui, seen));
    ui.end_row();
    b.clicked()
}

fn state(ui: &mut egui::Ui, m: &mut Maintenance, seen: &mut Seen) {
    let error = ui.visuals().error_fg_color;
    let warn = ui.visuals().warn_fg_color;
    let good = egui::Color32::from_rgb(110, 190, 110);
    match m.state.clone() {
        TaskState::Idle => {}
        TaskState::Running { task, progress, cancelling } => {
            let text = match (task, &progress) {
                (Task::Prune, _) => "Prune: reading snapshots…".to_string(),
                (_, Some(p)) => format!("{}: {}", task.name(), progress_line(p)),
                (_, None) => format!("{}: starting…", task.name()),
            };
            let fraction = progress.as_ref().and_then(|p| p.total_bytes.map(|t| p.bytes as f32 / t.max(1) as f32));
            ui.add(egui::ProgressBar::new(fraction.unwrap_or(0.0)).text(&text).animate(fraction.is_none()));
            seen.line(text);
            if task != Task::Prune {
                let label = if cancelling { "Cancelling…" } else { "Cancel" };
                let b = ui.add_enabled(!cancelling, egui::Button::new(label));
                seen.control("Cancel task", &b);
                if b.clicked() {
                    m.cancel();
                }
            }
        }
        TaskState::Preview(plan) => {
            let deletes = plan.deletes();
            let head = if !plan.has_rules {
                "No retention rules in the configuration: prune keeps every snapshot.".to_string()
            } else if deletes == 0 {
                format!("The rules keep all {}; nothing to delete.", count(plan.decisions.len() as u64, "snapshot"))
            } else {
                format!(
                    "The rules would delete {} and keep {}:",
                    count(deletes as u64, "snapshot"),
                    plan.decisions.len() - deletes
                )
            };
            if plan.changed {
                let text = "The snapshots changed since the last preview; nothing was deleted. This is the new one:";
                ui.colored_label(warn, text);
                seen.line(text);
            }
            ui.strong(&head);
            seen.line(head);
            if plan.held > 0 {
                let text = format!(
                    "{} held back: a burst of new snapshots would push them out (prune will not delete them).",
                    count(plan.held as u64, "snapshot")
                );
                ui.colored_label(warn, &text);
                seen.line(text);
            }
            egui::ScrollArea::vertical().id_salt("plan").max_height(ui.available_height() - 40.0).show(ui, |ui| {
                for d in &plan.decisions {
                    let text = decision_line(d);
                    if d.keep {
                        ui.monospace(&text);
                    } else {
                        ui.colored_label(error, egui::RichText::new(&text).monospace());
                    }
                    seen.line(text);
                }
            });
            ui.horizontal(|ui| {
                if deletes > 0 {
                    let b = ui.button(format!("Delete {}", count(deletes as u64, "snapshot")));
                    seen.control("Delete snapshots", &b);
                    if b.clicked() {
                        m.prune_confirm();
                    }
                }
                let b = ui.button(if deletes > 0 { "Keep them all" } else { "Close" });
                seen.control("Dismiss prune", &b);
                if b.clicked() {
                    m.dismiss();
                }
            });
        }
        TaskState::Done { task, lines } => {
            for (i, l) in lines.iter().enumerate() {
                let text = if i == 0 { format!("✔ {} finished. {l}", task.name()) } else { l.clone() };
                ui.colored_label(if i == 0 { good } else { warn }, &text);
                seen.line(text);
            }
        }
        TaskState::Failed { task, message, lines } => {
            let text = format!("{} failed: {message}", task.name());
            ui.colored_label(error, &text);
            seen.line(text);
            egui::ScrollArea::vertical().id_salt("problems").show(ui, |ui| {
                for l in lines {
                    ui.label(&l);
                    seen.line(l);
                }
            });
        }
        TaskState::Cancelled(task) => {
            let text =
                format!("{} cancelled; the repository is as it was or consistent where it stopped.", task.name());
            ui.colored_label(warn, &text);
            seen.line(text);
        }
    }
}
