//! What the two HTTP clients (S3 and vger-server) share: one exchange
//! with timeouts sized by the body, replies read no further than the
//! protocol lets them be, and server text cleaned before it reaches a
//! message.
//!
//! A server (or anything between it and us) may be hostile: an endless
//! body, a listing line that never ends, an error page full of terminal
//! escape sequences. Every read of a reply here has a cap chosen by the
//! caller from what a correct answer can hold ([`crate::keys::max_object_size`]
//! for objects, [`SMALL_REPLY`] for everything else), checked against
//! `Content-Length` before reading and enforced while reading.

use std::io::{BufRead, Read};
use std::time::Duration;

use ureq::http::{self, Method, Response};
use ureq::Body;

use crate::StorageError;

/// Throughput below which a transfer counts as stalled, used to size the
/// body timeouts: `timeout` plus this long per byte.
const SLOWEST_BYTES_PER_SEC: u64 = 256 << 10;

/// Cap of replies that are not objects: error bodies, PUT and DELETE
/// answers, JSON answers, S3's multipart and copy results.
pub(crate) const SMALL_REPLY: u64 = 64 << 10;

/// Characters of server text kept in a message.
const MESSAGE_CHARS: usize = 300;

/// What to send.
pub(crate) struct Exchange<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a [u8],
    /// Bytes expected back, if known, to size the receive timeout
    /// (`None`: no time limit for the body, for streamed listings).
    pub expect_bytes: Option<u64>,
    /// The most a successful reply's body may hold.
    pub max_reply: u64,
}

/// A finished exchange: status, headers and the whole (capped) body.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as one clean line of at most a few hundred characters.
    pub fn text(&self) -> String {
        clean_text(&self.body)
    }
}

/// One HTTP client: the agent, its timeout and the service's name for
/// messages (`S3`, `vger-server`).
pub(crate) struct Client {
    pub agent: ureq::Agent,
    pub timeout: Duration,
    pub service: &'static str,
    /// What to check when the host is not found, for the message.
    pub host_hint: &'static str,
}

impl Client {
    /// An agent that returns HTTP errors as replies, follows no redirect
    /// and keeps `connections * 2` idle connections.
    pub fn new(timeout: Duration, connections: usize, service: &'static str, host_hint: &'static str) -> Self {
        let idle = connections.max(1) * 2;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .max_idle_connections(idle)
            .max_idle_connections_per_host(idle)
            .build()
            .into();
        Client { agent, timeout, service, host_hint }
    }

    fn body_time(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs(bytes / SLOWEST_BYTES_PER_SEC)
    }

    /// Sends `exchange`; the reply's body is left to read. An HTTP error
    /// status is not an `Err` here: callers decide what a 404 means.
    pub fn send(&self, exchange: &Exchange<'_>) -> Result<Response<Body>, StorageError> {
        let mut builder = http::Request::builder().method(exchange.method.clone()).uri(exchange.url.as_str());
        for (name, value) in &exchange.headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder.body(exchange.body).map_err(|e| StorageError::Backend {
            detail: format!("building a {} request: {}", self.service, clean_text(e.to_string().as_bytes())),
        })?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_send_body(Some(self.body_time(exchange.body.len() as u64)))
            .timeout_recv_body(exchange.expect_bytes.map(|n| self.body_time(n.max(1 << 20))))
            .build();
        self.agent.run(request).map_err(|e| crate::error::from_ureq(e, self.service, self.host_hint))
    }

    /// Sends `exchange` and reads the whole reply: at most
    /// `exchange.max_reply` bytes when successful, [`SMALL_REPLY`] when not.
    pub fn exchange(&self, exchange: &Exchange<'_>) -> Result<Reply, StorageError> {
        let response = self.send(exchange)?;
        let cap = if response.status().is_success() { exchange.max_reply } else { SMALL_REPLY };
        self.read_reply(response, cap, exchange.expect_bytes.unwrap_or(0))
    }

    /// Reads the reply to a request whose body was streamed, capped at `cap`.
    pub fn read_reply(&self, response: Response<Body>, cap: u64, expect: u64) -> Result<Reply, StorageError> {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = self.read_body(body, cap, expect)?;
        Ok(Reply { status, headers: parts.headers, body })
    }

    /// The body, refused when it announces or turns out to hold more than `cap`.
    fn read_body(&self, mut body: Body, cap: u64, expect: u64) -> Result<Vec<u8>, StorageError> {
        if let Some(announced) = body.content_length().filter(|n| *n > cap) {
            return Err(self.too_large(announced, cap));
        }
        let mut data = Vec::with_capacity(expect.min(cap).min(1 << 30) as usize);
        match body.with_config().limit(cap).reader().read_to_end(&mut data) {
            Ok(_) => Ok(data),
            Err(e) if exceeds_limit(&e) => Err(self.too_large(cap + 1, cap)),
            Err(e) => Err(StorageError::Transient {
                detail: format!("reading a {} reply: {}", self.service, clean_text(e.to_string().as_bytes())),
            }),
        }
    }

    fn too_large(&self, got: u64, cap: u64) -> StorageError {
        StorageError::Backend {
            detail: format!(
                "the {} reply holds {got} bytes or more where at most {cap} make sense; refused (a broken or hostile server or proxy)",
                self.service
            ),
        }
    }

    /// Reads `body` as lines of at most `max_line` bytes each, handing each
    /// non-empty line to `line`, and at most `max_lines` of them.
    pub fn read_lines(
        &self,
        body: Body,
        what: &str,
        max_line: usize,
        max_lines: usize,
        mut line: impl FnMut(&str) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let cut_off = |e: std::io::Error| StorageError::Transient {
            detail: format!("{} {what} cut off: {}", self.service, clean_text(e.to_string().as_bytes())),
        };
        let mut reader = std::io::BufReader::with_capacity(256 << 10, body.into_reader());
        let mut buf = Vec::with_capacity(max_line.min(64 << 10));
        let mut lines = 0usize;
        loop {
            buf.clear();
            let n = (&mut reader).take(max_line as u64 + 1).read_until(b'\n', &mut buf).map_err(cut_off)?;
            if n == 0 {
                return Ok(());
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            } else if buf.len() > max_line {
                return Err(StorageError::Backend {
                    detail: format!(
                        "{} {what}: a reply line is longer than {max_line} bytes; refused (a broken or hostile server)",
                        self.service
                    ),
                });
            }
            if buf.is_empty() {
                continue;
            }
            lines += 1;
            if lines > max_lines {
                return Err(StorageError::Backend {
                    detail: format!(
                        "{} {what}: the reply has more than {max_lines} lines; refused (a broken or hostile server)",
                        self.service
                    ),
                });
            }
            let text = std::str::from_utf8(&buf).map_err(|_| StorageError::Backend {
                detail: format!("{} {what}: a reply line is not UTF-8", self.service),
            })?;
            line(text)?;
        }
    }
}

/// Whether a read failed because the body passed its limit.
fn exceeds_limit(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::BodyExceedsLimit(_)))
}

/// Server text as one line for a message: invalid UTF-8 replaced, every
/// control character (terminal escapes, carriage returns, newlines, the
/// C1 range, bidirectional overrides) turned into a space, runs of spaces
/// folded, at most a few hundred characters.
pub fn clean_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(MESSAGE_CHARS * 4));
    let mut chars = 0;
    for c in text.chars() {
        let c = if is_unsafe_in_terminal(c) { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if chars == MESSAGE_CHARS {
            out.push_str("...");
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.trim_end().to_owned()
}

/// Control characters, and the format characters that reorder or hide
/// text on a terminal.
fn is_unsafe_in_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::clean_text;

    #[test]
    fn server_text_loses_escapes_and_newlines() {
        let hostile = b"\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\nline2\x9b\xc2\x9b\tx \xe2\x80\xae";
        let clean = clean_text(hostile);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(!clean.contains('\u{202e}'), "{clean:?}");
        assert!(clean.contains("red") && clean.contains("line2"), "{clean:?}");
        assert_eq!(clean_text(&vec![b'a'; 10_000]).len(), 303);
        assert_eq!(clean_text(b"  plain  text \n"), "plain text");
    }
}
