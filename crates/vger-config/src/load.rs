//! Finding the config file, reading it and turning it into a checked [`Config`].
//!
//! Steps: read `env_file` from a lenient first parse, expand `${VAR}` in the
//! raw text, parse strictly, resolve paths, then run the cross-key checks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;
use crate::model::Config;
use crate::spans::ConfigSpans;
use crate::{diagnose, env_file, expand, validate};

/// The config file name looked for in the working folder.
pub const LOCAL_CONFIG_NAME: &str = "vger.yaml";
/// The system-wide config file.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/vger/config.yaml";

/// Looks up one environment variable.
type VarLookup = Box<dyn Fn(&str) -> Option<String>>;

/// What loading reads from outside the file: environment variables, the
/// working folder and the system config path. Tests build one from a map
/// instead of touching the process environment.
pub struct Environment {
    lookup: VarLookup,
    pub current_dir: PathBuf,
    pub system_config: PathBuf,
}

impl Environment {
    /// The real process environment and working folder.
    pub fn process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var(name).ok()),
            current_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            system_config: PathBuf::from(SYSTEM_CONFIG_PATH),
        }
    }

    /// Fixed variables and working folder; the system config path stays
    /// [`SYSTEM_CONFIG_PATH`] unless the field is changed.
    pub fn from_map(vars: HashMap<String, String>, current_dir: impl Into<PathBuf>) -> Self {
        Self {
            lookup: Box::new(move |name| vars.get(name).cloned()),
            current_dir: current_dir.into(),
            system_config: PathBuf::from(SYSTEM_CONFIG_PATH),
        }
    }

    /// The value of an environment variable.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn non_empty_var(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.is_empty())
    }
}

/// A parsed config and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
}

impl Config {
    /// Finds the config file: `explicit` (`--config`), then `$VGER_CONFIG`,
    /// `./vger.yaml`, `$XDG_CONFIG_HOME/vger/config.yaml` (default
    /// `~/.config`), `/etc/vger/config.yaml`.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        Self::locate_in(explicit, &Environment::process())
    }

    /// [`Config::locate`] against a given environment.
    pub fn locate_in(explicit: Option<&Path>, env: &Environment) -> Result<PathBuf, ConfigError> {
        let named = explicit
            .map(|path| (path.to_path_buf(), "--config"))
            .or_else(|| env.non_empty_var("VGER_CONFIG").map(|p| (PathBuf::from(p), "VGER_CONFIG")));
        if let Some((path, origin)) = named {
            let path = env.current_dir.join(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(ConfigError::Missing { path, origin: origin.to_owned() })
            };
        }
        let mut searched = vec![env.current_dir.join(LOCAL_CONFIG_NAME)];
        let user_config_dir = env
            .non_empty_var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env.non_empty_var("HOME").map(|home| Path::new(&home).join(".config")));
        if let Some(dir) = user_config_dir {
            searched.push(dir.join("vger").join("config.yaml"));
        }
        searched.push(env.system_config.clone());
        match searched.iter().find(|path| path.is_file()) {
            Some(found) => Ok(found.clone()),
            None => Err(ConfigError::NotFound { searched }),
        }
    }

    /// Finds, reads and checks the config file with the process environment.
    pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
        Self::load_in(explicit, &Environment::process())
    }

    /// [`Config::load`] against a given environment.
    pub fn load_in(explicit: Option<&Path>, env: &Environment) -> Result<LoadedConfig, ConfigError> {
        let path = Self::locate_in(explicit, env)?;
        let text = read(&path)?;
        let config = Self::from_yaml_str_in(&text, &path, env)?;
        Ok(LoadedConfig { path, config })
    }

    /// Parses config text with the process environment. `origin` names the
    /// file in errors and anchors relative paths.
    pub fn from_yaml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Self::from_yaml_str_in(text, origin, &Environment::process())
    }

    /// [`Config::from_yaml_str`] against a given environment.
    pub fn from_yaml_str_in(text: &str, origin: &Path, env: &Environment) -> Result<Config, ConfigError> {
        let base_dir = env.current_dir.join(origin.parent().unwrap_or_else(|| Path::new("")));
        let file_vars = read_env_files(text, origin, &base_dir, env)?;
        let lookup = |name: &str| env.var(name).or_else(|| file_vars.get(name).cloned());
        let expanded = expand::expand(text, &lookup)
            .map_err(|e| ConfigError::invalid(origin, Some((e.line, e.column)), e.message))?;
        let options = serde_saphyr::options! { strict_booleans: true };
        let mut config: Config = serde_saphyr::from_str_with_options(&expanded, options)
            .map_err(|e| diagnose::yaml_error(&e, &expanded, origin))?;
        let home = lookup("HOME");
        resolve_paths(&mut config, &base_dir, home.as_deref());
        validate::validate(&config, &ConfigSpans::read(&expanded), origin)?;
        Ok(config)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// Only `env_file`, read leniently from the unexpanded text; every other key
/// is ignored here, and a text this cannot read fails later in the strict parse.
#[derive(Default, Deserialize)]
struct EnvFileKey {
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    env_file: Vec<String>,
}

/// Variables from the `env_file` files, later files overriding earlier ones.
fn read_env_files(
    text: &str,
    origin: &Path,
    base_dir: &Path,
    env: &Environment,
) -> Result<HashMap<String, String>, ConfigError> {
    let key: EnvFileKey = serde_saphyr::from_str(text).unwrap_or_default();
    let mut vars = HashMap::new();
    for raw in key.env_file {
        let lookup = |name: &str| env.var(name);
        let expanded = expand::expand(&raw, &lookup)
            .map_err(|e| ConfigError::invalid(origin, None, format!("in `env_file`: {}", e.message)))?;
        let path = resolve(Path::new(&expanded), base_dir, env.var("HOME").as_deref());
        vars.extend(env_file::parse(&read(&path)?, &path)?);
    }
    Ok(vars)
}

fn resolve_paths(config: &mut Config, base_dir: &Path, home: Option<&str>) {
    for source in &mut config.sources {
        if let Some(path) = &mut source.path {
            *path = resolve(path, base_dir, home);
        }
        for path in &mut source.paths {
            *path = resolve(path, base_dir, home);
        }
    }
    if let Some(dir) = &mut config.cache_dir {
        *dir = resolve(dir, base_dir, home);
    }
    for file in &mut config.env_file {
        *file = resolve(file, base_dir, home);
    }
    for repo in &mut config.repositories {
        for path in [&mut repo.sftp_key, &mut repo.sftp_known_hosts].into_iter().flatten() {
            *path = resolve(path, base_dir, home);
        }
    }
}

/// `~` and `~/x` become `$HOME` and `$HOME/x`; other relative paths are
/// taken from `base_dir`, the config file's folder.
pub(crate) fn resolve(path: &Path, base_dir: &Path, home: Option<&str>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), home) {
        let home = PathBuf::from(home);
        return if rest.as_os_str().is_empty() { home } else { home.join(rest) };
    }
    base_dir.join(path)
}
