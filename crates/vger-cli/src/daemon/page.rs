//! The status page: one self-contained HTML document (inline CSS, no
//! scripts, no external assets) that reloads itself every 15 seconds.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::status::{DaemonStatus, RepoStatus};
use crate::output::bytes;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;flex-wrap:wrap;gap:6px 24px;align-items:baseline}
header h1{font-size:19px;margin:0 12px 0 0}header span{color:#c5cbd8}header a{color:#9ecbff}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:0 0 16px;padding:14px 18px}
h2{font-size:17px;margin:0 0 2px}h3{font-size:13px;margin:14px 0 4px;color:#596275;text-transform:uppercase;letter-spacing:.04em}
.url{color:#596275;font-family:ui-monospace,monospace;font-size:12px}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:6px 18px;margin:10px 0 0}
dt{color:#596275;font-size:12px}dd{margin:0;font-weight:500}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid #eef0f4;vertical-align:top}
th{color:#596275;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.ok{background:#d9f5e1;color:#14622c}.partial{background:#fff1cc;color:#7a5300}.failed{background:#fde0e0;color:#9b1c1c}
.skipped,.none{background:#eceff3;color:#596275}.running{background:#dbeafe;color:#1e4fa3}
.warn{background:#fde0e0;color:#9b1c1c;border-color:#f3b4b4}
.muted{color:#8a93a5}.detail{color:#596275;max-width:520px;word-break:break-word}
";

pub fn render(status: &DaemonStatus, now: DateTime<Utc>) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"15\"><link rel=\"icon\" href=\"data:,\">\
         <title>vger daemon on {host}</title><style>{STYLE}</style></head><body>\
         <header><h1>vger daemon</h1><span>host <b>{host}</b></span><span>pid {pid}</span>\
         <span>version {version}</span><span>started {started}</span><span>{state}</span>\
         <span><a href=\"/api/status.json\">status.json</a> · <a href=\"/metrics\">metrics</a>{mount}</span></header><main>",
        host = esc(&status.hostname),
        pid = status.pid,
        version = esc(status.version),
        started = when(&status.started_at, now),
        mount = match &status.mount_url {
            Some(url) => format!(" · <a href=\"{}\">browse snapshots</a>", esc(url)),
            None => String::new(),
        },
        state = match &status.running {
            Some(label) => format!("<span class=\"badge running\">running {}</span>", esc(label)),
            None => "<span class=\"badge none\">idle</span>".to_string(),
        },
    );
    if let Some(err) = &status.last_reload_error {
        let _ = write!(
            html,
            "<section class=\"warn\"><b>The last reload was refused</b> (the previous configuration stays in use): {}</section>",
            esc(err)
        );
    }
    if status.repositories.is_empty() {
        html.push_str("<section>No repository is scheduled.</section>");
    }
    for repo in &status.repositories {
        repository(&mut html, repo, now);
    }
    let _ = writeln!(html, "<p class=\"muted\">Configuration: {}</p></main></body></html>", esc(&status.config));
    html
}

fn repository(html: &mut String, repo: &RepoStatus, now: DateTime<Utc>) {
    let outcome = repo.last_run.as_ref().map_or("none", |r| r.outcome);
    let _ = write!(
        html,
        "<section id=\"repo-{id}\"><h2>{label} <span class=\"badge {outcome}\">{outcome_text}</span></h2>\
         <div class=\"url\">{url}</div><dl>\
         <div><dt>Schedule</dt><dd>{schedule}</dd></div>\
         <div><dt>Next run</dt><dd>{next}</dd></div>\
         <div><dt>Last run</dt><dd>{last}</dd></div>\
         <div><dt>Last duration</dt><dd>{duration}</dd></div>\
         <div><dt>Last successful backup</dt><dd>{success}</dd></div>\
         <div><dt>Consecutive failures</dt><dd>{failures}</dd></div>\
         <div><dt>Cycles (failed)</dt><dd>{cycles} ({failed})</dd></div>\
         <div><dt>Snapshots made</dt><dd>{made}</dd></div></dl>",
        id = esc(&repo.label),
        label = esc(&repo.label),
        outcome_text = if outcome == "none" { "not run yet" } else { outcome },
        url = esc(&repo.url),
        schedule = esc(&repo.schedule),
        next = repo.next_run.as_ref().map_or_else(|| "—".to_string(), |t| when(t, now)),
        last = repo.last_run.as_ref().map_or_else(
            || "—".to_string(),
            |r| format!("{} <span class=\"muted\">({})</span>", when(&r.started_at, now), reason(r.reason))
        ),
        duration = repo.last_run.as_ref().map_or_else(|| "—".to_string(), |r| format!("{:.1} s", r.duration_seconds)),
        success = repo
            .last_success
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| "—".to_string(), |t| when(&t.with_timezone(&Utc), now)),
        failures = repo.consecutive_failures,
        cycles = repo.cycles,
        failed = repo.failed_cycles,
        made = repo.snapshots_created,
    );
    if let Some(run) = &repo.last_run {
        html.push_str("<h3>Last cycle</h3><table><tr><th>Step</th><th>Status</th><th>Seconds</th><th>Detail</th></tr>");
        for step in &run.steps {
            let _ = write!(
                html,
                "<tr><td>{}</td><td><span class=\"badge {s}\">{s}</span></td><td class=\"n\">{:.1}</td><td class=\"detail\">{}</td></tr>",
                step.step,
                step.seconds,
                esc(&step.detail),
                s = step.status,
            );
        }
        html.push_str("</table>");
    }
    if !repo.sources.is_empty() {
        html.push_str(
            "<h3>Sources</h3><table><tr><th>Source</th><th>Last backup</th><th>Snapshot</th><th>Files</th>\
             <th>Size</th><th>Added</th><th>Skipped</th><th>Seconds</th></tr>",
        );
        for s in &repo.sources {
            let _ = write!(
                html,
                "<tr><td>{}</td><td><span class=\"badge {o}\">{o}</span> {}</td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&s.label),
                s.last_success.as_ref().map_or_else(String::new, |t| when(t, now)),
                esc(s.last_snapshot.as_deref().unwrap_or("—")),
                s.files,
                bytes(s.bytes),
                bytes(s.added_bytes),
                s.errors,
                s.last_duration_seconds.map_or_else(|| "—".to_string(), |d| format!("{d:.1}")),
                o = esc(&s.last_outcome),
            );
        }
        html.push_str("</table>");
    }
    html.push_str("<h3>Recent snapshots</h3>");
    if repo.recent_snapshots.is_empty() {
        html.push_str("<p class=\"muted\">None made since the daemon started.</p>");
    } else {
        html.push_str(
            "<table><tr><th>Snapshot</th><th>Source</th><th>Time</th><th>Files</th><th>Size</th><th>Added</th></tr>",
        );
        for s in &repo.recent_snapshots {
            let time = DateTime::parse_from_rfc3339(&s.time)
                .map_or_else(|_| esc(&s.time), |t| when(&t.with_timezone(&Utc), now));
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{time}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&s.id),
                esc(&s.source),
                s.files,
                bytes(s.bytes),
                bytes(s.added_bytes),
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</section>");
}

fn reason(r: super::plan::RunReason) -> &'static str {
    match r {
        super::plan::RunReason::Schedule => "scheduled",
        super::plan::RunReason::CatchUp => "catching up a missed run",
        super::plan::RunReason::Startup => "on startup",
        super::plan::RunReason::Signal => "SIGUSR1",
    }
}

/// `2026-05-01 12:00:03 UTC (3m ago)`.
fn when(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = (*t - now).num_seconds();
    let span = human(delta.unsigned_abs());
    let rel = if delta.abs() < 1 {
        "now".to_string()
    } else if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    };
    format!(
        "<time datetime=\"{}\">{}</time> <span class=\"muted\">({rel})</span>",
        t.to_rfc3339(),
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

fn human(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// HTML text and attribute escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
