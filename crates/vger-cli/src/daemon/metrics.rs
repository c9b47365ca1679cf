//! `/metrics` in the Prometheus text format (version 0.0.4), per repository
//! and per repository and source.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::status::{DaemonStatus, RepoStatus, SourceStatus};

struct Family<T: ?Sized> {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&T) -> Option<f64>,
}

pub fn render(status: &DaemonStatus) -> String {
    let mut out = String::new();
    single(
        &mut out,
        "vger_daemon_start_time_seconds",
        "gauge",
        "When the daemon started (Unix time).",
        seconds(&status.started_at),
    );
    single(
        &mut out,
        "vger_daemon_reloads_total",
        "counter",
        "Configuration reloads (SIGHUP) applied.",
        status.reloads as f64,
    );
    single(
        &mut out,
        "vger_daemon_running",
        "gauge",
        "1 while a repository's cycle is running.",
        if status.running.is_some() { 1.0 } else { 0.0 },
    );

    let repo_families: [Family<RepoStatus>; 9] = [
        Family {
            name: "vger_repository_last_run_timestamp_seconds",
            kind: "gauge",
            help: "When the last cycle ended (Unix time).",
            value: |r| r.last_run.as_ref().map(|l| seconds(&l.finished_at)),
        },
        Family {
            name: "vger_repository_last_success_timestamp_seconds",
            kind: "gauge",
            help: "When a backup last succeeded (Unix time).",
            value: |r| {
                r.last_success.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| {
                    let t: DateTime<Utc> = t.into();
                    seconds(&t)
                })
            },
        },
        Family {
            name: "vger_repository_last_duration_seconds",
            kind: "gauge",
            help: "How long the last cycle took.",
            value: |r| r.last_run.as_ref().map(|l| l.duration_seconds),
        },
        Family {
            name: "vger_repository_last_success",
            kind: "gauge",
            help: "1 if the last cycle succeeded (ok or partial), 0 if it failed.",
            value: |r| r.last_run.as_ref().map(|l| if l.outcome == "failed" { 0.0 } else { 1.0 }),
        },
        Family {
            name: "vger_repository_consecutive_failures",
            kind: "gauge",
            help: "Failed backups in a row.",
            value: |r| Some(r.consecutive_failures as f64),
        },
        Family {
            name: "vger_repository_next_run_timestamp_seconds",
            kind: "gauge",
            help: "When the next cycle is due (Unix time).",
            value: |r| r.next_run.as_ref().map(seconds),
        },
        Family {
            name: "vger_repository_cycles_total",
            kind: "counter",
            help: "Cycles run by this daemon.",
            value: |r| Some(r.cycles as f64),
        },
        Family {
            name: "vger_repository_failed_cycles_total",
            kind: "counter",
            help: "Cycles with a failed step.",
            value: |r| Some(r.failed_cycles as f64),
        },
        Family {
            name: "vger_repository_snapshots_created_total",
            kind: "counter",
            help: "Snapshots made by this daemon.",
            value: |r| Some(r.snapshots_created as f64),
        },
    ];
    for family in &repo_families {
        header(&mut out, family.name, family.kind, family.help);
        for repo in &status.repositories {
            if let Some(v) = (family.value)(repo) {
                let _ = writeln!(out, "{}{{repository=\"{}\"}} {}", family.name, escape(&repo.label), number(v));
            }
        }
    }

    header(&mut out, "vger_repository_step_duration_seconds", "gauge", "How long each step of the last cycle took.");
    for repo in &status.repositories {
        for step in repo.last_run.iter().flat_map(|l| &l.steps) {
            let _ = writeln!(
                out,
                "vger_repository_step_duration_seconds{{repository=\"{}\",step=\"{}\",status=\"{}\"}} {}",
                escape(&repo.label),
                step.step,
                step.status,
                number(step.seconds)
            );
        }
    }

    let source_families: [Family<SourceStatus>; 6] = [
        Family {
            name: "vger_source_last_success_timestamp_seconds",
            kind: "gauge",
            help: "When the source's last snapshot was made (Unix time).",
            value: |s| s.last_success.as_ref().map(seconds),
        },
        Family {
            name: "vger_source_last_duration_seconds",
            kind: "gauge",
            help: "How long the source's last backup took.",
            value: |s| s.last_duration_seconds,
        },
        Family {
            name: "vger_source_last_added_bytes",
            kind: "gauge",
            help: "New data (before compression) the last backup added.",
            value: |s| s.last_success.map(|_| s.added_bytes as f64),
        },
        Family {
            name: "vger_source_last_files",
            kind: "gauge",
            help: "Files in the last snapshot.",
            value: |s| s.last_success.map(|_| s.files as f64),
        },
        Family {
            name: "vger_source_last_errors",
            kind: "gauge",
            help: "Files the last backup skipped (vanished or unreadable).",
            value: |s| s.last_success.map(|_| s.errors as f64),
        },
        Family {
            name: "vger_source_last_backup_failed",
            kind: "gauge",
            help: "1 if the source's last backup failed.",
            value: |s| Some(if s.last_outcome == "failed" { 1.0 } else { 0.0 }),
        },
    ];
    for family in &source_families {
        header(&mut out, family.name, family.kind, family.help);
        for repo in &status.repositories {
            for source in &repo.sources {
                if let Some(v) = (family.value)(source) {
                    let _ = writeln!(
                        out,
                        "{}{{repository=\"{}\",source=\"{}\"}} {}",
                        family.name,
                        escape(&repo.label),
                        escape(&source.label),
                        number(v)
                    );
                }
            }
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {}", number(value));
}

fn seconds(t: &DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
