//! HTTP notifications (`notify:` in the config) when a repository's cycle
//! starts, succeeds or fails.
//!
//! Each target gets a request with `method` (POST by default) and, unless
//! it is a GET, a body: the `body` template if one is written, otherwise a
//! JSON document with the cycle's summary, steps, snapshots and the end of
//! its log. Placeholders `{event}`, `{label}`, `{repository}`, `{hostname}`,
//! `{outcome}`, `{summary}` and `{suffix}` work in the URL and the body
//! (`{suffix}` is `/start`, empty or `/fail`: healthchecks.io's convention;
//! a `hc-ping.com` URL without placeholders gets it appended).
//!
//! Requests are sent in order by one background thread, with a timeout
//! and retries with back-off; a failure is logged and never fails a backup.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vger_config::{NotifyConfig, NotifyEvent, RepositoryConfig};

use vger_app::cycle::{CycleSummary, StepStatus};

use super::log::say;

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What a notification says about one repository's cycle.
#[derive(Debug, Clone)]
pub struct Report {
    pub label: String,
    pub repository: String,
    pub hostname: String,
    /// ok, partial or failed (`running` for the start event).
    pub outcome: String,
    /// One line, e.g. `local: backup ok 1.2s, prune skipped, compact ok 0.1s, check skipped`.
    pub summary: String,
    /// The whole JSON document sent when no `body` template is written.
    pub document: serde_json::Value,
}

impl Report {
    /// A report about `repo`; `extra` is merged into the JSON document.
    pub fn new(
        repo: &RepositoryConfig,
        hostname: &str,
        outcome: &str,
        summary: String,
        extra: serde_json::Value,
    ) -> Report {
        let mut document = serde_json::json!({
            "repository": repo.label(),
            "url": repo.url,
            "hostname": hostname,
            "outcome": outcome,
            "summary": summary,
            "time": chrono::Utc::now().to_rfc3339(),
        });
        if let (Some(doc), serde_json::Value::Object(more)) = (document.as_object_mut(), extra) {
            doc.extend(more);
        }
        Report {
            label: repo.label().to_string(),
            repository: repo.url.clone(),
            hostname: hostname.to_string(),
            outcome: outcome.to_string(),
            summary,
            document,
        }
    }
}

/// `local: backup ok 1.2s, prune skipped, compact ok 0.1s, check skipped`.
pub fn one_line_summary(label: &str, summary: &CycleSummary) -> String {
    let steps: Vec<String> = summary
        .steps
        .iter()
        .map(|s| match s.status {
            StepStatus::Skipped => format!("{} skipped", s.step),
            _ => format!("{} {} {:.1}s", s.step, s.status, s.seconds),
        })
        .collect();
    format!("{label}: {}", steps.join(", "))
}

/// The snapshots a cycle made, as a notification lists them.
pub fn snapshot_digest(summary: &CycleSummary) -> Vec<serde_json::Value> {
    summary
        .snapshots
        .iter()
        .map(|made| {
            let snapshot = &made.report.snapshot;
            serde_json::json!({
                "source": made.source_label,
                "id": vger_engine::snapshots::short_id(&made.report.snapshot_id),
                "time": snapshot.time,
                "files": snapshot.stats.files,
                "bytes": snapshot.stats.bytes,
                "added_bytes": snapshot.stats.added_bytes,
                "errors": snapshot.stats.errors,
            })
        })
        .collect()
}

struct Request {
    method: String,
    url: String,
    content_type: &'static str,
    body: Vec<u8>,
}

/// Sends notifications in a background thread.
pub struct Notifier {
    queue: Option<mpsc::Sender<Request>>,
    worker: Option<JoinHandle<()>>,
}

impl Notifier {
    pub fn start() -> Notifier {
        let (tx, rx) = mpsc::channel::<Request>();
        let worker = std::thread::Builder::new()
            .name("vger-notify".into())
            .spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(TIMEOUT))
                    .user_agent(concat!("vger/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .into();
                for request in rx {
                    deliver(&agent, &request);
                }
            })
            .ok();
        Notifier { queue: worker.as_ref().map(|_| tx), worker }
    }

    /// Queues `event` for every target that wants it.
    pub fn send(&self, targets: &[NotifyConfig], event: NotifyEvent, report: &Report) {
        let Some(queue) = &self.queue else { return };
        for target in targets.iter().filter(|t| t.events.contains(&event)) {
            let _ = queue.send(build(target, event, report));
        }
    }

    /// Waits up to `limit` for queued notifications to go out.
    pub fn finish(mut self, limit: Duration) {
        self.queue = None;
        let Some(worker) = self.worker.take() else { return };
        let deadline = Instant::now() + limit;
        while !worker.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if worker.is_finished() {
            let _ = worker.join();
        } else {
            say("notifications still being sent are abandoned");
        }
    }
}

fn event_name(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Start => "start",
        NotifyEvent::Success => "success",
        NotifyEvent::Failure => "failure",
    }
}

fn build(target: &NotifyConfig, event: NotifyEvent, report: &Report) -> Request {
    let suffix = match event {
        NotifyEvent::Start => "/start",
        NotifyEvent::Success => "",
        NotifyEvent::Failure => "/fail",
    };
    let fill = |template: &str, escape: fn(&str) -> String| {
        template
            .replace("{event}", event_name(event))
            .replace("{label}", &escape(&report.label))
            .replace("{repository}", &escape(&report.repository))
            .replace("{hostname}", &escape(&report.hostname))
            .replace("{outcome}", &report.outcome)
            .replace("{summary}", &escape(&report.summary))
            .replace("{suffix}", suffix)
    };
    let mut url = fill(&target.url, url_escape);
    if !target.url.contains('{') && is_healthchecks(&target.url) {
        url = format!("{}{suffix}", url.trim_end_matches('/'));
    }
    let method = target.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
    let (content_type, body) = match (&target.body, method.as_str()) {
        (_, "GET" | "HEAD") => ("text/plain", Vec::new()),
        (Some(template), _) => ("text/plain; charset=utf-8", fill(template, str::to_string).into_bytes()),
        (None, _) => {
            let mut doc = report.document.clone();
            doc["event"] = event_name(event).into();
            ("application/json", serde_json::to_vec(&doc).unwrap_or_default())
        }
    };
    Request { method, url, content_type, body }
}

/// Percent-encodes everything but unreserved characters.
fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn is_healthchecks(url: &str) -> bool {
    let host = url.split("://").nth(1).and_then(|rest| rest.split(['/', ':']).next()).unwrap_or("");
    host == "hc-ping.com" || host.ends_with(".hc-ping.com")
}

/// The URL without its query (which may hold a token), for the log.
fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn deliver(agent: &ureq::Agent, request: &Request) {
    let mut backoff = FIRST_BACKOFF;
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        match send_once(agent, request) {
            Ok(()) => return,
            Err(e) => last_error = e,
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
    say(format!(
        "warning: notification {} {} failed after {ATTEMPTS} attempts: {last_error}",
        request.method,
        shown(&request.url)
    ));
}

fn send_once(agent: &ureq::Agent, request: &Request) -> Result<(), String> {
    let http_request = ureq::http::Request::builder()
        .method(request.method.as_str())
        .uri(request.url.as_str())
        .header("content-type", request.content_type)
        .body(request.body.clone())
        .map_err(|e| format!("bad request: {e}"))?;
    let response = agent.run(http_request).map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            label: "nas".into(),
            repository: "/srv/vger".into(),
            hostname: "box".into(),
            outcome: "failed".into(),
            summary: "nas: backup failed".into(),
            document: serde_json::json!({"repository": "nas"}),
        }
    }

    fn target(url: &str) -> NotifyConfig {
        NotifyConfig { url: url.into(), events: vec![NotifyEvent::Failure], method: None, body: None }
    }

    #[test]
    fn healthchecks_urls_get_the_suffix() {
        let r = build(&target("https://hc-ping.com/abc"), NotifyEvent::Failure, &report());
        assert_eq!(r.url, "https://hc-ping.com/abc/fail");
        let r = build(&target("https://hc-ping.com/abc"), NotifyEvent::Success, &report());
        assert_eq!(r.url, "https://hc-ping.com/abc");
        let r = build(&target("https://hc.example.org/ping/abc{suffix}"), NotifyEvent::Start, &report());
        assert_eq!(r.url, "https://hc.example.org/ping/abc/start");
    }

    #[test]
    fn bodies() {
        let r = build(&target("http://127.0.0.1:1/hook"), NotifyEvent::Failure, &report());
        assert_eq!(r.method, "POST");
        assert_eq!(r.content_type, "application/json");
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(doc["event"], "failure");
        let mut ntfy = target("https://ntfy.sh/backups");
        ntfy.body = Some("{label} on {hostname}: {event}".into());
        let r = build(&ntfy, NotifyEvent::Failure, &report());
        assert_eq!(r.body, b"nas on box: failure");
        let mut get = target("https://example.org/{event}?label={label}&s={summary}");
        get.method = Some("get".into());
        let r = build(&get, NotifyEvent::Failure, &report());
        assert_eq!(
            (r.method.as_str(), r.url.as_str(), r.body.len()),
            ("GET", "https://example.org/failure?label=nas&s=nas%3A%20backup%20failed", 0)
        );
    }
}
