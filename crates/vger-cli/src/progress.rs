//! Progress bars on a terminal (stderr), nothing otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vger_engine::progress::Progress;

/// Set by `--json --progress`: progress is written as JSON lines on stderr.
pub static JSON_LINES: AtomicBool = AtomicBool::new(false);

fn json_lines(progress: Arc<Progress>, verb: &'static str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = std::time::Instant::now() - Duration::from_secs(1);
        loop {
            let done = stop.load(Ordering::Relaxed);
            if done || last.elapsed() >= Duration::from_secs(1) {
                last = std::time::Instant::now();
                let line = serde_json::json!({
                    "type": "progress",
                    "command": verb,
                    "done": done,
                    "files": progress.get(&progress.files),
                    "bytes": progress.get(&progress.bytes),
                    "new_bytes": progress.get(&progress.new_bytes),
                    "total_bytes": progress.get(&progress.total_bytes),
                    "errors": progress.get(&progress.errors),
                    "current": progress.current(),
                });
                eprintln!("{line}");
            }
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Draws `progress` until dropped.
pub struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    pub fn start(progress: Arc<Progress>, verb: &'static str, quiet: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if JSON_LINES.load(Ordering::Relaxed) {
            let thread = json_lines(progress, verb, stop.clone());
            return Self { stop, thread: Some(thread) };
        }
        if quiet || !std::io::stderr().is_terminal() {
            return Self { stop, thread: None };
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let total = progress.get(&progress.total_bytes);
            let bar = if total > 0 { ProgressBar::new(total) } else { ProgressBar::no_length() };
            let template = if total > 0 {
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
            } else {
                "{prefix} {spinner} {bytes} {binary_bytes_per_sec} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(verb);
            while !flag.load(Ordering::Relaxed) {
                bar.set_position(progress.get(&progress.bytes));
                let files = progress.get(&progress.files);
                let mut current = progress.current();
                if current.len() > 40 {
                    let cut = current.len() - 40;
                    let cut = (cut..current.len()).find(|i| current.is_char_boundary(*i)).unwrap_or(cut);
                    current = format!("...{}", &current[cut..]);
                }
                bar.set_message(format!("{files} files {current}"));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
