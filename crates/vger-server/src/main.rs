//! The `vger-server` binary: parses its arguments and runs the server
//! ([`vger_server::run`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vger_server::{Config, ConnectionLimits, ConnectionSettings, LogFormat, Logger, TOKEN_ENV};

/// Serve vger repositories over HTTP.
///
/// Access tokens come from VGER_SERVER_TOKEN (one token with full access)
/// and/or --tokens FILE (a YAML list with permissions, repositories and
/// quotas; re-read on SIGHUP). They are never accepted on the command line.
#[derive(Debug, Parser)]
#[command(name = "vger-server", version = env!("VGER_LONG_VERSION"))]
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
    /// Most connections open at once; more are closed on arrival.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Most connections open at once from one client address (an IPv6
    /// client counts by its /64). Behind a reverse proxy every connection
    /// comes from the proxy: raise it, and cap clients in the proxy.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_address: u32,
    /// Seconds a client has to send a request's headers, and the longest
    /// an idle connection stays open.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let log = Logger::new(args.log_format);
    let config = Config {
        data_dir: args.data_dir,
        listen: args.listen,
        tokens_file: args.tokens,
        env_token: std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
        append_only: args.append_only,
        quota: args.quota,
        metrics_public: args.metrics_public,
        connections: ConnectionSettings {
            limits: ConnectionLimits {
                total: args.max_connections as usize,
                per_address: args.max_connections_per_address as usize,
            },
            header_timeout: Duration::from_secs(args.header_timeout),
        },
    };
    match vger_server::run(config, log.clone()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log.event("error", &message, &[]);
            ExitCode::from(2)
        }
    }
}
