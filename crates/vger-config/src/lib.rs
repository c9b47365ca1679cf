//! Loads and checks `vger.yaml`, vger's configuration file.
//!
//! [`Config::load`] finds the file (`--config`, `$VGER_CONFIG`, `./vger.yaml`,
//! `$XDG_CONFIG_HOME/vger/config.yaml`, `/etc/vger/config.yaml`), expands
//! `${VAR}` references, parses it strictly (unknown keys and YAML 1.1
//! booleans such as `yes` are errors) and checks cross-key rules. Every error
//! is one line: `file:line:column: what is wrong; hint`.
//!
//! ```
//! use std::collections::HashMap;
//! use std::path::Path;
//! use vger_config::{Config, Environment};
//!
//! let yaml = "
//! repositories:
//!   - url: /srv/backups/vger
//! sources:
//!   - /home/me/docs
//! compression: zstd:6
//! ";
//! let env = Environment::from_map(HashMap::new(), "/");
//! let config = Config::from_yaml_str_in(yaml, Path::new("/etc/vger.yaml"), &env).unwrap();
//! assert_eq!(config.repositories[0].label(), "vger");
//! assert_eq!(config.sources()[0].label(), "docs");
//! assert_eq!(config.effective_compression(&config.repositories[0]).to_string(), "zstd:6");
//!
//! let err = Config::from_yaml_str_in("repositories: []\nexlude_patterns: []\n", Path::new("vger.yaml"), &env)
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "vger.yaml:2:1: unknown key `exlude_patterns` in the top level; did you mean `exclude_patterns`?"
//! );
//! ```

mod diagnose;
mod duration;
mod effective;
mod env_file;
mod error;
mod expand;
mod exposure;
mod load;
mod model;
mod one_or_many;
mod sections;
mod size;
mod sources;
mod spans;
mod starter;
mod validate;

pub use duration::{parse_interval, parse_period, Period, PeriodUnit};
pub use error::ConfigError;
pub use exposure::exposed_secrets_warning;
pub use load::{Environment, LoadedConfig, LOCAL_CONFIG_NAME, SYSTEM_CONFIG_PATH};
pub use model::{Config, RepositoryConfig, SourceConfig};
pub use sections::{
    CheckConfig, ChunkerConfig, CommandDump, CommandHooks, EncryptionConfig, EncryptionMode, HookCommand, HooksConfig,
    LimitsConfig, NotifyConfig, NotifyEvent, RetentionConfig, RetryConfig, ScheduleConfig, XattrsConfig,
};
pub use size::parse_size;
pub use starter::starter_config;
pub use vger_format::change::ChangeDetection;
pub use vger_format::compress::{Codec, DEFAULT_ZSTD_LEVEL};
