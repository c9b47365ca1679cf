//! How a front end follows and steers what the application layer does:
//! it implements [`FrontEnd`] and receives [`Event`]s as they happen
//! (an operation starts, its progress a few times a second with rate and
//! time left, warnings, each snapshot made, each result, each step of the
//! cycle), words errors its own way, and cancels through its
//! [`CancelFlag`].
//!
//! Events arrive on the thread that runs the operation, except progress
//! reports, which a sampling thread sends; an implementation must not
//! block for long in either.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Serialize;
use vger_config::{LimitsConfig, RepositoryConfig};
use vger_engine::check::CheckReport;
use vger_engine::compact::CompactReport;
use vger_engine::progress::Progress;
use vger_engine::prune::PruneReport;
use vger_engine::Notice;

pub use vger_engine::progress::CancelFlag;

use crate::backup::SnapshotMade;
use crate::cycle::StepResult;
use crate::AppError;

/// The long operations, as progress reports name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Backup,
    Restore,
    Check,
    Compact,
    Prune,
    Copy,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Backup => "backup",
            Operation::Restore => "restore",
            Operation::Check => "check",
            Operation::Compact => "compact",
            Operation::Prune => "prune",
            Operation::Copy => "copy",
        }
    }
}

/// Where an operation stands, sampled from its counters.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressReport {
    pub operation: Operation,
    pub repository: String,
    /// The source being backed up.
    pub source: Option<String>,
    pub files: u64,
    pub bytes: u64,
    /// Bytes the repository did not hold yet (backup).
    pub new_bytes: u64,
    pub errors: u64,
    /// What the operation will have done in all: `None` while not known
    /// (a backup's scan has not finished and there is no parent snapshot).
    pub total_files: Option<u64>,
    pub total_bytes: Option<u64>,
    /// The totals are an estimate (a backup's parent snapshot's) that a
    /// count will replace.
    pub totals_estimated: bool,
    /// Over the last few seconds.
    pub bytes_per_sec: f64,
    /// When the total is known and bytes are moving.
    pub eta_seconds: Option<f64>,
    /// The file being read or written.
    pub current: String,
    pub elapsed_seconds: f64,
    /// The operation ended: the last report.
    pub done: bool,
}

/// Something that happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A repository's backup is about to start its sources: a binary
    /// applies the process-wide `limits` it wants (vger sets niceness and
    /// the I/O class; a desktop app would not).
    BackupStarting {
        repository: &'a RepositoryConfig,
        limits: &'a LimitsConfig,
    },
    /// An operation starts; progress reports follow until one is `done`.
    Started {
        operation: Operation,
        repository: &'a str,
        source: Option<&'a str>,
    },
    Progress(&'a ProgressReport),
    /// Worth showing, but not a failure.
    Notice {
        repository: &'a str,
        notice: &'a Notice,
    },
    /// A source's snapshot is committed (its skipped files are in the report).
    SnapshotCreated(&'a SnapshotMade),
    /// One of `sources` sources failed; the others go on.
    SourceFailed {
        repository: &'a str,
        source: &'a str,
        error: &'a AppError,
        sources: usize,
    },
    Pruned {
        repository: &'a str,
        report: &'a PruneReport,
    },
    Compacted {
        repository: &'a str,
        report: &'a CompactReport,
    },
    /// A check ended (a failed check also returns [`AppError::Damaged`]).
    Checked {
        repository: &'a str,
        report: &'a CheckReport,
        verify_data: bool,
        distrust_server: bool,
    },
    /// A step of the default cycle ended.
    StepEnded {
        repository: &'a str,
        step: &'a StepResult,
    },
}

/// What a front end supplies.
pub trait FrontEnd: Send + Sync {
    fn event(&self, _event: &Event<'_>) {}

    /// How often it wants progress reports; `None`: never.
    fn progress_interval(&self) -> Option<Duration> {
        None
    }

    /// The flag it sets to cancel what runs.
    fn cancel_flag(&self) -> CancelFlag {
        CancelFlag::default()
    }

    /// `error` in one line, in the front end's words (hooks get it as
    /// `{error}`, the cycle's summary as a step's detail).
    fn describe(&self, error: &AppError) -> String {
        crate::error::one_line(error)
    }
}

/// A front end that shows nothing and never cancels.
pub struct Silent;

impl FrontEnd for Silent {}

/// New progress counters for an operation of `front`, stopped by its flag.
pub fn progress_for(front: &dyn FrontEnd) -> Progress {
    Progress::with_cancel(front.cancel_flag())
}

/// What one monitored operation is.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub operation: Operation,
    pub repository: &'a str,
    pub source: Option<&'a str>,
}

/// Runs `work` while a sampling thread sends `front` progress reports of
/// `progress`: [`Event::Started`] first, reports at the front end's
/// interval, and a last one marked `done` when `work` returns.
pub fn monitored<T>(front: &dyn FrontEnd, progress: &Progress, subject: Subject<'_>, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    front.event(&Event::Started {
        operation: subject.operation,
        repository: subject.repository,
        source: subject.source,
    });
    let mut rate = RateWindow::new(started);
    let result = std::thread::scope(|scope| {
        // Dropping `stop` ends the sampler at once, not after its sleep.
        let (stop, stopped) = mpsc::channel::<()>();
        if let Some(every) = front.progress_interval() {
            let rate = &mut rate;
            scope.spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    front.event(&Event::Progress(&report(progress, subject, rate, started, false)));
                }
            });
        }
        let result = work();
        drop(stop);
        result
    });
    front.event(&Event::Progress(&report(progress, subject, &mut rate, started, true)));
    result
}

/// Bytes over the last few seconds, from samples.
struct RateWindow {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

/// How far back the rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);

impl RateWindow {
    fn new(started: Instant) -> Self {
        RateWindow { samples: std::collections::VecDeque::from([(started, 0)]) }
    }

    fn rate(&mut self, now: Instant, bytes: u64) -> f64 {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|(t, _)| now - *t > RATE_WINDOW) {
            self.samples.pop_front();
        }
        let Some((t0, b0)) = self.samples.front() else { return 0.0 };
        let seconds = (now - *t0).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        bytes.saturating_sub(*b0) as f64 / seconds
    }
}

fn report(
    progress: &Progress,
    subject: Subject<'_>,
    rate: &mut RateWindow,
    started: Instant,
    done: bool,
) -> ProgressReport {
    let now = Instant::now();
    let bytes = progress.get(&progress.bytes);
    let total_bytes = progress.total_bytes();
    let bytes_per_sec = rate.rate(now, bytes);
    let eta_seconds = match total_bytes {
        Some(total) if bytes_per_sec > 0.0 && !done => Some(total.saturating_sub(bytes) as f64 / bytes_per_sec),
        _ => None,
    };
    ProgressReport {
        operation: subject.operation,
        repository: subject.repository.to_string(),
        source: subject.source.map(str::to_string),
        files: progress.get(&progress.files),
        bytes,
        new_bytes: progress.get(&progress.new_bytes),
        errors: progress.get(&progress.errors),
        total_files: progress.total_files(),
        total_bytes,
        totals_estimated: progress.totals_estimated(),
        bytes_per_sec,
        eta_seconds,
        current: progress.current(),
        elapsed_seconds: (now - started).as_secs_f64(),
        done,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<ProgressReport>>);

    impl FrontEnd for Recorder {
        fn event(&self, event: &Event<'_>) {
            if let Event::Progress(r) = event {
                self.0.lock().unwrap().push((*r).clone());
            }
        }

        fn progress_interval(&self) -> Option<Duration> {
            Some(Duration::from_millis(10))
        }
    }

    #[test]
    fn reports_carry_rate_total_and_eta_and_end_with_done() {
        let front = Recorder::default();
        let progress = progress_for(&front);
        progress.set_total_bytes(1000);
        let subject = Subject { operation: Operation::Restore, repository: "r", source: None };
        monitored(&front, &progress, subject, || {
            for _ in 0..10 {
                progress.add_bytes(50);
                progress.set_current("a/file");
                std::thread::sleep(Duration::from_millis(15));
            }
        });
        let reports = front.0.into_inner().unwrap();
        assert!(reports.len() >= 3, "{reports:?}");
        let last = reports.last().unwrap();
        assert!(last.done && last.bytes == 500 && last.total_bytes == Some(1000));
        assert!(reports[..reports.len() - 1].iter().all(|r| !r.done));
        let moving = reports.iter().find(|r| r.bytes > 0 && !r.done).unwrap();
        assert!(moving.bytes_per_sec > 0.0, "{moving:?}");
        let eta = moving.eta_seconds.unwrap();
        assert!(eta > 0.0 && eta < 60.0, "{moving:?}");
        assert_eq!(moving.current, "a/file");
    }

    #[test]
    fn a_front_end_without_an_interval_gets_only_the_last_report() {
        struct Quiet(Mutex<u32>);
        impl FrontEnd for Quiet {
            fn event(&self, event: &Event<'_>) {
                if matches!(event, Event::Progress(_)) {
                    *self.0.lock().unwrap() += 1;
                }
            }
        }
        let front = Quiet(Mutex::new(0));
        let progress = progress_for(&front);
        let subject = Subject { operation: Operation::Check, repository: "r", source: None };
        monitored(&front, &progress, subject, || std::thread::sleep(Duration::from_millis(30)));
        assert_eq!(*front.0.lock().unwrap(), 1);
    }
}
