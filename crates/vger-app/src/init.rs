//! Creating a repository with what the config says about it: encryption,
//! compression, chunker sizes and a new passphrase.

use vger_config::{Config, EncryptionMode, RepositoryConfig};
use vger_crypto::Algorithm;
use vger_engine::repository::{EncryptionChoice, InitOptions, Repository};
use vger_engine::EngineError;

use crate::{App, AppError};

/// The engine's options for a new repository `repo`.
pub fn init_options(config: &Config, repo: &RepositoryConfig) -> Result<InitOptions, AppError> {
    let encryption = match config.effective_encryption(repo).mode() {
        EncryptionMode::Auto => EncryptionChoice::Auto,
        EncryptionMode::Aes256Gcm => EncryptionChoice::Fixed(Algorithm::Aes256Gcm),
        EncryptionMode::Chacha20Poly1305 => EncryptionChoice::Fixed(Algorithm::Chacha20Poly1305),
        EncryptionMode::None => EncryptionChoice::Fixed(Algorithm::None),
    };
    let mut opts =
        InitOptions { encryption, compression: config.effective_compression(repo), ..InitOptions::default() };
    if let Some(c) = &config.chunker {
        let n = |v: u64| u32::try_from(v).map_err(AppError::ChunkerSize);
        opts.chunker = vger_chunker::ChunkerParams {
            min_size: n(c.min_size)?,
            avg_size: n(c.avg_size)?,
            max_size: n(c.max_size)?,
        };
    }
    Ok(opts)
}

impl App {
    /// Creates `repo` (its local folder too), asking for a new passphrase
    /// unless its encryption is `none`.
    pub fn init(&self, repo: &RepositoryConfig) -> Result<Repository, AppError> {
        self.init_with_chunker(repo, None)
    }

    /// Creates `repo` with the chunker parameters of the existing
    /// repository `from` (opened with its own passphrase) instead of the
    /// config's: `vger copy` from `from` then moves chunks as they are,
    /// and later backups into `repo` deduplicate against the copies.
    pub fn init_like(&self, repo: &RepositoryConfig, from: &RepositoryConfig) -> Result<Repository, AppError> {
        let params = self.open(from)?.chunker_params();
        self.init_with_chunker(repo, Some(params))
    }

    fn init_with_chunker(
        &self,
        repo: &RepositoryConfig,
        chunker: Option<vger_chunker::ChunkerParams>,
    ) -> Result<Repository, AppError> {
        let mut opts = init_options(&self.config, repo)?;
        if let Some(params) = chunker {
            opts.chunker = params;
        }
        let passphrase = if self.config.effective_encryption(repo).mode() == EncryptionMode::None {
            None
        } else {
            let pass = self.passphrase(repo, true)?;
            Some(pass.ok_or_else(|| EngineError::PassphraseRequired { location: repo.url.clone() })?)
        };
        let storage = self.storage(repo, true)?;
        let created = Repository::init(storage, passphrase, opts)?;
        if let Some(dir) = self.open_policy(repo).settings_dir {
            created.remember_settings(&dir)?;
        }
        Ok(created)
    }
}
