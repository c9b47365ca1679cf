//! `vger-server`: serves vger repositories over HTTP (behind a TLS
//! reverse proxy) with per-token permissions, an append-only mode that a
//! compromised client cannot get around, quotas, server-side pack
//! verification and repacking. See `docs/server.md`.

mod app;
mod auth;
mod error;
mod fsutil;
mod listing;
mod log;
mod metrics;
mod objects;
mod packs;
mod quota;
mod route;
mod state;
mod tokens;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum::serve::ListenerExt;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use crate::log::{LogFormat, Logger};
use crate::state::{AppState, Settings};
use crate::tokens::{TokenSet, TOKEN_ENV};

/// Temporary files older than this are removed at start (a crash left them).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Serve vger repositories over HTTP.
///
/// Access tokens come from VGER_SERVER_TOKEN (one token with full access)
/// and/or --tokens FILE (a YAML list with permissions, repositories and
/// quotas; re-read on SIGHUP). They are never accepted on the command line.
#[derive(Debug, Parser)]
#[command(name = "vger-server", version)]
struct Args {
    /// Directory holding one folder per repository.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Address to listen on (plain HTTP: put a TLS proxy in front).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8585")]
    listen: String,
    /// YAML tokens file (see docs/server.md).
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Caps every token at `append`: nothing committed can be replaced or deleted.
    #[arg(long)]
    append_only: bool,
    /// Largest size of each repository, e.g. 500GiB.
    #[arg(long, value_name = "SIZE", value_parser = vger_config::parse_size)]
    quota: Option<u64>,
    /// Log lines as text or JSON objects.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve /metrics without a token (for a local Prometheus).
    #[arg(long)]
    metrics_public: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let log = Logger::new(args.log_format);
    match run(args, log.clone()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log.event("error", &message, &[]);
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args, log: Logger) -> Result<(), String> {
    match std::fs::metadata(&args.data_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("--data-dir {} is not a directory", args.data_dir.display())),
        Err(e) => return Err(format!("--data-dir {}: {e}; create it first", args.data_dir.display())),
    }
    let env_token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let tokens = TokenSet::load(env_token.as_deref(), args.tokens.as_deref())?;
    for warning in &tokens.warnings {
        log.event("warn", warning, &[]);
    }
    let settings = Settings {
        data_dir: args.data_dir.clone(),
        append_only: args.append_only,
        quota: args.quota,
        metrics_public: args.metrics_public,
        tokens_file: args.tokens.clone(),
        env_token,
    };
    let token_count = tokens.len().to_string();
    let state = AppState::new(settings, tokens, log.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot listen on {}: {e}", args.listen))?.to_string();
    let quota = args.quota.map(quota::human).unwrap_or_else(|| "none".into());
    let data_dir = args.data_dir.display().to_string();
    let append_only = args.append_only.to_string();
    log.event(
        "info",
        &format!("listening on {addr}"),
        &[
            ("addr", &addr),
            ("data_dir", &data_dir),
            ("tokens", &token_count),
            ("append_only", &append_only),
            ("quota", &quota),
        ],
    );

    let sweep_dir = args.data_dir.clone();
    let sweep_log = log.clone();
    tokio::task::spawn_blocking(move || match fsutil::remove_stale_temp_files(&sweep_dir, STALE_TEMP_AGE) {
        Ok(0) => {}
        Ok(n) => sweep_log.event("info", "removed stale temporary files", &[("count", &n.to_string())]),
        Err(e) => sweep_log.event("warn", "sweeping temporary files failed", &[("error", &e.to_string())]),
    });
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| format!("installing the SIGHUP handler: {e}"))?;
    let reload_state = state.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match reload_state.reload_tokens() {
                Ok(n) => reload_state.log.event("info", "tokens reloaded", &[("tokens", &n.to_string())]),
                Err(e) => reload_state.log.event(
                    "error",
                    "token reload failed; the old tokens stay in force",
                    &[("error", &e)],
                ),
            }
        }
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| format!("installing the SIGTERM handler: {e}"))?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    // Without TCP_NODELAY a reply written as headers then body waits for
    // the client's delayed ACK (40 ms) before the body goes out.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    log.event("info", "stopped", &[]);
    Ok(())
}
