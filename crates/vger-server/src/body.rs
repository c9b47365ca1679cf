//! Reading a request body no slower than a minimum rate. A client that
//! trickles a body (slow loris) would otherwise hold a connection, a
//! quota reservation and a temporary file for as long as it likes.
//!
//! The rule: after a grace period the body must have arrived at
//! [`MIN_BODY_RATE`] on average, and no gap between two pieces may be
//! longer than [`BODY_IDLE`]. A throttled vger client (`limits.upload`)
//! sends far faster than this; a laptop that sleeps mid-upload retries.

use std::time::Duration;

use axum::body::{BodyDataStream, Bytes};
use axum::http::StatusCode;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::error::ApiError;

/// Slowest average rate a body may arrive at, after [`BODY_GRACE`].
pub const MIN_BODY_RATE: u64 = 4 << 10;
/// Time before the average rate counts (connection set-up, a slow start).
pub const BODY_GRACE: Duration = Duration::from_secs(20);
/// Longest pause between two pieces of a body.
pub const BODY_IDLE: Duration = Duration::from_secs(60);

/// A body being read, with what has arrived so far.
pub struct BodyReader<'a> {
    stream: &'a mut BodyDataStream,
    started: Instant,
    received: u64,
}

impl<'a> BodyReader<'a> {
    pub fn new(stream: &'a mut BodyDataStream) -> Self {
        BodyReader { stream, started: Instant::now(), received: 0 }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next piece, `None` at the end; 408 if the client is too slow,
    /// 400 if the body was cut off.
    pub async fn next(&mut self) -> Option<Result<Bytes, ApiError>> {
        let now = Instant::now();
        let earned = Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64);
        let deadline = (self.started + BODY_GRACE + earned).min(now + BODY_IDLE);
        if deadline <= now {
            return Some(Err(too_slow()));
        }
        match tokio::time::timeout_at(deadline, self.stream.next()).await {
            Err(_) => Some(Err(too_slow())),
            Ok(None) => None,
            Ok(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                Some(Ok(chunk))
            }
            Ok(Some(Err(e))) => Some(Err(ApiError::bad_request(format!("the request body was cut off: {e}")))),
        }
    }

    /// Reads the rest into memory, refusing more than `limit` bytes (413).
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than {limit} bytes, more than any valid request needs"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body arrived too slowly (the server needs at least {} KiB/s and a piece every {} s)",
            MIN_BODY_RATE >> 10,
            BODY_IDLE.as_secs()
        ),
    )
}
