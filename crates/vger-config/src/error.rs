//! Errors from finding, reading and checking the config. Each displays as one line.

use std::path::{Path, PathBuf};

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No config file in any of the places searched.
    #[error("no config file found (searched {}); run `vger config` to write a starter file", list_paths(.searched))]
    NotFound { searched: Vec<PathBuf> },

    /// A path named by `--config` or `VGER_CONFIG` does not exist.
    #[error("{}: config file not found (named by {origin}); run `vger config` to write a starter file", .path.display())]
    Missing { path: PathBuf, origin: String },

    /// A file exists but could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },

    /// The file's text is wrong: bad YAML, an unknown key, a wrong type or
    /// value, an unset variable. `line`/`column` are 1-based.
    #[error("{}: {message}", position(.file, *.line, *.column))]
    Invalid { file: PathBuf, line: Option<u64>, column: Option<u64>, message: String },

    /// `--repo NAME` names no repository.
    #[error("no repository `{requested}`; available: {}", .available.join(", "))]
    UnknownRepository { requested: String, available: Vec<String> },
}

impl ConfigError {
    pub(crate) fn invalid(file: impl Into<PathBuf>, position: Option<(u64, u64)>, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.into(),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column).filter(|c| *c > 0),
            message: message.into(),
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// `file:line:column`, leaving out the parts that are unknown.
fn position(file: &Path, line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", file.display()),
        (Some(line), None) => format!("{}:{line}", file.display()),
        _ => file.display().to_string(),
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
