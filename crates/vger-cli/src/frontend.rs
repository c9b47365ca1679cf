//! The CLI as a front end of the application layer: draws progress on a
//! terminal (stderr) or, with `--json --progress`, writes it as JSON
//! lines; prints warnings and each result as it happens (text, or JSON
//! with `--json`); words errors the CLI's way ([`crate::wording`]); and
//! applies the process-wide `limits` when a backup starts.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vger_app::backup::SnapshotMade;
use vger_app::cycle::StepStatus;
use vger_app::events::{Event, FrontEnd, ProgressReport};
use vger_app::AppError;
use vger_engine::check::CheckReport;
use vger_engine::compact::CompactReport;
use vger_engine::prune::PruneReport;
use vger_engine::snapshots::short_id;

use crate::output::{bytes, print_json, short_time};
use crate::wording;

/// Set by `--json --progress`: progress is written as JSON lines on stderr.
pub static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// How often a bar is redrawn.
const BAR_INTERVAL: Duration = Duration::from_millis(100);
/// How often a JSON progress line is written.
const JSON_LINE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Printer {
    /// Results as JSON documents instead of text.
    json: bool,
    /// No progress bars.
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
    last_json_line: Mutex<Option<Instant>>,
}

impl Printer {
    pub fn new(json: bool, quiet: bool) -> Self {
        Printer { json, quiet, bar: Mutex::new(None), last_json_line: Mutex::new(None) }
    }

    fn json_lines() -> bool {
        JSON_LINES.load(Ordering::Relaxed)
    }

    fn draws_bars(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// Whether progress reaches anyone (a bar on a terminal or JSON
    /// lines); when not, work done only for progress can be skipped.
    pub fn shows_progress(&self) -> bool {
        Self::json_lines() || self.draws_bars()
    }

    fn progress(&self, r: &ProgressReport) {
        if Self::json_lines() {
            self.json_line(r);
        } else if self.draws_bars() {
            self.draw(r);
        }
    }

    fn json_line(&self, r: &ProgressReport) {
        let mut last = self.last_json_line.lock().unwrap_or_else(|p| p.into_inner());
        if !r.done && last.is_some_and(|t| t.elapsed() < JSON_LINE_INTERVAL) {
            return;
        }
        *last = if r.done { None } else { Some(Instant::now()) };
        let line = serde_json::json!({
            "type": "progress",
            "command": r.operation,
            "repository": r.repository,
            "source": r.source,
            "done": r.done,
            "files": r.files,
            "bytes": r.bytes,
            "new_bytes": r.new_bytes,
            "total_files": r.total_files,
            "total_bytes": r.total_bytes,
            "totals_estimated": r.totals_estimated,
            "bytes_per_sec": r.bytes_per_sec.round(),
            "eta_seconds": r.eta_seconds.map(f64::ceil),
            "elapsed_seconds": (r.elapsed_seconds * 10.0).round() / 10.0,
            "errors": r.errors,
            "current": r.current,
        });
        eprintln!("{line}");
    }

    fn draw(&self, r: &ProgressReport) {
        let mut slot = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        if r.done {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
            return;
        }
        let bar = slot.get_or_insert_with(|| new_bar(r));
        if let Some(total) = r.total_bytes {
            // A backup learns its total while it runs: the spinner becomes a bar.
            if bar.length().is_none() {
                bar.set_style(style(BAR_WITH_TOTAL));
            }
            // An estimate can fall short (the source grew since the parent snapshot).
            bar.set_length(total.max(r.bytes));
        }
        bar.set_position(r.bytes);
        bar.set_message(bar_message(r));
    }

    fn snapshot(&self, made: &SnapshotMade) {
        let report = &made.report;
        for w in &report.warnings {
            eprintln!("vger: warning: {w}");
        }
        if self.json {
            return;
        }
        let s = &report.snapshot.stats;
        println!(
            "snapshot {} of `{}`: {} files, {} dirs, {} read, {} new ({} stored){}",
            short_id(&report.snapshot_id),
            made.source_label,
            s.files,
            s.dirs,
            bytes(s.bytes),
            bytes(s.added_bytes),
            bytes(s.added_stored),
            if s.errors > 0 { format!(", {} skipped", s.errors) } else { String::new() }
        );
    }

    fn pruned(&self, report: &PruneReport) {
        for w in &report.time_disagreements {
            eprintln!("vger: warning: {w}");
        }
        warn_of_flood(report);
        if self.json {
            print_or_warn(report);
            return;
        }
        for d in &report.decisions {
            let verdict = if d.keep { format!("keep   ({})", d.reasons.join(", ")) } else { "delete".to_string() };
            let short = d.id.get(..8).unwrap_or(&d.id);
            println!("{short} {} {:<16} {:<16} {verdict}", short_time(&d.time), d.source_label, d.hostname);
        }
        if report.dry_run {
            println!("dry run: {} would be deleted, {} kept", report.decisions.len() - report.kept, report.kept);
        } else if !report.refused {
            println!(
                "deleted {} snapshots, kept {}; run `vger compact` to free the space",
                report.deleted, report.kept
            );
        }
    }

    fn compacted(&self, r: &CompactReport) {
        for w in &r.warnings {
            eprintln!("vger: warning: {}", wording::notice(w));
        }
        if self.json {
            print_or_warn(&serde_json::json!({ "report": wording::compact_json(r), "bytes_freed": r.bytes_freed() }));
            return;
        }
        let verb = if r.dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {}: {} of {} packs deleted, {} repacked into {}, {} adopted into the index{}",
            bytes(r.bytes_freed()),
            r.packs_deleted,
            r.packs_before,
            r.packs_repacked,
            r.packs_written,
            r.packs_adopted,
            if r.packs_too_young > 0 {
                format!(", {} younger than the grace period left alone", r.packs_too_young)
            } else {
                String::new()
            }
        );
        if r.temp_files_removed > 0 {
            println!("removed {} temporary files left by interrupted writers", r.temp_files_removed);
        }
    }

    fn checked(&self, r: &CheckReport, verify_data: bool, distrust_server: bool) {
        if self.json {
            print_or_warn(&wording::check_json(r));
            return;
        }
        for w in &r.warnings {
            println!("warning: {}", wording::notice(w));
        }
        for e in &r.errors {
            println!("error: {}", wording::notice(e));
        }
        println!(
            "checked {} snapshots, {} index segments, {} packs{}",
            r.snapshots_checked,
            r.segments,
            r.packs,
            if verify_data {
                format!(", verified {} chunks in {} packs", r.chunks_verified, r.packs_verified)
            } else if r.packs_verified > 0 {
                let by = if distrust_server { "here" } else { "by the server" };
                format!(", hashes of {} packs verified {by}", r.packs_verified)
            } else {
                String::new()
            }
        );
        if r.is_ok() {
            println!("no problems found");
        }
    }
}

/// The bar once the total is known; without it, a spinner.
/// The rate and time left in the message are vger-app's (over the last
/// few seconds, as in the JSON lines), not indicatif's.
const BAR_WITH_TOTAL: &str = "{prefix} [{bar:25}] {percent:>3}% {bytes}/{total_bytes} {wide_msg}";
const SPINNER: &str = "{prefix} {spinner} {bytes} {wide_msg}";

fn style(template: &str) -> ProgressStyle {
    match ProgressStyle::with_template(template) {
        Ok(style) => style.progress_chars("=> "),
        Err(_) => ProgressStyle::default_bar(),
    }
}

fn new_bar(r: &ProgressReport) -> ProgressBar {
    let bar = match r.total_bytes {
        Some(total) => ProgressBar::new(total).with_style(style(BAR_WITH_TOTAL)),
        None => ProgressBar::no_length().with_style(style(SPINNER)),
    };
    bar.set_prefix(r.operation.name());
    bar
}

/// Rate, time left, files done (of how many) and the current path,
/// shortened (`wide_msg` cuts what the terminal has no room for).
fn bar_message(r: &ProgressReport) -> String {
    let about = if r.totals_estimated { "~" } else { "" };
    let rate = format!("{}/s", bytes(r.bytes_per_sec as u64));
    let eta = r.eta_seconds.map(|s| format!(" {about}{} left", duration(s))).unwrap_or_default();
    let files = match r.total_files {
        Some(total) => format!("{}/{about}{total} files", r.files),
        None => format!("{} files", r.files),
    };
    let mut current = r.current.clone();
    if current.len() > 40 {
        let cut = current.len() - 40;
        let cut = (cut..current.len()).find(|i| current.is_char_boundary(*i)).unwrap_or(cut);
        current = format!("...{}", current.get(cut..).unwrap_or_default());
    }
    format!("{rate}{eta}, {files} {current}")
}

/// `seconds` as `1h 02m`, `3m 05s` or `42s`.
fn duration(seconds: f64) -> String {
    let s = seconds.ceil().clamp(0.0, 1e9) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

fn print_or_warn<T: serde::Serialize>(value: &T) {
    if let Err(e) = print_json(value) {
        eprintln!("vger: warning: could not print the JSON report: {e}");
    }
}

impl FrontEnd for Printer {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::BackupStarting { limits, .. } => crate::limits::apply_process_limits(limits),
            Event::Progress(r) => self.progress(r),
            Event::Notice { notice, .. } => eprintln!("vger: warning: {}", wording::notice(notice)),
            Event::SnapshotCreated(made) => self.snapshot(made),
            Event::SourceFailed { source, error, sources, .. } if *sources > 1 => {
                eprintln!("vger: error: source `{source}`: {}", self.describe(error));
            }
            Event::Pruned { report, .. } => self.pruned(report),
            Event::Compacted { report, .. } => self.compacted(report),
            Event::Checked { report, verify_data, distrust_server, .. } => {
                self.checked(report, *verify_data, *distrust_server)
            }
            Event::StepEnded { step, .. } if step.status == StepStatus::Failed => {
                eprintln!("vger: error: {}: {}", step.step, step.detail);
            }
            _ => {}
        }
    }

    fn progress_interval(&self) -> Option<Duration> {
        (Self::json_lines() || self.draws_bars()).then_some(BAR_INTERVAL)
    }

    fn describe(&self, error: &AppError) -> String {
        wording::one_line_of(error)
    }
}

/// Names the snapshots that arrived in a burst and what they would push out.
fn warn_of_flood(report: &PruneReport) {
    if report.flood.suspects.is_empty() {
        return;
    }
    eprintln!(
        "vger: warning: {} snapshots arrived in a burst, faster than backups of their source usually do:",
        report.flood.suspects.len()
    );
    for suspect in &report.flood.suspects {
        eprintln!("vger:   {}", vger_engine::prune::guard::describe(suspect));
    }
    if !report.flood.held.is_empty() {
        let held: Vec<&str> = report.flood.held.iter().map(|id| id.get(..8).unwrap_or(id)).collect();
        eprintln!(
            "vger: the rules would delete {} older snapshots only because of them: {}",
            held.len(),
            held.join(" ")
        );
    }
}
