//! Structured logs on stderr: one line per request and per server event,
//! as text or (`--log-format json`) one JSON object per line. Tokens are
//! never logged, only their names (or `sha256:` + 8 hex digits).

use std::io::Write;

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Logger {
    format: LogFormat,
}

/// What the request log line says about one request.
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub received: u64,
    pub sent: u64,
    pub duration_ms: f64,
    pub repo: Option<&'a str>,
    pub token: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl Logger {
    pub fn new(format: LogFormat) -> Self {
        Logger { format }
    }

    /// A server event with extra fields, e.g. `("addr", "127.0.0.1:8585")`.
    pub fn event(&self, level: &str, message: &str, fields: &[(&str, &str)]) {
        match self.format {
            LogFormat::Json => {
                let mut object = Map::new();
                object.insert("ts".into(), now().into());
                object.insert("level".into(), level.into());
                object.insert("msg".into(), message.into());
                for (k, v) in fields {
                    object.insert((*k).into(), (*v).into());
                }
                write_line(&Value::Object(object).to_string());
            }
            LogFormat::Text => {
                let mut line = format!("{} {level:5} {message}", now());
                for (k, v) in fields {
                    line.push_str(&format!(" {k}={v}"));
                }
                write_line(&line);
            }
        }
    }

    pub fn request(&self, r: &RequestLine<'_>) {
        let level = if r.status >= 500 {
            "error"
        } else if r.status >= 400 {
            "warn"
        } else {
            "info"
        };
        match self.format {
            LogFormat::Json => {
                let line = json!({
                    "ts": now(), "level": level, "msg": "request", "method": r.method, "path": r.path,
                    "status": r.status, "bytes_in": r.received, "bytes_out": r.sent,
                    "duration_ms": (r.duration_ms * 1000.0).round() / 1000.0,
                    "repo": r.repo, "token": r.token, "error": r.error,
                });
                write_line(&line.to_string());
            }
            LogFormat::Text => {
                let mut line = format!(
                    "{} {level:5} {} {} {} in={} out={} {:.1}ms repo={} token={}",
                    now(),
                    r.method,
                    r.path,
                    r.status,
                    r.received,
                    r.sent,
                    r.duration_ms,
                    r.repo.unwrap_or("-"),
                    r.token.unwrap_or("-"),
                );
                if let Some(error) = r.error {
                    line.push_str(&format!(" error={error:?}"));
                }
                write_line(&line);
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn write_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}
