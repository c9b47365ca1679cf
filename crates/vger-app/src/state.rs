//! Small per-repository state kept between runs: consecutive failures
//! (for hooks that alert after N failures in a row), when the last full
//! check ran, and the daemon's last and next run. Stored as JSON in the
//! state folder ([`crate::dirs::state_dir`]), one file per repository.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vger_config::RepositoryConfig;

use crate::dirs::state_dir;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepoState {
    #[serde(default)]
    pub consecutive_failures: u64,
    #[serde(default)]
    pub last_success: Option<String>,
    #[serde(default)]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub last_full_check: Option<String>,
    /// When `vger daemon` last started a cycle here (to catch up a run missed while it was down).
    #[serde(default)]
    pub daemon_last_run: Option<String>,
    /// When it plans the next one.
    #[serde(default)]
    pub daemon_next_run: Option<String>,
}

/// One file per repository: its label (readable) and a hash of its URL
/// (two configs may use the same label for different repositories).
fn file(cache_dir: Option<&PathBuf>, repo: &RepositoryConfig) -> Option<PathBuf> {
    let safe: String =
        repo.label().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let hash = blake3::hash(repo.url.as_bytes()).to_hex();
    state_dir(cache_dir).map(|d| d.join(format!("{safe}-{}.json", &hash[..12])))
}

pub fn load(cache_dir: Option<&PathBuf>, repo: &RepositoryConfig) -> RepoState {
    file(cache_dir, repo)
        .and_then(|p| vger_fs::private::read_private_file(&p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: state is a convenience, never a reason to fail a backup.
/// Written privately (0600 in a 0700 folder, a planted symlink replaced,
/// never followed: `vger_fs::private`).
pub fn save(cache_dir: Option<&PathBuf>, repo: &RepositoryConfig, state: &RepoState) {
    let Some(path) = file(cache_dir, repo) else { return };
    if let Some(dir) = path.parent() {
        let _ = vger_fs::private::create_private_dir(dir);
    }
    if let Ok(bytes) = serde_json::to_vec_pretty(state) {
        let _ = vger_fs::private::write_private_file(&path, &bytes);
    }
}

/// Changes the state of `repo` with `f` and saves it.
pub fn update(cache_dir: Option<&PathBuf>, repo: &RepositoryConfig, f: impl FnOnce(&mut RepoState)) {
    let mut state = load(cache_dir, repo);
    f(&mut state);
    save(cache_dir, repo, &state);
}
