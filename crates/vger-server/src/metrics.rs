//! Prometheus counters, kept in one map under a mutex (a few hundred
//! series at most: repositories x methods x statuses).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Metrics {
    started: u64,
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// (repo, method, status) -> count
    requests: BTreeMap<(String, String, u16), u64>,
    received: BTreeMap<String, u64>,
    sent: BTreeMap<String, u64>,
    /// (repo, method) -> (seconds, count)
    durations: BTreeMap<(String, String), (f64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Metrics { started, inner: Mutex::new(Counters::default()) }
    }
}

/// One finished request.
pub struct Observation<'a> {
    pub repo: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub received: u64,
    pub sent: u64,
    pub duration: Duration,
}

impl Metrics {
    pub fn record(&self, o: &Observation<'_>) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *c.requests.entry((o.repo.to_owned(), o.method.to_owned(), o.status)).or_default() += 1;
        *c.received.entry(o.repo.to_owned()).or_default() += o.received;
        *c.sent.entry(o.repo.to_owned()).or_default() += o.sent;
        let d = c.durations.entry((o.repo.to_owned(), o.method.to_owned())).or_default();
        d.0 += o.duration.as_secs_f64();
        d.1 += 1;
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let _ = writeln!(out, "# HELP vger_server_start_time_seconds When the server started (unix seconds).");
        let _ = writeln!(out, "# TYPE vger_server_start_time_seconds gauge");
        let _ = writeln!(out, "vger_server_start_time_seconds {}", self.started);
        header(
            &mut out,
            "vger_server_requests_total",
            "counter",
            "Requests answered, by repository, method and status.",
        );
        for ((repo, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "vger_server_requests_total{{repo=\"{repo}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        header(&mut out, "vger_server_errors_total", "counter", "Requests answered with a 5xx status, by repository.");
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for ((repo, _, status), n) in &c.requests {
            if *status >= 500 {
                *errors.entry(repo).or_default() += n;
            }
        }
        for (repo, n) in errors {
            let _ = writeln!(out, "vger_server_errors_total{{repo=\"{repo}\"}} {n}");
        }
        header(&mut out, "vger_server_received_bytes_total", "counter", "Request body bytes received, by repository.");
        for (repo, n) in &c.received {
            let _ = writeln!(out, "vger_server_received_bytes_total{{repo=\"{repo}\"}} {n}");
        }
        header(
            &mut out,
            "vger_server_sent_bytes_total",
            "counter",
            "Response body bytes sent (bodies of known length), by repository.",
        );
        for (repo, n) in &c.sent {
            let _ = writeln!(out, "vger_server_sent_bytes_total{{repo=\"{repo}\"}} {n}");
        }
        header(
            &mut out,
            "vger_server_request_duration_seconds",
            "summary",
            "Time to answer (until the response starts).",
        );
        for ((repo, method), (secs, n)) in &c.durations {
            let labels = format!("repo=\"{repo}\",method=\"{method}\"");
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
