//! The Snapshots screen: the list with its filter, the chosen snapshot's
//! tree with checkboxes, and "Restore to…" at the bottom.

use eframe::egui;

use crate::browse::{ItemKind, Line};
use crate::explore::{self, Details, Preview};
use crate::model::{count, human_bytes, progress_line};
use crate::probe::Seen;
use crate::restore::RestoreState;
use crate::snapshots::{ListState, Snapshots};

fn local_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "—".into())
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

pub fn show(ui: &mut egui::Ui, s: &mut Snapshots, seen: &mut Seen) {
    egui::TopBottomPanel::bottom("restore").resizable(false).show_inside(ui, |ui| {
        ui.add_space(4.0);
        restore_form(ui, s, seen);
        ui.add_space(4.0);
    });
    ui.horizontal(|ui| {
        ui.heading("Snapshots");
        if let Some(i) = super::repository_picker(ui, "repository", &s.repository_labels(), s.repo, "in repository") {
            s.show_repository(i);
        }
        let reload = ui.add_enabled(!s.restoring(), egui::Button::new("Reload"));
        seen.control("Reload", &reload);
        if reload.clicked() {
            s.show_repository(s.repo);
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Filter:");
        let field = ui
            .add(egui::TextEdit::singleline(&mut s.filter).hint_text("source, host or tag").desired_width(200.0))
            .labelled_by(label.id);
        seen.text_field("Filter", &field, &s.filter);
        ui.add_space(16.0);
        let label = ui.label("Search all snapshots:");
        let field = ui
            .add(egui::TextEdit::singleline(&mut s.query).hint_text("a name, or *.pdf").desired_width(180.0))
            .labelled_by(label.id);
        seen.text_field("Search all snapshots", &field, &s.query);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let b = ui.add_enabled(s.list == ListState::Loaded, egui::Button::new("Search"));
        seen.control("Search", &b);
        if b.clicked() || entered {
            s.search();
        }
    });
    if s.details != Details::None {
        egui::SidePanel::right("details").resizable(true).default_width(360.0).show_inside(ui, |ui| {
            details(ui, s, seen);
        });
    }
    ui.add_space(4.0);
    snapshot_list(ui, s, seen);
    ui.separator();
    tree(ui, s, seen);
}

fn snapshot_list(ui: &mut egui::Ui, s: &mut Snapshots, seen: &mut Seen) {
    match &s.list {
        ListState::Loading => {
            ui.label("Reading snapshots…");
            seen.line("Reading snapshots…");
            return;
        }
        ListState::Failed(e) => {
            let text = format!("Cannot open the repository: {e}");
            ui.colored_label(ui.visuals().error_fg_color, &text);
            seen.line(text);
            return;
        }
        ListState::Loaded => {}
    }
    let visible: Vec<usize> = s.visible().into_iter().map(|(i, _)| i).collect();
    let summary = if visible.len() == s.rows.len() {
        count(s.rows.len() as u64, "snapshot")
    } else {
        format!("{} of {} shown", visible.len(), count(s.rows.len() as u64, "snapshot"))
    };
    ui.label(&summary);
    seen.line(summary);
    let mut choose = None;
    let mut compare = None;
    egui::ScrollArea::both().id_salt("list").max_height(140.0).auto_shrink([false, true]).show(ui, |ui| {
        egui::Grid::new("snapshots").striped(true).num_columns(7).spacing([16.0, 4.0]).show(ui, |ui| {
            // The Compare buttons compare a row with the snapshot whose files are shown.
            let shown = s.chosen.and_then(|c| s.rows.get(c)).map(|r| format!("Compare with {}", r.short_id));
            for h in ["Time", "Source", "Host", "Files", "Size", "ID", shown.as_deref().unwrap_or_default()] {
                ui.strong(h);
            }
            ui.end_row();
            for i in visible {
                let Some(r) = s.rows.get(i) else { continue };
                let time = local_time(r.time);
                let picked = ui.selectable_label(s.chosen == Some(i), &time);
                if picked.clicked() {
                    choose = Some(i);
                }
                seen.control(format!("snapshot:{}", r.short_id), &picked);
                let tags = if r.tags.is_empty() { String::new() } else { format!(" [{}]", r.tags.join(", ")) };
                ui.label(format!("{}{tags}", r.source));
                ui.label(&r.host);
                ui.label(r.files.to_string());
                ui.label(human_bytes(r.bytes));
                ui.monospace(&r.short_id);
                match s.chosen {
                    Some(c) if c != i => {
                        let b = ui.small_button("Compare").on_hover_text(
                            "What changed between this snapshot and the one whose files are shown below",
                        );
                        seen.control(format!("compare:{}", r.short_id), &b);
                        if b.clicked() {
                            compare = Some(i);
                        }
                    }
                    _ => {
                        ui.label("");
                    }
                }
                ui.end_row();
                seen.line(format!("{time} {}{tags} {} {} files {}", r.source, r.host, r.files, human_bytes(r.bytes)));
            }
        });
    });
    if let Some(i) = choose {
        s.choose(i);
    }
    if let Some(i) = compare {
        s.compare(i);
    }
}

fn tree(ui: &mut egui::Ui, s: &mut Snapshots, seen: &mut Seen) {
    let (Some(row), Some(browser)) = (s.chosen.and_then(|i| s.rows.get(i)), s.browser.as_ref()) else {
        ui.label("Choose a snapshot above to see its files.");
        return;
    };
    let title = format!("Files of {} ({}) — tick what to restore", row.short_id, local_time(row.time));
    ui.strong(&title);
    seen.line(title);
    let mut open = None;
    let mut tick = None;
    let mut more = None;
    let mut preview = None;
    let mut versions = None;
    egui::ScrollArea::both().id_salt("tree").auto_shrink([false, false]).show(ui, |ui| {
        egui::Grid::new("tree").striped(true).num_columns(4).spacing([16.0, 2.0]).min_col_width(60.0).show(ui, |ui| {
            ui.strong("Name");
            ui.strong("Size");
            ui.strong("Modified");
            ui.label("");
            ui.end_row();
            for line in browser.lines() {
                match line {
                    Line::Entry { depth, item, expanded, selected, implied } => {
                        let path = lossy(&item.path);
                        ui.horizontal(|ui| {
                            ui.add_space(depth as f32 * 18.0);
                            if item.kind == ItemKind::Dir {
                                let arrow = if expanded { "⏷" } else { "⏵" };
                                let b = ui.add(egui::Button::new(arrow).frame(false).small());
                                let b = b.on_hover_text(if expanded { "Close folder" } else { "Open folder" });
                                seen.control(format!("open:{path}"), &b);
                                if b.clicked() {
                                    open = Some(item.path.clone());
                                }
                            } else {
                                ui.add_space(ui.spacing().interact_size.y.max(14.0));
                            }
                            let mut checked = selected || implied;
                            let name = match item.kind {
                                ItemKind::Dir => format!("🗀 {}", item.name),
                                ItemKind::Symlink => format!("{} →", item.name),
                                _ => item.name.clone(),
                            };
                            let c = ui.add_enabled(!implied, egui::Checkbox::new(&mut checked, name));
                            seen.control(format!("select:{path}"), &c);
                            if c.clicked() {
                                tick = Some(item.path.clone());
                            }
                        });
                        let size = match item.kind {
                            ItemKind::Dir => "folder".to_string(),
                            _ => human_bytes(item.size),
                        };
                        ui.label(&size);
                        let mtime = local_time(item.mtime);
                        ui.label(&mtime);
                        ui.horizontal(|ui| {
                            if item.kind == ItemKind::File {
                                let b = ui.small_button("Preview");
                                seen.control(format!("preview:{path}"), &b);
                                if b.clicked() {
                                    preview = Some(item.path.clone());
                                }
                            }
                            if item.kind != ItemKind::Dir {
                                let b = ui.small_button("Versions").on_hover_text("This path in every snapshot");
                                seen.control(format!("versions:{path}"), &b);
                                if b.clicked() {
                                    versions = Some(item.path.clone());
                                }
                            }
                        });
                        ui.end_row();
                        let mark = if selected || implied { "[x]" } else { "[ ]" };
                        seen.line(format!("{}{mark} {} | {size} | {mtime}", "  ".repeat(depth), item.name));
                    }
                    Line::Note { depth, text } => {
                        ui.horizontal(|ui| {
                            ui.add_space(depth as f32 * 18.0 + 20.0);
                            ui.weak(&text);
                        });
                        ui.end_row();
                        seen.line(format!("{}{text}", "  ".repeat(depth)));
                    }
                    Line::More { depth, dir } => {
                        ui.horizontal(|ui| {
                            ui.add_space(depth as f32 * 18.0 + 20.0);
                            let b = ui.button("Show more…");
                            seen.control(format!("more:{}", lossy(dir)), &b);
                            if b.clicked() {
                                more = Some(dir.to_vec());
                            }
                        });
                        ui.end_row();
                    }
                }
            }
        });
    });
    if let Some(p) = open {
        s.toggle_open(&p);
    }
    if let Some(p) = tick {
        if let Some(b) = s.browser.as_mut() {
            b.toggle_selected(&p);
        }
    }
    if let Some(p) = more {
        s.more(&p);
    }
    if let Some(p) = preview {
        s.preview(&p);
    }
    if let Some(p) = versions {
        s.versions(&p);
    }
}

/// A version's line: time, snapshot, what happened, size.
fn version_line(v: &explore::VersionRow) -> String {
    let size = if v.change == vger_engine::find::FindChange::Removed { String::new() } else { human_bytes(v.size) };
    format!("{}  {}  {}  {size}", local_time(v.time), v.short_id, explore::find_change_name(v.change))
}

/// The versions of one path, each with a button that browses its snapshot.
fn version_rows(
    ui: &mut egui::Ui,
    path: &str,
    versions: &[explore::VersionRow],
    seen: &mut Seen,
    show: &mut Option<usize>,
) {
    for v in versions {
        ui.horizontal(|ui| {
            let text = version_line(v);
            if v.change != vger_engine::find::FindChange::Removed {
                let b = ui.small_button("Show").on_hover_text("Browse this snapshot");
                seen.control(format!("show:{path}@{}", v.short_id), &b);
                if b.clicked() {
                    *show = Some(v.row);
                }
            }
            ui.monospace(&text);
            seen.line(format!("  {text}"));
        });
    }
}

/// The panel beside the tree: search results, versions, a comparison or a preview.
fn details(ui: &mut egui::Ui, s: &mut Snapshots, seen: &mut Seen) {
    let mut show = None;
    let mut close = false;
    ui.horizontal(|ui| {
        let title = match &s.details {
            Details::Found { .. } | Details::Working(_) => "Search",
            Details::Versions { .. } => "Versions",
            Details::Diff { .. } => "Changes",
            Details::Preview { .. } => "Preview",
            _ => "",
        };
        ui.strong(title);
        let b = ui.small_button("Close");
        seen.control("Close details", &b);
        close = b.clicked();
    });
    ui.separator();
    egui::ScrollArea::both().id_salt("details").auto_shrink([false, false]).show(ui, |ui| match &s.details {
        Details::None => {}
        Details::Working(what) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(what);
            });
            seen.line(what.clone());
        }
        Details::Failed(e) => {
            ui.colored_label(ui.visuals().error_fg_color, e);
            seen.line(e.clone());
        }
        Details::Found { query, searched, results, more } => {
            let head = match results.len() {
                0 => format!("No name matches “{query}” in {}.", count(*searched as u64, "snapshot")),
                n => format!(
                    "{} matching “{query}” in {}{}",
                    count(n as u64, "path"),
                    count(*searched as u64, "snapshot"),
                    if *more { " (the first shown)" } else { "" }
                ),
            };
            ui.label(&head);
            seen.line(head);
            for r in results {
                let path = lossy(&r.path);
                ui.add_space(4.0);
                ui.strong(&path);
                seen.line(path.clone());
                version_rows(ui, &path, &r.versions, seen, &mut show);
            }
        }
        Details::Versions { path, versions } => {
            let path = lossy(path);
            let head = format!("{path}: in {}", count(versions.iter().filter(|v| v.change != vger_engine::find::FindChange::Removed).count() as u64, "snapshot"));
            ui.label(&head);
            seen.line(head);
            version_rows(ui, &path, versions, seen, &mut show);
        }
        Details::Diff { older, newer, rows, summary, more } => {
            let head = format!(
                "From {older} to {newer}: {} added, {} removed, {} modified, {} metadata only, {} changed type; +{} −{}",
                summary.added,
                summary.removed,
                summary.modified,
                summary.metadata,
                summary.r#type,
                human_bytes(summary.added_bytes),
                human_bytes(summary.removed_bytes)
            );
            ui.label(&head);
            seen.line(head);
            if rows.is_empty() {
                ui.label("No differences.");
                seen.line("No differences.");
            }
            for r in rows {
                let (mark, word) = explore::change_mark(r.change);
                let size = match (r.size_before, r.size_after) {
                    (Some(a), Some(b)) if a != b => format!("  {} → {}", human_bytes(a), human_bytes(b)),
                    (_, Some(b)) => format!("  {}", human_bytes(b)),
                    (Some(a), None) => format!("  {}", human_bytes(a)),
                    _ => String::new(),
                };
                let text = format!("{mark} {}{size}", lossy(&r.path));
                ui.monospace(&text).on_hover_text(word);
                seen.line(text);
            }
            if *more {
                ui.weak("… more changes not listed");
            }
        }
        Details::Preview { path, short_id, preview } => {
            let head = format!("{} in {short_id}", lossy(path));
            ui.label(&head);
            seen.line(head);
            match preview {
                Preview::Text { text, cut } => {
                    let mut shown = text.as_str();
                    ui.add(egui::TextEdit::multiline(&mut shown).code_editor().desired_width(f32::INFINITY));
                    seen.line(format!("text: {}", text.lines().next().unwrap_or_default()));
                    if *cut {
                        let note = format!("(the first {} only)", human_bytes(text.len() as u64));
                        ui.weak(&note);
                        seen.line(note);
                    }
                }
                Preview::Image { width, height, rgba } => {
                    // One texture, that of the preview shown: replacing it
                    // frees the one before (one per file kept them all).
                    let slot = egui::Id::new("preview-texture");
                    let key = egui::Id::new((path, short_id.as_str()));
                    let kept = ui.ctx().data(|d| d.get_temp::<(egui::Id, egui::TextureHandle)>(slot));
                    let texture = match kept {
                        Some((k, t)) if k == key => t,
                        _ => {
                            let size = [*width as usize, *height as usize];
                            let image = egui::ColorImage::from_rgba_unmultiplied(size, rgba);
                            let t = ui.ctx().load_texture("preview", image, egui::TextureOptions::LINEAR);
                            ui.ctx().data_mut(|d| d.insert_temp(slot, (key, t.clone())));
                            t
                        }
                    };
                    let note = format!("image, {width}×{height} pixels");
                    ui.label(&note);
                    seen.line(note);
                    let size = texture.size_vec2();
                    let scale = (ui.available_width() / size.x).min(1.0);
                    ui.image((texture.id(), size * scale));
                }
                Preview::Binary { size, why } => {
                    let note = format!("No preview: {why} ({})", human_bytes(*size));
                    ui.label(&note);
                    seen.line(note);
                }
            }
        }
    });
    if close {
        s.close_details();
    }
    if let Some(row) = show {
        s.choose(row);
    }
}

fn restore_form(ui: &mut egui::Ui, s: &mut Snapshots, seen: &mut Seen) {
    if s.browser.is_none() {
        return;
    }
    let error = ui.visuals().error_fg_color;
    let warn = ui.visuals().warn_fg_color;
    match s.restore.clone() {
        RestoreState::Confirm { dest, existing } => {
            let what = match existing.len() {
                1 => "1 ticked item is".to_string(),
                n => format!("{n} ticked items are"),
            };
            let text = format!(
                "{what} already in {}. Replace them with the snapshot's copies (what is there now is lost), \
                 or keep them and restore only what is missing?",
                dest.display()
            );
            ui.add(egui::Label::new(egui::RichText::new(&text).color(warn)).wrap());
            seen.line(text);
            for e in existing.iter().take(4) {
                ui.monospace(e);
            }
            if existing.len() > 4 {
                ui.label(format!("… and {} more", existing.len() - 4));
            }
            ui.horizontal(|ui| {
                let replace = ui.button("Replace them");
                seen.control("Replace them", &replace);
                let keep = ui.button("Keep them, restore the rest");
                seen.control("Keep existing files", &keep);
                let back = ui.button("Cancel");
                seen.control("Back", &back);
                if replace.clicked() {
                    s.confirm(Some(true));
                } else if keep.clicked() {
                    s.confirm(Some(false));
                } else if back.clicked() {
                    s.confirm(None);
                }
            });
            return;
        }
        RestoreState::Running { progress, cancelling } => {
            let text = match &progress {
                Some(p) => format!("Restoring: {}", progress_line(p)),
                None => "Restoring: starting…".into(),
            };
            let fraction = progress.as_ref().and_then(|p| p.total_bytes.map(|t| p.bytes as f32 / t.max(1) as f32));
            ui.add(egui::ProgressBar::new(fraction.unwrap_or(0.0)).text(&text).animate(fraction.is_none()));
            seen.line(text);
            if let Some(p) = progress.as_ref().filter(|p| !p.current.is_empty()) {
                ui.label(format!("Current file: {}", p.current));
            }
            let label = if cancelling { "Cancelling…" } else { "Cancel" };
            let b = ui.add_enabled(!cancelling, egui::Button::new(label));
            seen.control("Cancel restore", &b);
            if b.clicked() {
                s.cancel_restore();
            }
            return;
        }
        RestoreState::Done(line) => {
            ui.colored_label(egui::Color32::from_rgb(110, 190, 110), format!("✔ {line}"));
            seen.line(line);
        }
        RestoreState::Cancelled(line) => {
            ui.colored_label(warn, &line);
            seen.line(line);
        }
        RestoreState::Failed(line) => {
            ui.colored_label(error, &line);
            seen.line(line);
        }
        RestoreState::Looking => {
            let text = "Looking at what the folder already holds…";
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(text);
            });
            seen.line(text);
        }
        RestoreState::Idle => {}
    }
    let picked = s.selected().len();
    ui.horizontal(|ui| {
        let label = ui.label("Restore to:");
        let field = ui
            .add(egui::TextEdit::singleline(&mut s.target).hint_text("/full/path/of/a/folder").desired_width(380.0))
            .labelled_by(label.id);
        seen.text_field("Restore to", &field, &s.target);
        if let Some(original) = s.original_place() {
            let b = ui.button("Original place").on_hover_text(original.display().to_string());
            seen.control("Original place", &b);
            if b.clicked() {
                s.target = original.display().to_string();
            }
        }
    });
    let blocker = s.restore_blocker();
    ui.horizontal(|ui| {
        let text =
            if picked == 0 { "Restore".to_string() } else { format!("Restore {}", count(picked as u64, "item")) };
        let b = ui.add_enabled(blocker.is_none(), egui::Button::new(text));
        seen.control("Restore", &b);
        if b.clicked() {
            s.start_restore();
        }
        if let Some(why) = &blocker {
            ui.weak(why);
            seen.line(why.clone());
        }
    });
}
