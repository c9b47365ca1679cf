//! A byte-rate limit for reading source files (`limits.io_read_mib_per_sec`).
//!
//! A token bucket refilled continuously at the configured rate, holding at
//! most a quarter second of tokens so that bursts stay short; readers take
//! tokens for what they read and sleep when the bucket is empty. One bucket
//! is shared by every reader of a run.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> Arc<Self> {
        let rate = bytes_per_sec.max(1) as f64;
        Arc::new(Self { bytes_per_sec: rate, state: Mutex::new((0.0, Instant::now())) })
    }

    /// Waits until `n` bytes may pass.
    pub fn take(&self, n: usize) {
        let wait = {
            let mut s = crate::parallel::lock(&self.state);
            let now = Instant::now();
            let burst = self.bytes_per_sec / 4.0;
            let refill = now.duration_since(s.1).as_secs_f64() * self.bytes_per_sec;
            s.0 = (s.0 + refill).min(burst);
            s.1 = now;
            s.0 -= n as f64;
            if s.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-s.0 / self.bytes_per_sec)
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A reader that respects a [`RateLimiter`].
pub struct ThrottledRead<R> {
    inner: R,
    limiter: Arc<RateLimiter>,
}

impl<R: Read> ThrottledRead<R> {
    pub fn new(inner: R, limiter: Arc<RateLimiter>) -> Self {
        Self { inner, limiter }
    }
}

impl<R: Read> Read for ThrottledRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads keep the rate smooth.
        let cap = buf.len().min(1 << 20);
        let n = self.inner.read(&mut buf[..cap])?;
        self.limiter.take(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_rate_is_within_15_percent_of_the_cap() {
        let data = vec![7u8; 24 << 20];
        let limiter = RateLimiter::new(8 << 20);
        let start = Instant::now();
        let mut r = ThrottledRead::new(&data[..], limiter);
        let mut sink = vec![0u8; 4 << 20];
        let mut total = 0;
        loop {
            match r.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        let cap = (8 << 20) as f64;
        assert!(rate <= cap * 1.15 && rate >= cap * 0.85, "read at {:.2} MiB/s with an 8 MiB/s cap", rate / 1048576.0);
    }
}
