//! Small per-repository state kept between runs: consecutive failures
//! (for hooks that alert after N failures in a row) and when the last full
//! check ran, and the daemon's last and next run. Stored as JSON under `cache_dir` or `$XDG_STATE_HOME/vger`.
//! Also where the engine keeps its chunk-index cache ([`index_cache_dir`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vger_config::RepositoryConfig;

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

fn state_dir(cache_dir: Option<&PathBuf>) -> Option<PathBuf> {
    user_dir(cache_dir, "state", "XDG_STATE_HOME", "vger", ".local/state/vger")
}

/// `cache_dir/<under_cache_dir>` if configured, else `$<xdg_var>/<under_xdg>`
/// (the XDG base directory), else `~/<under_home>`.
fn user_dir(
    cache_dir: Option<&PathBuf>,
    under_cache_dir: &str,
    xdg_var: &str,
    under_xdg: &str,
    under_home: &str,
) -> Option<PathBuf> {
    if let Some(d) = cache_dir {
        return Some(d.join(under_cache_dir));
    }
    if let Some(d) = std::env::var_os(xdg_var).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join(under_xdg));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(under_home))
}

/// Where the engine caches chunk indexes (one file per repository id):
/// `cache_dir/index`, else `$XDG_CACHE_HOME/vger/index` or
/// `~/.cache/vger/index`; none when `VGER_NO_INDEX_CACHE` is set (to
/// anything but empty or `0`).
pub fn index_cache_dir(cache_dir: Option<&PathBuf>) -> Option<PathBuf> {
    if std::env::var_os("VGER_NO_INDEX_CACHE").is_some_and(|v| !v.is_empty() && v != "0") {
        return None;
    }
    user_dir(cache_dir, "index", "XDG_CACHE_HOME", "vger/index", ".cache/vger/index")
}

/// Where backups keep their resume journals (docs/format.md, section 9):
/// `resume/` in the state folder.
pub fn resume_dir(cache_dir: Option<&PathBuf>) -> Option<PathBuf> {
    state_dir(cache_dir).map(|d| d.join("resume"))
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
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: state is a convenience, never a reason to fail a backup.
pub fn save(cache_dir: Option<&PathBuf>, repo: &RepositoryConfig, state: &RepoState) {
    let Some(path) = file(cache_dir, repo) else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(bytes) = serde_json::to_vec_pretty(state) {
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}
