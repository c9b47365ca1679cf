//! Prometheus counters, kept in one map under a mutex.
//!
//! The set of series is bounded by what the operator controls: only
//! authenticated requests are counted per series, methods are folded into
//! a fixed set ([`MethodLabel`]), statuses are the few the server answers,
//! and a repository gets its own series only once it exists on disk
//! (others count under `repo="-"`). So a client with random methods,
//! paths or no token cannot grow the server's memory or `/metrics`.
//! Unauthenticated requests are one counter.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;

/// The label of requests not tied to an existing repository.
pub const NO_REPO: &str = "-";

/// The methods the server answers, and everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MethodLabel {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Other,
}

impl MethodLabel {
    pub fn of(method: &Method) -> Self {
        match *method {
            Method::GET => MethodLabel::Get,
            Method::HEAD => MethodLabel::Head,
            Method::PUT => MethodLabel::Put,
            Method::POST => MethodLabel::Post,
            Method::DELETE => MethodLabel::Delete,
            _ => MethodLabel::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            MethodLabel::Get => "GET",
            MethodLabel::Head => "HEAD",
            MethodLabel::Put => "PUT",
            MethodLabel::Post => "POST",
            MethodLabel::Delete => "DELETE",
            MethodLabel::Other => "OTHER",
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    started: u64,
    unauthenticated: AtomicU64,
    refused_connections: AtomicU64,
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// (repo, method, status) -> count
    requests: BTreeMap<(String, MethodLabel, u16), u64>,
    received: BTreeMap<String, u64>,
    sent: BTreeMap<String, u64>,
    /// (repo, method) -> (seconds, count)
    durations: BTreeMap<(String, MethodLabel), (f64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Metrics {
            started,
            unauthenticated: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            inner: Mutex::new(Counters::default()),
        }
    }
}

/// One finished, authenticated request.
pub struct Observation<'a> {
    /// An existing repository, or [`NO_REPO`].
    pub repo: &'a str,
    pub method: MethodLabel,
    pub status: u16,
    pub received: u64,
    pub sent: u64,
    pub duration: Duration,
}

impl Metrics {
    pub fn record(&self, o: &Observation<'_>) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *c.requests.entry((o.repo.to_owned(), o.method, o.status)).or_default() += 1;
        *c.received.entry(o.repo.to_owned()).or_default() += o.received;
        *c.sent.entry(o.repo.to_owned()).or_default() += o.sent;
        let d = c.durations.entry((o.repo.to_owned(), o.method)).or_default();
        d.0 += o.duration.as_secs_f64();
        d.1 += 1;
    }

    /// A request without a valid token.
    pub fn record_unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed at once: over the cap in all or per address.
    pub fn record_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format, with the series of the
    /// repositories `visible` lets through (and server-wide numbers only
    /// when `all` is set: a token limited to some repositories sees theirs).
    pub fn render(&self, all: bool, visible: &dyn Fn(&str) -> bool) -> String {
        let c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let shown = |repo: &str| if repo == NO_REPO { all } else { all || visible(repo) };
        let mut out = String::new();
        let _ = writeln!(out, "# HELP vger_server_start_time_seconds When the server started (unix seconds).");
        let _ = writeln!(out, "# TYPE vger_server_start_time_seconds gauge");
        let _ = writeln!(out, "vger_server_start_time_seconds {}", self.started);
        if all {
            header(
                &mut out,
                "vger_server_unauthenticated_requests_total",
                "counter",
                "Requests refused for a missing or wrong token.",
            );
            let n = self.unauthenticated.load(Ordering::Relaxed);
            let _ = writeln!(out, "vger_server_unauthenticated_requests_total {n}");
            header(
                &mut out,
                "vger_server_refused_connections_total",
                "counter",
                "Connections closed at once for passing the cap in all or per client address.",
            );
            let n = self.refused_connections.load(Ordering::Relaxed);
            let _ = writeln!(out, "vger_server_refused_connections_total {n}");
        }
        header(
            &mut out,
            "vger_server_requests_total",
            "counter",
            "Requests answered, by repository, method and status.",
        );
        for ((repo, method, status), n) in c.requests.iter().filter(|((r, _, _), _)| shown(r)) {
            let method = method.as_str();
            let _ = writeln!(
                out,
                "vger_server_requests_total{{repo=\"{repo}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        header(&mut out, "vger_server_errors_total", "counter", "Requests answered with a 5xx status, by repository.");
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for ((repo, _, status), n) in c.requests.iter().filter(|((r, _, _), _)| shown(r)) {
            if *status >= 500 {
                *errors.entry(repo).or_default() += n;
            }
        }
        for (repo, n) in errors {
            let _ = writeln!(out, "vger_server_errors_total{{repo=\"{repo}\"}} {n}");
        }
        header(&mut out, "vger_server_received_bytes_total", "counter", "Request body bytes received, by repository.");
        for (repo, n) in c.received.iter().filter(|(r, _)| shown(r)) {
            let _ = writeln!(out, "vger_server_received_bytes_total{{repo=\"{repo}\"}} {n}");
        }
        header(
            &mut out,
            "vger_server_sent_bytes_total",
            "counter",
            "Response body bytes sent (bodies of known length), by repository.",
        );
        for (repo, n) in c.sent.iter().filter(|(r, _)| shown(r)) {
            let _ = writeln!(out, "vger_server_sent_bytes_total{{repo=\"{repo}\"}} {n}");
        }
        header(
            &mut out,
            "vger_server_request_duration_seconds",
            "summary",
            "Time to answer (until the response starts).",
        );
        for ((repo, method), (secs, n)) in c.durations.iter().filter(|((r, _), _)| shown(r)) {
            let labels = format!("repo=\"{repo}\",method=\"{}\"", method.as_str());
            let _ = writeln!(out, "vger_server_request_duration_seconds_sum{{{labels}}} {secs:.6}");
            let _ = writeln!(out, "vger_server_request_duration_seconds_count{{{labels}}} {n}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(metrics: &Metrics, repo: &str, method: &Method) {
        let method = MethodLabel::of(method);
        metrics.record(&Observation { repo, method, status: 200, received: 1, sent: 2, duration: Duration::ZERO });
    }

    #[test]
    fn methods_fold_and_repositories_are_shown_to_their_tokens_only() {
        let metrics = Metrics::default();
        for name in ["FOO", "BAR", "X-RANDOM-1", "X-RANDOM-2"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap_or(Method::TRACE);
            observe(&metrics, "mine", &method);
        }
        observe(&metrics, "mine", &Method::GET);
        observe(&metrics, "theirs", &Method::GET);
        observe(&metrics, NO_REPO, &Method::GET);
        let everything = metrics.render(true, &|_| true);
        assert!(everything.contains("repo=\"mine\",method=\"OTHER\",status=\"200\"} 4"), "{everything}");
        assert!(!everything.contains("FOO") && !everything.contains("RANDOM"), "{everything}");
        let mine = metrics.render(false, &|repo| repo == "mine");
        assert!(mine.contains("repo=\"mine\""), "{mine}");
        assert!(
            !mine.contains("theirs") && !mine.contains("repo=\"-\"") && !mine.contains("unauthenticated"),
            "{mine}"
        );
    }
}
