//! `vger mount`: serves one repository's snapshots read-only over WebDAV
//! and as a web UI (crate `vger-mount`) until Ctrl-C or SIGTERM, then
//! exits 0. This file only opens the repository and prints the addresses.

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use vger_engine::snapshots;
use vger_mount::engine_store::EngineStore;
use vger_mount::layout::Scope;
use vger_mount::server::{self, MountOptions};

use crate::context::Context;
use crate::Outcome;

/// The environment variable holding the token clients must send.
pub const TOKEN_VAR: &str = "VGER_MOUNT_TOKEN";

#[derive(Debug, Args, Clone)]
pub struct MountArgs {
    /// Where to listen; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:7576", value_name = "HOST:PORT")]
    pub address: String,
    /// Serve only this source's snapshots (at the root).
    #[arg(long, value_name = "LABEL", conflicts_with = "snapshot")]
    pub source: Option<String>,
    /// Serve one snapshot's tree at the root (an id prefix or `latest`).
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    /// Listen on an address other than loopback (clients then need the token from VGER_MOUNT_TOKEN).
    #[arg(long)]
    pub allow_public: bool,
    /// A host name clients use to reach this server, accepted in the Host header (repeatable).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
}

/// The server options of `args` (also used by `vger daemon --mount`).
pub fn options(args: &MountArgs, title: &str) -> MountOptions {
    MountOptions {
        address: args.address.clone(),
        allow_public: args.allow_public,
        token: std::env::var(TOKEN_VAR).ok(),
        allowed_hosts: args.allow_hosts.clone(),
        scope: match &args.source {
            Some(label) => Scope::Source(label.clone()),
            None => Scope::Repository,
        },
        title: title.to_string(),
    }
}

/// Starts the mount of `vger daemon --mount ADDR`: the repository picked
/// with -R, else the first of the config.
pub fn start_for_daemon(ctx: &Context, address: &str, allow_public: bool) -> Result<server::RunningMount> {
    let repos = ctx.repositories()?;
    let repo_cfg = repos.first().context("--mount: the config has no repository to serve")?;
    let args =
        MountArgs { address: address.to_string(), source: None, snapshot: None, allow_public, allow_hosts: Vec::new() };
    let opts = options(&args, repo_cfg.label());
    server::check_options(&opts).context("--mount")?;
    let store = Arc::new(EngineStore::new(ctx.open(repo_cfg)?)?);
    server::start(store, opts).context("--mount")
}

pub fn run(ctx: &Context, args: &MountArgs) -> Result<Outcome> {
    let repos = ctx.repositories()?;
    let [repo_cfg] = repos.as_slice() else {
        let labels: Vec<&str> = repos.iter().map(|r| r.label()).collect();
        bail!("mount serves one repository: pick it with -R/--repo (labels: {})", labels.join(", "));
    };
    let mut opts = options(args, repo_cfg.label());
    server::check_options(&opts)?;
    let repo = ctx.open(repo_cfg)?;
    if let Some(spec) = &args.snapshot {
        opts.scope = Scope::Snapshot(snapshots::find(&repo, spec)?.id);
    }
    let store = Arc::new(EngineStore::new(repo)?);
    if let Scope::Source(label) = &opts.scope {
        let known = vger_mount::store::SnapshotStore::snapshots(store.as_ref())?.iter().any(|s| &s.source == label);
        if !known {
            bail!(
                "no snapshot of source `{label}` in repository `{}`; `vger list` shows the sources",
                repo_cfg.label()
            );
        }
    }
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("cannot install a signal handler")?;
    let running = server::start(store, opts)?;
    println!("vger mount: serving repository `{}` read-only; Ctrl-C stops", repo_cfg.label());
    if !running.restore_allowed {
        println!("  (restores to this machine are offered only on a loopback address)");
    }
    for (who, address) in server::client_addresses(running.address) {
        println!("  {who:<40} {address}");
    }
    if let Some(signal) = signals.forever().next() {
        tracing::info!("signal {signal}: stopping");
    }
    running.stop();
    println!("vger mount: stopped");
    Ok(Outcome::Ok)
}
