//! vger-server: serves vger repositories over HTTP (behind a TLS reverse
//! proxy) with per-token permissions, an append-only mode that a
//! compromised client cannot get around, quotas, server-side pack
//! verification and repacking. See `docs/server.md`.
//!
//! The binary (`main.rs`) only parses its arguments and calls [`run`].
//! The parts that read untrusted input are public so that fuzz targets can
//! call them without a server: [`route::parse_str`] (a request target to
//! what it addresses, with [`layout::classify`] for keys) and
//! [`tokens::parse_tokens_file`].
//!
//! ```
//! use vger_server::route::{parse_str, RepoAction, Target};
//!
//! let id = "ab".repeat(32);
//! let target = parse_str(&format!("/laptop/snapshots/{id}")).unwrap();
//! assert!(matches!(target, Target::Repo { action: RepoAction::Object(_), .. }));
//! assert!(parse_str("/laptop/a/a/a").is_err());
//! assert!(parse_str("/laptop/%2e%2e/config").is_err());
//! ```

mod app;
mod auth;
mod body;
mod disk;
pub mod error;
pub mod layout;
mod listing;
mod log;
mod metrics;
mod objects;
mod packs;
mod quota;
pub mod route;
mod serve;
mod state;
pub mod tokens;
mod upload;
mod work;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

pub use crate::log::{LogFormat, Logger};
pub use crate::serve::{ConnectionLimits, ConnectionSettings};
use crate::state::{AppState, Settings};
use crate::tokens::TokenSet;
pub use crate::tokens::TOKEN_ENV;

/// Temporary files older than this are removed at start (a crash left them).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub tokens_file: Option<PathBuf>,
    /// `VGER_SERVER_TOKEN`, if set.
    pub env_token: Option<String>,
    pub append_only: bool,
    pub quota: Option<u64>,
    pub metrics_public: bool,
    pub connections: ConnectionSettings,
}

/// Serves until SIGTERM or Ctrl-C. `Err` is a one-line message for the
/// operator (nothing was served).
pub async fn run(config: Config, log: Logger) -> Result<(), String> {
    match std::fs::metadata(&config.data_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("--data-dir {} is not a directory", config.data_dir.display())),
        Err(e) => return Err(format!("--data-dir {}: {e}; create it first", config.data_dir.display())),
    }
    writer::probe(&config.data_dir)?;
    let tokens = TokenSet::load(config.env_token.as_deref(), config.tokens_file.as_deref())?;
    for warning in &tokens.warnings {
        log.event("warn", warning, &[]);
    }
    let settings = Settings {
        data_dir: config.data_dir.clone(),
        append_only: config.append_only,
        quota: config.quota,
        metrics_public: config.metrics_public,
        tokens_file: config.tokens_file.clone(),
        env_token: config.env_token.clone(),
    };
    let token_count = tokens.len().to_string();
    let state = AppState::new(settings, tokens, log.clone());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot listen on {}: {e}", config.listen))?.to_string();
    let quota = config.quota.map(quota::human).unwrap_or_else(|| "none".into());
    let data_dir = config.data_dir.display().to_string();
    let append_only = config.append_only.to_string();
    let limits = config.connections.limits;
    let (total, per_address) = (limits.total.to_string(), limits.per_address.to_string());
    log.event(
        "info",
        &format!("listening on {addr}"),
        &[
            ("addr", &addr),
            ("data_dir", &data_dir),
            ("tokens", &token_count),
            ("append_only", &append_only),
            ("quota", &quota),
            ("max_connections", &total),
            ("max_connections_per_address", &per_address),
        ],
    );

    let sweep_dir = config.data_dir.clone();
    let sweep_log = log.clone();
    tokio::task::spawn_blocking(move || {
        match vger_storage::local::walk::remove_stale_temp_files(&sweep_dir, STALE_TEMP_AGE) {
            Ok(0) => {}
            Ok(n) => sweep_log.event("info", "removed stale temporary files", &[("count", &n.to_string())]),
            Err(e) => sweep_log.event("warn", "sweeping temporary files failed", &[("error", &e.to_string())]),
        }
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
    serve::serve(listener, app::router(state.clone()), state, config.connections, shutdown).await;
    log.event("info", "stopped", &[]);
    Ok(())
}
