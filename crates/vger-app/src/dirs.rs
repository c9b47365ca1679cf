//! The local folders vger keeps per user: the chunk-index cache, the
//! resume journals of interrupted backups and the per-repository state
//! files. `cache_dir` in the config puts all of them under one folder;
//! otherwise they follow the XDG base directories.

use std::path::PathBuf;

/// `cache_dir/state`, else `$XDG_STATE_HOME/vger`, else `~/.local/state/vger`.
pub fn state_dir(cache_dir: Option<&PathBuf>) -> Option<PathBuf> {
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

/// The file `vger daemon` locks (with `flock`) while it runs for the config
/// at `config_path`, holding its PID on the first line: named after a hash
/// of the config's canonical path, in `$XDG_RUNTIME_DIR/vger`, `/run/vger`
/// for root, or the state folder. A front end reads it to tell whether a
/// daemon already schedules this config.
pub fn daemon_lock_file(config_path: &std::path::Path, cache_dir: Option<&PathBuf>) -> PathBuf {
    let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("vger"),
        None if is_root() && std::path::Path::new("/run").is_dir() => PathBuf::from("/run/vger"),
        None => state_dir(cache_dir).unwrap_or_else(|| std::env::temp_dir().join("vger")),
    };
    dir.join(format!("daemon-{}.lock", hash.get(..16).unwrap_or_default()))
}

/// Whether this process runs as root (the owner of /proc/self).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Where the settings seen per repository id are remembered, so that a
/// replaced `config` object is refused: `repositories/` in the state folder.
pub fn settings_dir(cache_dir: Option<&PathBuf>) -> Option<PathBuf> {
    state_dir(cache_dir).map(|d| d.join("repositories"))
}
