//! The smaller config sections shared by the top level, repositories and sources.

use serde::{Deserialize, Deserializer, Serialize};

use crate::duration;

/// How the repository key is protected; `auto` picks AES-256-GCM or ChaCha20-Poly1305
/// when the repository is created, depending on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionMode {
    #[default]
    Auto,
    Aes256Gcm,
    Chacha20Poly1305,
    None,
}

/// `encryption:`; at repository level each field overrides the top level one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// `None` when not written; read it through [`EncryptionConfig::mode`].
    pub mode: Option<EncryptionMode>,
    pub passphrase: Option<String>,
    /// A shell command whose standard output is the passphrase.
    pub passcommand: Option<String>,
    /// Largest Argon2 memory a key slot may ask for before it is tried
    /// (default 1 GiB): slots are read from storage, so a hostile one
    /// could otherwise ask for gigabytes and minutes on every open.
    #[serde(default, deserialize_with = "crate::size::deserialize_opt")]
    pub kdf_max_memory: Option<u64>,
    /// Most Argon2 passes a key slot may ask for (default 10).
    pub kdf_max_iterations: Option<u32>,
}

impl EncryptionConfig {
    /// The mode, `auto` when not written.
    pub fn mode(&self) -> EncryptionMode {
        self.mode.unwrap_or_default()
    }
}

/// FastCDC parameters in bytes (written as integers or sizes like `2MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerConfig {
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub min_size: u64,
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub avg_size: u64,
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub max_size: u64,
}

/// Which snapshots `prune` keeps. A whole `retention:` block replaces a less specific one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// A period such as `2d` or `6m`; see [`crate::parse_period`].
    #[serde(default, deserialize_with = "duration::deserialize_period")]
    pub keep_within: Option<String>,
}

/// Resource limits; at repository level each field overrides the top level one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default, deserialize_with = "at_least_one")]
    pub threads: Option<usize>,
    #[serde(default, deserialize_with = "nice_level")]
    pub nice: Option<i32>,
    #[serde(default, deserialize_with = "positive_rate")]
    pub io_read_mib_per_sec: Option<f64>,
    #[serde(default, deserialize_with = "positive_rate")]
    pub upload_mib_per_sec: Option<f64>,
    #[serde(default, deserialize_with = "positive_rate")]
    pub download_mib_per_sec: Option<f64>,
    #[serde(default, deserialize_with = "at_least_one")]
    pub connections: Option<usize>,
}

/// Shell commands run around operations. The plain keys (`before`, ...) apply to
/// every command; `before_backup` and friends only to that command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub before: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub after: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub failed: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub finally: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub before_backup: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub after_backup: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub failed_backup: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub finally_backup: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub before_prune: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub after_prune: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub failed_prune: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub finally_prune: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub before_check: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub after_check: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub failed_check: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub finally_check: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub before_compact: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub after_compact: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub failed_compact: Vec<String>,
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub finally_compact: Vec<String>,
}

/// The operations that have their own hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookCommand {
    Backup,
    Prune,
    Check,
    Compact,
}

/// The hooks that apply to one command, generic and specific merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandHooks {
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub failed: Vec<String>,
    pub finally: Vec<String>,
}

impl HooksConfig {
    /// The hooks for `command`. Generic hooks wrap specific ones: generic
    /// `before` runs first, generic `after`/`failed`/`finally` run last.
    /// The hooks of `command` from an optional `hooks:` section (none when
    /// it is absent), without copying the section.
    pub fn of(hooks: Option<&HooksConfig>, command: HookCommand) -> CommandHooks {
        hooks.map(|h| h.for_command(command)).unwrap_or_default()
    }

    pub fn for_command(&self, command: HookCommand) -> CommandHooks {
        let (before, after, failed, finally) = match command {
            HookCommand::Backup => (&self.before_backup, &self.after_backup, &self.failed_backup, &self.finally_backup),
            HookCommand::Prune => (&self.before_prune, &self.after_prune, &self.failed_prune, &self.finally_prune),
            HookCommand::Check => (&self.before_check, &self.after_check, &self.failed_check, &self.finally_check),
            HookCommand::Compact => {
                (&self.before_compact, &self.after_compact, &self.failed_compact, &self.finally_compact)
            }
        };
        let chain = |first: &[String], second: &[String]| [first, second].concat();
        CommandHooks {
            before: chain(&self.before, before),
            after: chain(after, &self.after),
            failed: chain(failed, &self.failed),
            finally: chain(finally, &self.finally),
        }
    }
}

/// `check:` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Share of packs (0-100) whose data a routine check reads.
    #[serde(default, deserialize_with = "percent")]
    pub max_percent: Option<u8>,
    /// Period between full data checks, e.g. `30d`.
    #[serde(default, deserialize_with = "duration::deserialize_period")]
    pub full_every: Option<String>,
}

/// When the daemon runs backups. `every` and `cron` are alternatives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Interval such as `6h`; see [`crate::parse_interval`].
    #[serde(default, deserialize_with = "duration::deserialize_interval")]
    pub every: Option<String>,
    /// Five-field cron expression.
    #[serde(default, deserialize_with = "duration::deserialize_cron")]
    pub cron: Option<String>,
    #[serde(default)]
    pub on_startup: bool,
    #[serde(default)]
    pub jitter_seconds: u64,
}

/// Events a notification can be sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    Start,
    Success,
    Failure,
}

/// One HTTP notification target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub url: String,
    #[serde(default = "all_events")]
    pub events: Vec<NotifyEvent>,
    /// HTTP method, `POST` when not written.
    pub method: Option<String>,
    pub body: Option<String>,
}

fn all_events() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Start, NotifyEvent::Success, NotifyEvent::Failure]
}

/// Extended attributes (`xattrs: { enabled: false }` to skip them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XattrsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for XattrsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// Retries of failed storage requests, with exponential back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub retry_delay_ms: u64,
    pub retry_max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_retries: 5, retry_delay_ms: 1_000, retry_max_delay_ms: 60_000 }
    }
}

/// A command whose standard output is stored in the snapshot as a file named `name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDump {
    pub name: String,
    pub command: String,
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    let value = Option::<usize>::deserialize(deserializer)?;
    if value == Some(0) {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(value)
}

fn nice_level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    let value = Option::<i32>::deserialize(deserializer)?;
    match value {
        Some(level) if !(-20..=19).contains(&level) => {
            Err(serde::de::Error::custom(format!("nice level {level} is out of range; use -20 to 19")))
        }
        _ => Ok(value),
    }
}

fn positive_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<f64>::deserialize(deserializer)?;
    match value {
        Some(rate) if !(rate.is_finite() && rate > 0.0) => Err(serde::de::Error::custom(format!(
            "rate {rate} must be a positive number of MiB per second (leave it out for no limit)"
        ))),
        _ => Ok(value),
    }
}

fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u8>, D::Error> {
    let value = Option::<u8>::deserialize(deserializer)?;
    match value {
        Some(p) if p > 100 => Err(serde::de::Error::custom(format!("{p} is not a percentage; use 0 to 100"))),
        _ => Ok(value),
    }
}
