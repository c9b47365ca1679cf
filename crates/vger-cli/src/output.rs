//! Human-readable sizes and times, JSON documents and printing.

use anyhow::Result;
use serde::Serialize;
use vger_app::backup::SnapshotMade;

pub use vger_app::text::{bytes, short_time};

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A committed snapshot as `vger --json backup` prints it (and the daemon
/// and notifications report it).
pub fn snapshot_made_json(made: &SnapshotMade) -> serde_json::Value {
    let report = &made.report;
    serde_json::json!({
        "repository": made.repository,
        "source_label": made.source_label,
        "id": report.snapshot_id.to_hex(),
        "short_id": vger_engine::snapshots::short_id(&report.snapshot_id),
        "time": report.snapshot.time,
        "end_time": report.snapshot.end_time,
        "stats": report.snapshot.stats,
        "read_bytes": report.read_bytes,
        "resumed_files": report.resumed_files,
        "resumed_bytes": report.resumed_bytes,
        "warnings": report.warnings,
    })
}

/// While alive, standard output goes to standard error, so that a command
/// whose result is one JSON document on stdout can run steps that print.
pub struct StdoutToStderr {
    saved: i32,
}

impl StdoutToStderr {
    pub fn start() -> Option<Self> {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: dup/dup2 on the process's own standard descriptors.
        let saved = unsafe { libc::dup(1) };
        if saved < 0 || unsafe { libc::dup2(2, 1) } < 0 {
            return None;
        }
        Some(Self { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: restores the descriptor saved in `start`.
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
    }
}
