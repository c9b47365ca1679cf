//! `vger daemon`: checks that it can run unattended, takes the scheduler
//! lock, starts the monitoring server and hands over to the scheduler
//! (see `crate::daemon`). Exits 0 after SIGTERM/SIGINT once the running
//! cycle has finished.

use anyhow::Result;
use clap::Args;

use crate::context::Context;
use crate::daemon::lock;
use crate::daemon::log::{say, LogTail};
use crate::daemon::scheduler::Scheduler;
use crate::daemon::signals::SignalFlags;
use crate::daemon::status::{DaemonStatus, StatusBoard};
use crate::daemon::{http, preflight};
use crate::Outcome;

#[derive(Debug, Args, Clone)]
pub struct DaemonArgs {
    /// Serve a status page, /api/status.json, /healthz and /metrics here (e.g. 127.0.0.1:7575).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Allow --http-listen on an address other than loopback (the page has no authentication).
    #[arg(long)]
    pub http_allow_public: bool,
    /// Also serve the snapshots here, as `vger mount` does (the repository picked with -R, else
    /// the first); the status page links to it.
    #[arg(long, value_name = "ADDR")]
    pub mount: Option<String>,
}

pub fn run(ctx: &Context, args: &DaemonArgs) -> Result<Outcome> {
    let mut ctx = ctx.clone();
    ctx.quiet = true;
    ctx.json = false;
    let listen = match &args.http_listen {
        Some(listen) => Some(http::check_listen(listen, args.http_allow_public)?),
        None => None,
    };
    let scheduled = preflight::scheduled_repositories(&ctx)?;
    let lock = lock::acquire(&ctx.app.config_path, ctx.app.config.cache_dir.as_ref())?;
    let signals = SignalFlags::install()?;
    let board = StatusBoard::new(DaemonStatus {
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        config: ctx.app.config_path.display().to_string(),
        started_at: chrono::Utc::now(),
        running: None,
        cycles: 0,
        reloads: 0,
        last_reload_error: None,
        repositories: Vec::new(),
        mount_url: None,
    });
    let mount = match &args.mount {
        Some(address) => Some(crate::commands::mount::start_for_daemon(&ctx, address, args.http_allow_public)?),
        None => None,
    };
    if let Some(m) = &mount {
        board.lock().mount_url = Some(format!("http://{}/", m.address));
    }
    let bound = match listen {
        Some(addrs) => Some(http::serve(&addrs, board.clone())?),
        None => None,
    };
    let tail = LogTail::capture();
    say(format!(
        "started (PID {}) with {}; lock {}",
        std::process::id(),
        ctx.app.config_path.display(),
        lock.path.display()
    ));
    if let Some(bound) = bound {
        say(format!("status page at http://{bound}/"));
    }
    if let Some(m) = &mount {
        say(format!("snapshots served (WebDAV and web UI) at http://{}/", m.address));
    }
    let outcome = Scheduler::new(ctx, scheduled, signals, board, tail).run();
    if let Some(m) = mount {
        m.stop();
    }
    drop(lock);
    Ok(outcome)
}
