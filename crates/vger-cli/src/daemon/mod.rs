//! `vger daemon`: runs the default cycle on a schedule, in the foreground
//! (for systemd `Type=simple`), with a status page, Prometheus metrics
//! and HTTP notifications.
//!
//! | file | what it does |
//! |---|---|
//! | `schedule` | a repository's effective `schedule`: `every` or cron, on_startup, jitter |
//! | `plan` | the timetable: next slot and due time per repository, catch-up, clock jumps |
//! | `scheduler` | the loop: wait, run one due repository's cycle, record, notify, reschedule |
//! | `preflight` | refuses to start without a schedule or a non-interactive passphrase |
//! | `lock` | one daemon per config (flock) |
//! | `signals` | SIGHUP reload, SIGUSR1 run now, SIGTERM/SIGINT stop |
//! | `status` | what the daemon knows, shared with the HTTP server |
//! | `http`, `page`, `metrics` | the status page, `/api/status.json`, `/healthz`, `/metrics` |
//! | `notify` | HTTP pings on start, success and failure |
//! | `log` | time-stamped log lines and the captured tail of each cycle's output |

pub mod http;
pub mod lock;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod page;
pub mod plan;
pub mod preflight;
pub mod schedule;
pub mod scheduler;
pub mod signals;
pub mod status;
