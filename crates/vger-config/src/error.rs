//! Errors from finding, reading and checking the config. Each displays as one line.

use std::fmt;
use std::path::PathBuf;

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
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file's text is wrong: bad YAML, an unknown key, a wrong type or
    /// value, an unset variable. `line`/`column` are 1-based.
    #[error("{}: {message}", Position { file: .file, line: *.line, column: *.column })]
    Invalid {
        file: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },

    /// `--repo NAME` names no repository.
    #[error("no repository `{requested}`; available: {}", .available.join(", "))]
    UnknownRepository {
        requested: String,
        available: Vec<String>,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        file: impl Into<PathBuf>,
        position: Option<(u64, u64)>,
        message: impl Into<String>,
    ) -> Self {
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

/// Renders `file:line:column: message` without the parts that are unknown.
struct Position<'a> {
    file: &'a PathBuf,
    line: Option<u64>,
    column: Option<u64>,
}

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
