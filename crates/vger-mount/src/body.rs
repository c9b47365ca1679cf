//! Response bodies produced by blocking code (the engine is synchronous):
//! a task on tokio's blocking pool writes into a [`BodyWriter`], whose
//! bytes travel through a bounded channel to the client. A slow client
//! stalls the writer instead of growing a buffer; a client that goes away
//! makes the next write fail, which ends the task.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes gathered before a send: large enough to keep the channel cheap.
const PIECE: usize = 256 << 10;
/// Pieces in flight between the writer and the connection.
const PIECES_IN_FLIGHT: usize = 4;

/// The writing end of a streamed body.
pub struct BodyWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl BodyWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx.blocking_send(Ok(piece)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }

    /// Ends the body with an error: the client sees a cut connection
    /// rather than a complete-looking short file.
    pub fn fail(mut self, error: io::Error) {
        self.buf.clear();
        let _ = self.tx.blocking_send(Err(error));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PIECE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A body filled by `produce` on the blocking pool. An error it returns
/// cuts the connection (the status line has already gone out).
pub fn streamed<F>(produce: F) -> Body
where
    F: FnOnce(&mut BodyWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(PIECES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter { tx, buf: Vec::with_capacity(PIECE) };
        match produce(&mut w).and_then(|()| w.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                tracing::warn!("streamed response failed: {e}");
                w.fail(e);
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}
