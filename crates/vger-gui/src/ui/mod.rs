//! The screens, drawn with egui over the view models; each remembers what
//! it drew in the frame's [`crate::probe::Seen`] for the tests.

pub mod first_run;
pub mod overview;
pub mod snapshots;
