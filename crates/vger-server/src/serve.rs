//! Accepting connections and keeping each one honest.
//!
//! - At most [`ConnectionLimits::total`] connections at once, and at most
//!   [`ConnectionLimits::per_address`] from one client address (an IPv6
//!   client counts by its /64); a connection over either cap is closed at
//!   once, before a byte is read.
//! - A request's headers must arrive within the header timeout, which
//!   also closes a connection idle between requests (hyper measures it
//!   from the moment it waits for the next request).
//! - Request bodies must keep a minimum rate ([`crate::body`]).
//! - A client that does not read its reply ([`StallGuard`]) is cut off,
//!   which drops the reply and stops the work behind it ([`crate::work`]).
//!
//! HTTP/1.1 only: the client speaks it, and so do reverse proxies to
//! their upstreams.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use crate::state::AppState;

/// Caps and timeouts of the listener.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub limits: ConnectionLimits,
    /// Longest wait for a request's headers, and for the next request on
    /// an idle connection.
    pub header_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_address: usize,
}

/// Longest wait for open connections to finish at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` completes, then lets open ones
/// finish (for at most [`SHUTDOWN_WAIT`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Slots::new(settings.limits));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout).keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    state.log.event("warn", "accepting a connection failed", &[("error", &e.to_string())]);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = slots.admit(peer.ip()) else {
            state.metrics.record_refused_connection();
            drop(stream);
            continue;
        };
        // Without TCP_NODELAY a reply written as headers then body waits
        // for the client's delayed ACK (40 ms) before the body goes out.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = http.serve_connection(TokioIo::new(StallGuard::new(stream)), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            // Errors here are the client's doing (reset, timeout, garbage).
            let _ = watched.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_WAIT, graceful.shutdown()).await.is_err() {
        state.log.event("warn", "connections still open at shutdown were closed", &[]);
    }
}

/// Open connections, in all and per client address.
#[derive(Debug)]
struct Slots {
    limits: ConnectionLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; frees its slot when dropped.
struct Slot {
    slots: Arc<Slots>,
    address: IpAddr,
}

impl Slots {
    fn new(limits: ConnectionLimits) -> Self {
        Slots { limits, open: Mutex::new((0, HashMap::new())) }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let address = client_address(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_address) = &mut *open;
        let from_address = per_address.get(&address).copied().unwrap_or(0);
        if *total >= self.limits.total || from_address >= self.limits.per_address {
            return None;
        }
        *total += 1;
        per_address.insert(address, from_address + 1);
        Some(Slot { slots: self.clone(), address })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, per_address) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                per_address.remove(&self.address);
            }
        }
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64
/// (one host usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
fn client_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Slowest a client may take its reply while the server waits to write.
pub const MIN_SEND_RATE: u64 = 4 << 10;
/// The period over which [`MIN_SEND_RATE`] is measured.
pub const SEND_WINDOW: Duration = Duration::from_secs(60);

/// A connection that fails writes when the client stops reading: in any
/// [`SEND_WINDOW`] in which a write had to wait, the client must have
/// taken at least [`MIN_SEND_RATE`] x the window. A client that never
/// reads is cut off within two windows; one that reads a trickle, within
/// one. Windows without waiting (the client keeps up, or the server has
/// nothing to send) are not judged.
pub struct StallGuard<T> {
    inner: T,
    window_start: Instant,
    window_bytes: u64,
    window_waited: bool,
    timer: Pin<Box<Sleep>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T) -> Self {
        let now = Instant::now();
        StallGuard {
            inner,
            window_start: now,
            window_bytes: 0,
            window_waited: false,
            timer: Box::pin(tokio::time::sleep_until(now + SEND_WINDOW)),
        }
    }

    /// Closes a finished window: an error if the client was too slow in it.
    fn judge_window(&mut self, now: Instant) -> io::Result<()> {
        if now.duration_since(self.window_start) < SEND_WINDOW {
            return Ok(());
        }
        let needed = MIN_SEND_RATE * SEND_WINDOW.as_secs();
        if self.window_waited && self.window_bytes < needed {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took its reply too slowly; the connection is closed",
            ));
        }
        self.window_start = now;
        self.window_bytes = 0;
        self.window_waited = false;
        Ok(())
    }
}

impl<T> StallGuard<T> {
    /// Counts what a write took; when it has to wait, makes sure we wake
    /// up at the end of the window to judge it even if the client never
    /// reads again.
    fn account(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                self.window_bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                self.window_waited = true;
                let end = self.window_start + SEND_WINDOW;
                if self.timer.deadline() != end {
                    self.timer.as_mut().reset(end);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.judge_window(Instant::now())?;
                    // A new window started: arm its end and wait.
                    let end = self.window_start + SEND_WINDOW;
                    self.timer.as_mut().reset(end);
                    let _ = self.timer.as_mut().poll(cx);
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.judge_window(Instant::now())?;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.account(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.judge_window(Instant::now())?;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.account(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_all() {
        let slots = Arc::new(Slots::new(ConnectionLimits { total: 3, per_address: 2 }));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.admit(a).unwrap();
        let _second = slots.admit(a).unwrap();
        assert!(slots.admit(a).is_none(), "a third connection from one address");
        let _third = slots.admit(b).unwrap();
        assert!(slots.admit(b).is_none(), "a fourth connection in all");
        drop(first);
        assert!(slots.admit(a).is_some(), "a freed slot is free again");
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_address(one), client_address(two));
        assert_ne!(client_address(one), client_address(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_address(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    /// A peer that takes nothing: every write waits.
    struct Stuck;

    impl AsyncWrite for Stuck {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_cut_off() {
        use tokio::io::AsyncWriteExt;
        let mut guard = StallGuard::new(Stuck);
        let started = Instant::now();
        let err = guard.write_all(b"reply").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= SEND_WINDOW * 2, "{:?}", started.elapsed());
    }
}
