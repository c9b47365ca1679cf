//! The screens, drawn with egui over the view models; each remembers what
//! it drew in the frame's [`crate::probe::Seen`] for the tests.

pub mod first_run;
pub mod maintenance;
pub mod overview;
pub mod settings;
pub mod snapshots;

/// The repository choice beside a screen's title: a drop-down when the
/// config has several, the name otherwise. Returns the one picked.
pub fn repository_picker(
    ui: &mut eframe::egui::Ui,
    id: &str,
    labels: &[String],
    current: usize,
    one: &str,
) -> Option<usize> {
    let mut pick = None;
    if labels.len() > 1 {
        let shown = labels.get(current).cloned().unwrap_or_default();
        eframe::egui::ComboBox::from_id_salt(id).selected_text(shown).show_ui(ui, |ui| {
            for (i, l) in labels.iter().enumerate() {
                if ui.selectable_label(i == current, l).clicked() {
                    pick = Some(i);
                }
            }
        });
    } else if let Some(l) = labels.first() {
        ui.label(format!("{one} {l}"));
    }
    pick
}
