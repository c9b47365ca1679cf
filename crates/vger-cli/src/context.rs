//! What every command needs: the loaded config, the selected repositories,
//! their storage and their passphrases.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use vger_config::{Config, RepositoryConfig};
use vger_engine::repository::Repository;
use vger_engine::EngineError;
use vger_storage::{LocalStorage, Storage};

use crate::cli::Cli;

#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub config_path: PathBuf,
    pub json: bool,
    pub quiet: bool,
    pub repo_filter: Option<String>,
}

impl Context {
    pub fn load(cli: &Cli) -> Result<Self> {
        let loaded = Config::load(cli.config.as_deref())?;
        tracing::info!(
            "config {}: {} repositories, {} sources",
            loaded.path.display(),
            loaded.config.repositories.len(),
            loaded.config.sources().len()
        );
        Ok(Self {
            config: loaded.config,
            config_path: loaded.path,
            json: cli.json,
            quiet: cli.quiet || cli.json,
            repo_filter: cli.repo.clone(),
        })
    }

    pub fn repositories(&self) -> Result<Vec<&RepositoryConfig>> {
        Ok(self.config.select_repositories(self.repo_filter.as_deref())?)
    }

    /// Prints a heading when several repositories are processed in turn.
    pub fn heading(&self, repo: &RepositoryConfig, count: usize) {
        if count > 1 && !self.json {
            println!("== {} ({}) ==", repo.label(), repo.url);
        }
    }

    pub fn storage(&self, repo: &RepositoryConfig, create: bool) -> Result<Arc<dyn Storage>> {
        open_storage_with(&self.config, repo, create)
    }

    /// Opens a repository, asking for the passphrase only if it is encrypted.
    pub fn open(&self, repo: &RepositoryConfig) -> Result<Repository> {
        let repo_cfg = repo;
        let storage = self.storage(repo, false)?;
        let ask = || -> vger_engine::Result<Vec<u8>> {
            self.passphrase(repo, false)
                .map_err(|e| EngineError::Other(format!("{e:#}")))?
                .ok_or_else(|| EngineError::PassphraseRequired { location: repo.url.clone() })
        };
        let started = std::time::Instant::now();
        let repo = Repository::open(storage, &ask)?
            .with_index_cache(crate::state::index_cache_dir(self.config.cache_dir.as_ref()));
        tracing::info!(
            "opened repository `{}` ({}, encryption {}) in {:.0} ms",
            repo_cfg.label(),
            repo.location(),
            repo.config().encryption,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(repo)
    }

    /// The passphrase: VGER_PASSPHRASE, `passcommand`, `passphrase`, or a
    /// prompt on a terminal (asked twice when `confirm`).
    pub fn passphrase(&self, repo: &RepositoryConfig, confirm: bool) -> Result<Option<Vec<u8>>> {
        if let Some(p) = self.passphrase_without_prompt(repo)? {
            return Ok(Some(p));
        }
        prompt_passphrase(&format!("Passphrase for {}: ", repo.label()), confirm)
    }

    /// The passphrase from VGER_PASSPHRASE, `passcommand` or `passphrase`;
    /// `None` when only a prompt could supply it (the daemon refuses that).
    pub fn passphrase_without_prompt(&self, repo: &RepositoryConfig) -> Result<Option<Vec<u8>>> {
        if let Ok(p) = std::env::var("VGER_PASSPHRASE") {
            return Ok(Some(p.into_bytes()));
        }
        let enc = self.config.effective_encryption(repo);
        if let Some(cmd) = &enc.passcommand {
            return run_passcommand(cmd).map(Some);
        }
        Ok(enc.passphrase.as_ref().map(|p| p.clone().into_bytes()))
    }
}

fn run_passcommand(cmd: &str) -> Result<Vec<u8>> {
    let out =
        Command::new("sh").arg("-c").arg(cmd).output().with_context(|| format!("could not run passcommand `{cmd}`"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("passcommand `{cmd}` failed ({}): {}", out.status, err.trim());
    }
    let mut p = out.stdout;
    while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        p.pop();
    }
    if p.is_empty() {
        bail!("passcommand `{cmd}` printed an empty passphrase");
    }
    Ok(p)
}

/// Reads a passphrase from the terminal; `None` when there is no terminal.
pub fn prompt_passphrase(prompt: &str, confirm: bool) -> Result<Option<Vec<u8>>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let first = rpassword::prompt_password(prompt).context("could not read the passphrase")?;
    if confirm {
        let again = rpassword::prompt_password("Repeat it: ").context("could not read the passphrase")?;
        if again != first {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    if first.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    Ok(Some(first.into_bytes()))
}

/// Maps a repository URL to a storage backend, with the retry, connection
/// and bandwidth layers configured from the repository's settings.
pub fn open_storage_with(
    config: &vger_config::Config,
    repo: &RepositoryConfig,
    create: bool,
) -> Result<Arc<dyn Storage>> {
    let limits = config.effective_limits(repo);
    let mib = |v: Option<f64>| v.map(|m| (m * 1048576.0) as u64);
    let mut opts = vger_storage::BackendOptions {
        region: repo.region.clone(),
        access_key_id: repo.access_key_id.clone(),
        secret_access_key: repo.secret_access_key.clone(),
        allow_insecure_http: repo.allow_insecure_http,
        s3_addressing: repo.s3_addressing.clone(),
        s3_soft_delete: repo.s3_soft_delete,
        sftp_key: repo.sftp_key.clone(),
        sftp_known_hosts: repo.sftp_known_hosts.clone(),
        access_token: repo.access_token.clone(),
        upload_bytes_per_sec: mib(limits.upload_mib_per_sec),
        download_bytes_per_sec: mib(limits.download_mib_per_sec),
        ..vger_storage::BackendOptions::default()
    };
    if let Some(c) = limits.connections {
        opts.connections = c;
    }
    if let Some(r) = &repo.retry {
        opts.retry = vger_storage::RetryPolicy {
            max_retries: r.max_retries,
            delay: std::time::Duration::from_millis(r.retry_delay_ms),
            max_delay: std::time::Duration::from_millis(r.retry_max_delay_ms),
        };
    }
    let url = repo.url.as_str();
    let is_local = !url.contains("://") || url.starts_with("file://");
    if is_local {
        let path = absolute(Path::new(url.strip_prefix("file://").unwrap_or(url)))?;
        if !create && !path.exists() {
            bail!(
                "no vger repository at {} (the folder does not exist); run `vger init` first, or check `url` of repository `{}`",
                path.display(),
                repo.label()
            );
        }
        let storage: Arc<dyn Storage> =
            if create { Arc::new(LocalStorage::create(&path)?) } else { Arc::new(LocalStorage::open(&path)?) };
        // Local errors are never transient, so this layer only logs each
        // request (`-vv`); no bandwidth or connection limits on local disks.
        return Ok(Arc::new(vger_storage::layers::RetryingStorage::new(storage, opts.retry)));
    }
    vger_storage::open_url(url, &opts, create).with_context(|| format!("repository `{}`", repo.label()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context("cannot read the current directory")?.join(p))
    }
}
