//! What every command needs: the application layer over the loaded
//! config (with a terminal prompt for passphrases), the selected
//! repositories and how to print.

use std::io::IsTerminal;

use anyhow::{bail, Context as _, Result};
use vger_app::passphrase::PassphraseRequest;
use vger_app::{App, AppError};
use vger_config::{Config, RepositoryConfig};
use vger_engine::repository::Repository;

use crate::cli::Cli;

#[derive(Clone)]
pub struct Context {
    pub app: App,
    pub json: bool,
    pub quiet: bool,
    pub repo_filter: Option<String>,
}

impl Context {
    pub fn load(cli: &Cli) -> Result<Self> {
        let loaded = Config::load(cli.config.as_deref())?;
        if let Some(warning) = vger_config::exposed_secrets_warning(&loaded.path, &loaded.config) {
            eprintln!("vger: warning: {warning}");
        }
        tracing::info!(
            "config {}: {} repositories, {} sources",
            loaded.path.display(),
            loaded.config.repositories.len(),
            loaded.config.sources().len()
        );
        Ok(Self {
            app: App::from_loaded(loaded).with_prompt(terminal_prompt),
            json: cli.json,
            quiet: cli.quiet || cli.json,
            repo_filter: cli.repo.clone(),
        })
    }

    pub fn repositories(&self) -> Result<Vec<&RepositoryConfig>> {
        Ok(self.app.repositories(self.repo_filter.as_deref())?)
    }

    /// Prints a heading when several repositories are processed in turn.
    pub fn heading(&self, repo: &RepositoryConfig, count: usize) {
        if count > 1 && !self.json {
            println!("== {} ({}) ==", repo.label(), repo.url);
        }
    }

    /// Opens a repository, asking for the passphrase only if it is encrypted.
    pub fn open(&self, repo: &RepositoryConfig) -> Result<Repository> {
        Ok(self.app.open(repo)?)
    }
}

/// The passphrase prompt of the application layer: asks on the terminal.
fn terminal_prompt(request: &PassphraseRequest<'_>) -> Result<Option<Vec<u8>>, AppError> {
    let prompt = format!("Passphrase for {}: ", request.repository.label());
    prompt_passphrase(&prompt, request.confirm).map_err(|e| AppError::Prompt(e.into()))
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
