//! The settings that apply to one repository (and source) once overrides are
//! applied, so the engine does not reimplement the rules.

use crate::error::ConfigError;
use crate::model::{Config, RepositoryConfig, SourceConfig};
use crate::sections::{EncryptionConfig, LimitsConfig, NotifyConfig, RetentionConfig};
use vger_format::compress::Codec;

impl Config {
    /// Repository fields override top level ones field by field; the mode is
    /// always set in the result.
    pub fn effective_encryption(&self, repo: &RepositoryConfig) -> EncryptionConfig {
        let top = &self.encryption;
        let own = repo.encryption.clone().unwrap_or_default();
        let mode = own.mode.or(top.mode).unwrap_or_default();
        EncryptionConfig {
            mode: Some(mode),
            passphrase: own.passphrase.or_else(|| top.passphrase.clone()),
            passcommand: own.passcommand.or_else(|| top.passcommand.clone()),
            kdf_max_memory: own.kdf_max_memory.or(top.kdf_max_memory),
            kdf_max_iterations: own.kdf_max_iterations.or(top.kdf_max_iterations),
        }
    }

    /// The repository's own `notify` list when it has one (even empty),
    /// else the top-level list.
    pub fn effective_notify<'a>(&'a self, repo: &'a RepositoryConfig) -> &'a [NotifyConfig] {
        repo.notify.as_deref().unwrap_or(&self.notify)
    }

    /// The repository's codec, else the top level one, else lz4.
    pub fn effective_compression(&self, repo: &RepositoryConfig) -> Codec {
        repo.compression.or(self.compression).unwrap_or_default()
    }

    /// The most specific whole `retention` block: source, then repository, then top level.
    pub fn effective_retention(
        &self,
        repo: &RepositoryConfig,
        source: Option<&SourceConfig>,
    ) -> Option<RetentionConfig> {
        source.and_then(|s| s.retention.as_ref()).or(repo.retention.as_ref()).or(self.retention.as_ref()).cloned()
    }

    /// Repository limits override top level ones field by field.
    pub fn effective_limits(&self, repo: &RepositoryConfig) -> LimitsConfig {
        let top = self.limits.clone().unwrap_or_default();
        let own = repo.limits.clone().unwrap_or_default();
        LimitsConfig {
            threads: own.threads.or(top.threads),
            nice: own.nice.or(top.nice),
            io_read_mib_per_sec: own.io_read_mib_per_sec.or(top.io_read_mib_per_sec),
            upload_mib_per_sec: own.upload_mib_per_sec.or(top.upload_mib_per_sec),
            download_mib_per_sec: own.download_mib_per_sec.or(top.download_mib_per_sec),
            connections: own.connections.or(top.connections),
        }
    }

    /// The repository whose label or URL is `name_or_url`.
    pub fn find_repository(&self, name_or_url: &str) -> Option<&RepositoryConfig> {
        self.repositories
            .iter()
            .find(|r| r.label() == name_or_url)
            .or_else(|| self.repositories.iter().find(|r| r.url == name_or_url))
    }

    /// The repository named by `--repo`, or all of them when `None`.
    pub fn select_repositories(&self, name_or_url: Option<&str>) -> Result<Vec<&RepositoryConfig>, ConfigError> {
        let Some(wanted) = name_or_url else {
            return Ok(self.repositories.iter().collect());
        };
        self.find_repository(wanted).map(|repo| vec![repo]).ok_or_else(|| ConfigError::UnknownRepository {
            requested: wanted.to_owned(),
            available: self.repositories.iter().map(|r| r.label().to_owned()).collect(),
        })
    }

    /// The sources that go to `repo` (those whose `repos` is empty or names it).
    pub fn sources_for<'a>(&'a self, repo: &RepositoryConfig) -> Vec<&'a SourceConfig> {
        self.sources.iter().filter(|s| s.goes_to(repo.label())).collect()
    }
}
