//! The daemon's log: time-stamped lines on standard error, and a copy of
//! everything written to standard output and error (by vger, hooks and
//! commands they start) kept in memory, so that a notification can carry
//! the end of a cycle's log.
//!
//! Capturing works by pointing descriptors 1 and 2 at pipes whose reader
//! threads pass each byte on to the original descriptor and keep the last
//! lines. If the pipes cannot be set up, output is left as it was and the
//! tail holds only the daemon's own lines.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const KEPT_LINES: usize = 400;

/// Prints one time-stamped daemon line on standard error.
pub fn say(message: impl AsRef<str>) {
    let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f%:z");
    // One write, so that lines from other threads never land inside it.
    let line = format!("{now} vger daemon: {}\n", message.as_ref());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[derive(Default)]
struct Lines {
    /// Number of lines ever seen; the last `KEPT_LINES` are in `kept`.
    total: u64,
    kept: VecDeque<String>,
}

impl Lines {
    fn push(&mut self, line: String) {
        self.total += 1;
        self.kept.push_back(line);
        while self.kept.len() > KEPT_LINES {
            self.kept.pop_front();
        }
    }
}

/// The captured output; [`LogTail::mark`] and [`LogTail::since`] cut out one cycle's part.
pub struct LogTail {
    lines: Arc<Mutex<Lines>>,
    /// `(fd, saved copy of the original)` while capturing.
    redirected: Vec<(RawFd, RawFd)>,
    readers_done: Vec<mpsc::Receiver<()>>,
}

impl LogTail {
    /// Starts capturing standard output and error.
    pub fn capture() -> LogTail {
        let mut tail =
            LogTail { lines: Arc::new(Mutex::new(Lines::default())), redirected: Vec::new(), readers_done: Vec::new() };
        for fd in [1, 2] {
            if let Some(done) = tail.redirect(fd) {
                tail.readers_done.push(done);
            }
        }
        tail
    }

    fn redirect(&mut self, fd: RawFd) -> Option<mpsc::Receiver<()>> {
        if fd == 1 {
            let _ = std::io::stdout().flush();
        }
        let mut pipe = [0; 2];
        // SAFETY: plain descriptor calls on our own descriptors; each result is checked.
        unsafe {
            if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return None;
            }
            let [read_end, write_end] = pipe;
            let saved = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
            if saved < 0 || libc::dup2(write_end, fd) < 0 {
                libc::close(read_end);
                libc::close(write_end);
                if saved >= 0 {
                    libc::close(saved);
                }
                return None;
            }
            libc::close(write_end);
            self.redirected.push((fd, saved));
            let mut source = std::fs::File::from_raw_fd(read_end);
            // The writer gets its own copy so that restoring `fd` later does not close it under the thread.
            let copy = libc::fcntl(saved, libc::F_DUPFD_CLOEXEC, 3);
            if copy < 0 {
                return None;
            }
            let mut sink = std::fs::File::from_raw_fd(copy);
            let lines = Arc::clone(&self.lines);
            let (done_tx, done_rx) = mpsc::channel();
            std::thread::Builder::new()
                .name(format!("vger-log-{fd}"))
                .spawn(move || {
                    let mut partial = Vec::new();
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = source.read(&mut buf) {
                        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
                        partial.extend_from_slice(chunk);
                        // Whole lines only, so that output and error lines do not interleave mid-line.
                        let mut guard = lock(&lines);
                        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = partial.drain(..=end).collect();
                            let _ = sink.write_all(&line);
                            guard.push(String::from_utf8_lossy(&line).trim_end().to_string());
                        }
                    }
                    let _ = sink.write_all(&partial);
                    let _ = done_tx.send(());
                })
                .ok()?;
            Some(done_rx)
        }
    }

    /// A position in the log, for [`since`](Self::since).
    pub fn mark(&self) -> u64 {
        let _ = std::io::stdout().flush();
        lock(&self.lines).total
    }

    /// At most `max_lines` of the lines written since `mark`.
    pub fn since(&self, mark: u64, max_lines: usize) -> String {
        let _ = std::io::stdout().flush();
        // Give the reader threads a moment to pass on what was just written.
        std::thread::sleep(Duration::from_millis(50));
        let lines = lock(&self.lines);
        let new = usize::try_from(lines.total.saturating_sub(mark)).unwrap_or(usize::MAX).min(lines.kept.len());
        let take = new.min(max_lines);
        let skip = lines.kept.len() - take;
        lines.kept.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for LogTail {
    /// Puts the original descriptors back and lets the readers drain the pipes.
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        for (fd, saved) in self.redirected.drain(..) {
            // SAFETY: restores the descriptor saved in `redirect`.
            unsafe {
                libc::dup2(saved, fd);
                libc::close(saved);
            }
        }
        // A process started by a hook may still hold a pipe: do not wait for it long.
        for done in self.readers_done.drain(..) {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

fn lock(lines: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
