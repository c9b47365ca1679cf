//! What every request handler shares.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::log::Logger;
use crate::metrics::Metrics;
use crate::quota::Usage;
use crate::tokens::TokenSet;
use crate::work::WorkLimits;

/// Server settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// Caps every token at `append`.
    pub append_only: bool,
    /// Default cap on each repository's size, bytes.
    pub quota: Option<u64>,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    pub tokens_file: Option<PathBuf>,
    /// `VGER_SERVER_TOKEN` as read at start (kept across reloads).
    pub env_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    tokens: RwLock<Arc<TokenSet>>,
    pub usage: Usage,
    pub metrics: Metrics,
    pub log: Logger,
    pub work: WorkLimits,
    /// Repositories seen on disk (metrics name only these).
    known_repos: Mutex<HashSet<String>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(settings: Settings, tokens: TokenSet, log: Logger) -> Self {
        AppState(Arc::new(Shared {
            settings,
            tokens: RwLock::new(Arc::new(tokens)),
            usage: Usage::default(),
            metrics: Metrics::default(),
            log,
            work: WorkLimits::default(),
            known_repos: Mutex::new(HashSet::new()),
        }))
    }
}

impl Shared {
    pub fn tokens(&self) -> Arc<TokenSet> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn set_tokens(&self, tokens: TokenSet) {
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
    }

    /// Reads the tokens again (SIGHUP); on error the old ones stay.
    pub fn reload_tokens(&self) -> Result<usize, String> {
        let s = &self.settings;
        let tokens = TokenSet::load(s.env_token.as_deref(), s.tokens_file.as_deref())?;
        for warning in &tokens.warnings {
            self.log.event("warn", warning, &[]);
        }
        let count = tokens.len();
        self.set_tokens(tokens);
        Ok(count)
    }

    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.settings.data_dir.join(repo)
    }

    pub fn data_dir(&self) -> &Path {
        &self.settings.data_dir
    }

    /// Whether repository `repo` exists on disk (remembered once seen).
    pub fn repo_exists(&self, repo: &str) -> bool {
        let mut known = self.known_repos.lock().unwrap_or_else(PoisonError::into_inner);
        if known.contains(repo) {
            return true;
        }
        let exists = self.repo_dir(repo).is_dir();
        if exists {
            known.insert(repo.to_owned());
        }
        exists
    }

    /// A write created repository `repo`.
    pub fn note_repo_exists(&self, repo: &str) {
        self.known_repos.lock().unwrap_or_else(PoisonError::into_inner).insert(repo.to_owned());
    }
}
