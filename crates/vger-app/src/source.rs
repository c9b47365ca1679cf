//! From a source in `vger.yaml` to what the engine walks: absolute paths,
//! the exclude callback, xattrs, change detection and command dumps.

use std::path::{Component, Path, PathBuf};

use vger_config::{Config, SourceConfig};
use vger_engine::backup::BackupSource;
use vger_engine::dump::CommandDumpSpec;
use vger_fs::WalkOptions;

use crate::excludes::{self, ExcludeSpec};
use crate::secrets::Secrets;
use crate::AppError;

/// Turns a configured source into what the engine walks. Its paths must
/// exist; a source of command dumps alone walks nothing. Dump commands
/// start without the secrets of `secrets`.
pub fn prepare(
    config: &Config,
    config_path: &Path,
    source: &SourceConfig,
    secrets: &Secrets,
) -> Result<BackupSource, AppError> {
    let paths: Vec<PathBuf> = source.all_paths().iter().map(|p| normalize(p)).collect::<Result<_, _>>()?;
    for p in &paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(AppError::SourceMissing { path: p.clone(), config: config_path.to_path_buf() });
        }
    }
    let roots = vger_engine::backup::roots_for_paths(&paths);
    let exclude = excludes::build(
        ExcludeSpec {
            patterns: config.exclude_patterns.iter().chain(&source.exclude).cloned().collect(),
            markers: config.exclude_if_present.iter().chain(&source.exclude_if_present).cloned().collect(),
            git_ignore: source.git_ignore,
        },
        &roots,
    )?;
    let xattrs = source.xattrs.as_ref().or(config.xattrs.as_ref()).is_none_or(|x| x.enabled);
    let walk = WalkOptions { one_file_system: source.one_file_system, xattrs, file_xattrs_later: false, exclude };
    Ok(BackupSource {
        label: source.label(),
        roots,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        walk,
        change_detection: source.change_detection.unwrap_or_default(),
        dumps: source
            .command_dumps
            .iter()
            .map(|d| CommandDumpSpec {
                name: d.name.clone(),
                command: d.command.clone(),
                hidden_env: secrets.hidden_variables().to_vec(),
            })
            .collect(),
    })
}

/// Absolute, without `.`/`..` components or a trailing slash (symlinks are
/// not resolved: the path is stored as the user wrote it).
fn normalize(p: &Path) -> Result<PathBuf, AppError> {
    let abs =
        if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().map_err(AppError::CurrentDir)?.join(p) };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_without_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")).unwrap(), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/..")).unwrap(), PathBuf::from("/"));
        assert!(normalize(Path::new("rel")).unwrap().is_absolute());
    }
}
