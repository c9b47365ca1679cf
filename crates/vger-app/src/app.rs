//! [`App`]: a loaded config and the front end's passphrase prompt; opens
//! the repositories the config names.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use vger_config::{Config, LoadedConfig, RepositoryConfig};
use vger_engine::repository::{OpenPolicy, Repository};
use vger_engine::EngineError;
use vger_storage::Storage;

use crate::passphrase::{PassphraseRequest, PromptFn};
use crate::{dirs, passphrase, storage, AppError};

/// What every operation of a front end starts from.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    /// The file the config was read from (messages name it).
    pub config_path: PathBuf,
    prompt: Option<Arc<PromptFn>>,
}

impl App {
    pub fn new(config: Config, config_path: PathBuf) -> Self {
        App { config, config_path, prompt: None }
    }

    pub fn from_loaded(loaded: LoadedConfig) -> Self {
        Self::new(loaded.config, loaded.path)
    }

    /// Asks the user with `prompt` when no other source gives a passphrase.
    pub fn with_prompt(
        mut self,
        prompt: impl Fn(&PassphraseRequest<'_>) -> Result<Option<Vec<u8>>, AppError> + Send + Sync + 'static,
    ) -> Self {
        self.prompt = Some(Arc::new(prompt));
        self
    }

    /// The repository named by label or URL, or all of them.
    pub fn repositories(&self, name_or_url: Option<&str>) -> Result<Vec<&RepositoryConfig>, AppError> {
        Ok(self.config.select_repositories(name_or_url)?)
    }

    /// The storage of `repo`; `create` makes a missing local folder.
    pub fn storage(&self, repo: &RepositoryConfig, create: bool) -> Result<Arc<dyn Storage>, AppError> {
        storage::open_storage(&self.config, repo, create)
    }

    /// Opens `repo`, asking for its passphrase only if it is encrypted.
    pub fn open(&self, repo: &RepositoryConfig) -> Result<Repository, AppError> {
        let storage = self.storage(repo, false)?;
        // The engine asks through a callback typed with its own error;
        // the passphrase source's error is kept here and returned as is.
        let failed: RefCell<Option<AppError>> = RefCell::new(None);
        let ask = || -> vger_engine::Result<Vec<u8>> {
            match self.passphrase(repo, false) {
                Ok(Some(p)) => Ok(p),
                Ok(None) => Err(EngineError::PassphraseRequired { location: repo.url.clone() }),
                Err(e) => {
                    let text = e.to_string();
                    *failed.borrow_mut() = Some(e);
                    Err(EngineError::Other(text))
                }
            }
        };
        let started = std::time::Instant::now();
        let opened = Repository::open_with(storage, &ask, &self.open_policy(repo));
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        let opened = opened?.with_index_cache(dirs::index_cache_dir(self.config.cache_dir.as_ref()));
        tracing::info!(
            "opened repository `{}` ({}, encryption {}) in {:.0} ms",
            repo.label(),
            opened.location(),
            opened.config().encryption,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(opened)
    }

    /// What opening `repo` accepts: no encryption only when the config
    /// says `mode: none`, settings as remembered in the state folder, key
    /// slots within the Argon2 cap.
    pub fn open_policy(&self, repo: &RepositoryConfig) -> OpenPolicy {
        let enc = self.config.effective_encryption(repo);
        let mut kdf_limit = vger_crypto::KdfLimit::default();
        if let Some(bytes) = enc.kdf_max_memory {
            kdf_limit.max_memory_kib = u32::try_from(bytes / 1024).unwrap_or(u32::MAX);
        }
        if let Some(passes) = enc.kdf_max_iterations {
            kdf_limit.max_iterations = passes;
        }
        OpenPolicy {
            unencrypted_allowed: enc.mode() == vger_config::EncryptionMode::None,
            settings_dir: dirs::settings_dir(self.config.cache_dir.as_ref()),
            kdf_limit,
        }
    }

    /// The passphrase of `repo` from the first source that has one, the
    /// prompt last (asked to confirm when `confirm`).
    pub fn passphrase(&self, repo: &RepositoryConfig, confirm: bool) -> Result<Option<Vec<u8>>, AppError> {
        if let Some(p) = self.passphrase_without_prompt(repo)? {
            return Ok(Some(p));
        }
        match &self.prompt {
            Some(prompt) => prompt(&PassphraseRequest { repository: repo, confirm }),
            None => Ok(None),
        }
    }

    /// The passphrase from `VGER_PASSPHRASE`, `passcommand` or `passphrase`;
    /// `None` when only a prompt could supply it (the daemon refuses that).
    pub fn passphrase_without_prompt(&self, repo: &RepositoryConfig) -> Result<Option<Vec<u8>>, AppError> {
        passphrase::without_prompt(&self.config, repo)
    }
}
