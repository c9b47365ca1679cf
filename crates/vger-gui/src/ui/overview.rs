//! The Overview screen: each repository with its last snapshot, a
//! warning when it is older than expected, and "Back up now" with
//! progress and Cancel.

use eframe::egui;

use crate::model::{self, BackupState, Overview, RepoStatus};
use crate::probe::{RowSeen, Seen};

/// Adds a line of text to the row and remembers it for the test hook.
fn line(ui: &mut egui::Ui, seen: &mut RowSeen, text: String, color: Option<egui::Color32>) {
    match color {
        Some(c) => ui.colored_label(c, &text),
        None => ui.label(&text),
    };
    seen.lines.push(text);
}

pub fn show(ui: &mut egui::Ui, overview: &mut Overview, frame_seen: &mut Seen) {
    ui.heading("Overview");
    ui.label(format!("Config: {}", overview.app.config_path.display()));
    if overview.any_running() {
        ui.label("A backup is running; this window stays usable.");
    }
    ui.add_space(6.0);
    let k = frame_seen.pixels_per_point;
    let mut seen_rows = Vec::with_capacity(overview.rows.len());
    {
        egui::ScrollArea::vertical().show(ui, |ui| {
            let now = chrono::Utc::now();
            let mut start = None;
            let mut cancel = None;
            for (i, row) in overview.rows.iter().enumerate() {
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
                    let next = match (row.app_next_run, row.next_run.filter(|t| *t > now)) {
                        (Some(t), _) => Some((t.max(now), "by this app, while it is open")),
                        (None, Some(t)) => Some((t, "vger daemon")),
                        (None, None) => None,
                    };
                    if let Some((next, by)) = next {
                        let when = next.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S");
                        line(ui, &mut seen, format!("Next scheduled backup ({by}): {when}"), None);
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
                            (label, response.rect, response.has_focus())
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
                            ("Back up now", response.rect, response.has_focus())
                        }
                    };
                    let (label, r, focused) = button;
                    seen.button = Some((label.to_string(), [r.min.x * k, r.min.y * k, r.width() * k, r.height() * k]));
                    seen.button_focused = focused;
                });
                seen_rows.push(seen);
            }
            if let Some(i) = start {
                overview.back_up_now(i);
            }
            if let Some(i) = cancel {
                overview.cancel(i);
            }
        });
    }
    frame_seen.rows = seen_rows;
}
