//! Hooks: shell commands run around `backup`, `prune`, `check` and
//! `compact`, at global, repository and source level.
//!
//! Each level is a scope around the next: its `before` hooks run first; if
//! one fails, the inner work is skipped and the scope fails. Then `after`
//! runs on success or `failed` on failure (an `after` hook that fails makes
//! the scope fail and runs `failed`), and `finally` always runs last.
//! Global `before` runs before repository `before`, which runs before
//! source `before`; the other hooks run in the reverse order (innermost
//! first). See docs/configuration.md for an example trace.
//!
//! Placeholders `{command}`, `{repository}`, `{label}`, `{error}`,
//! `{source_label}`, `{source_path}` and `{consecutive_failures}` are
//! replaced by shell-quoted values in one pass over the command as
//! written: a value that itself contains `{source_path}` (a file name, an
//! error's text) stays as it is. The same values are in the environment
//! as `VGER_COMMAND`, `VGER_REPOSITORY`, ...; vger's secrets are not
//! ([`crate::secrets`]).

use std::process::Command;

use vger_config::{CommandHooks, HookCommand, HooksConfig, RepositoryConfig};

use crate::events::{Event, FrontEnd};
use crate::secrets::Secrets;
use crate::{App, AppError};

/// Values hooks can refer to.
#[derive(Debug, Clone, Default)]
pub struct HookValues {
    pub command: String,
    pub repository: String,
    pub label: String,
    pub error: String,
    pub source_label: String,
    pub source_path: String,
    pub consecutive_failures: u64,
}

impl HookValues {
    fn pairs(&self) -> [(&'static str, &'static str, String); 7] {
        [
            ("{command}", "VGER_COMMAND", self.command.clone()),
            ("{repository}", "VGER_REPOSITORY", self.repository.clone()),
            ("{label}", "VGER_LABEL", self.label.clone()),
            ("{error}", "VGER_ERROR", self.error.clone()),
            ("{source_label}", "VGER_SOURCE_LABEL", self.source_label.clone()),
            ("{source_path}", "VGER_SOURCE_PATH", self.source_path.clone()),
            ("{consecutive_failures}", "VGER_CONSECUTIVE_FAILURES", self.consecutive_failures.to_string()),
        ]
    }
}

/// `'...'` quoting for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `template` with each placeholder replaced by its quoted value, in one
/// left-to-right pass: substituted text is never scanned again.
fn substitute(template: &str, pairs: &[(&'static str, &'static str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        let (before, from_brace) = rest.split_at(at);
        out.push_str(before);
        match pairs.iter().find(|(placeholder, _, _)| from_brace.starts_with(placeholder)) {
            Some((placeholder, _, value)) => {
                out.push_str(&shell_quote(value));
                rest = &from_brace[placeholder.len()..];
            }
            None => {
                out.push('{');
                rest = &from_brace[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs hooks with the environment and masking of `secrets`.
#[derive(Debug, Clone)]
pub struct HookRunner {
    secrets: Secrets,
}

impl HookRunner {
    pub fn new(secrets: Secrets) -> Self {
        HookRunner { secrets }
    }

    fn run_one(&self, template: &str, values: &HookValues, kind: &'static str) -> Result<(), AppError> {
        let pairs = values.pairs();
        let mut command = Command::new("sh");
        command.arg("-c").arg(substitute(template, &pairs));
        self.secrets.hide_from(&mut command);
        for (_, var, value) in &pairs {
            command.env(var, value);
        }
        let shown = self.secrets.mask(template);
        tracing::info!("running {kind} hook: {shown}");
        let started = std::time::Instant::now();
        let status = command.status().map_err(|cause| AppError::HookStart { kind, command: shown.clone(), cause })?;
        tracing::debug!("{kind} hook ended ({status}) after {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            return Err(AppError::HookFailed { kind, command: shown, status: status.to_string() });
        }
        Ok(())
    }

    fn run_all(&self, list: &[String], values: &HookValues, kind: &'static str) -> Result<(), AppError> {
        for h in list {
            self.run_one(h, values, kind)?;
        }
        Ok(())
    }

    /// Runs `body` inside one hook scope. On failure, `{error}` is the
    /// error as `describe` words it, and `on_failure` updates the values
    /// before the `failed` hooks run. A failing `failed` or `finally`
    /// hook is reported to `warn` and does not change the result.
    pub fn scoped<T, E: From<AppError>>(
        &self,
        hooks: &CommandHooks,
        values: &mut HookValues,
        scope: Scope<'_, E>,
        body: impl FnOnce(&mut HookValues) -> Result<T, E>,
    ) -> Result<T, E> {
        let result = self.run_all(&hooks.before, values, "before").map_err(E::from).and_then(|()| body(values));
        let result = match result {
            Ok(v) => self.run_all(&hooks.after, values, "after").map(|()| v).map_err(E::from),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            values.error = (scope.describe)(e);
            (scope.on_failure)(values);
            if let Err(hook_err) = self.run_all(&hooks.failed, values, "failed") {
                (scope.warn)(&hook_err);
            }
        }
        if let Err(hook_err) = self.run_all(&hooks.finally, values, "finally") {
            (scope.warn)(&hook_err);
        }
        result
    }
}

/// What a hook scope needs from its caller besides the hooks.
pub struct Scope<'a, E> {
    /// The error in one line, as `{error}`.
    pub describe: &'a dyn Fn(&E) -> String,
    /// Changes the values on failure (the failure counter).
    pub on_failure: &'a mut dyn FnMut(&mut HookValues),
    /// A `failed` or `finally` hook that failed.
    pub warn: &'a dyn Fn(&AppError),
}

/// A `failed` or `finally` hook that failed, as a warning to `front`.
pub(crate) fn hook_warning(front: &dyn FrontEnd, repo: &RepositoryConfig, e: &AppError) {
    let notice = vger_engine::Notice::Text(front.describe(e));
    front.event(&Event::Notice { repository: repo.label(), notice: &notice });
}

fn command_name(command: HookCommand) -> &'static str {
    match command {
        HookCommand::Backup => "backup",
        HookCommand::Prune => "prune",
        HookCommand::Check => "check",
        HookCommand::Compact => "compact",
    }
}

impl App {
    /// The hook runner for this config.
    pub fn hook_runner(&self) -> HookRunner {
        HookRunner::new(Secrets::of(&self.config))
    }

    /// Runs `f` inside the global and repository hooks of `command` for
    /// `repo`, wording errors and failing `failed`/`finally` hooks for
    /// `front` (prune, compact and check; the backup has its own scopes).
    pub(crate) fn in_hooks<T>(
        &self,
        repo: &RepositoryConfig,
        command: HookCommand,
        front: &dyn FrontEnd,
        f: impl FnOnce() -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let describe = |e: &AppError| front.describe(e);
        let warn = |e: &AppError| hook_warning(front, repo, e);
        self.with_hooks(repo, command, false, &describe, &warn, |_| f())
    }

    /// Runs `f` for `repo` inside the global and repository hook scopes of
    /// `command`. With `count_failures`, the repository's
    /// consecutive-failure counter is updated (backups and the cycle).
    /// `describe` words an error for `{error}`; `warn` hears of failing
    /// `failed` and `finally` hooks.
    pub fn with_hooks<T, E: From<AppError>>(
        &self,
        repo: &RepositoryConfig,
        command: HookCommand,
        count_failures: bool,
        describe: &dyn Fn(&E) -> String,
        warn: &dyn Fn(&AppError),
        f: impl FnOnce(&mut HookValues) -> Result<T, E>,
    ) -> Result<T, E> {
        let cache = self.config.cache_dir.as_ref();
        let mut state = crate::state::load(cache, repo);
        let base = state.consecutive_failures;
        let mut values = HookValues {
            command: command_name(command).to_string(),
            repository: repo.url.clone(),
            label: repo.label().to_string(),
            consecutive_failures: base,
            ..Default::default()
        };
        let global = HooksConfig::of(self.config.hooks.as_ref(), command);
        let local = HooksConfig::of(repo.hooks.as_ref(), command);
        let mut bump = |v: &mut HookValues| {
            if count_failures {
                v.consecutive_failures = base + 1;
            }
        };
        let mut bump_inner = bump;
        let runner = self.hook_runner();
        let result = runner.scoped(&global, &mut values, Scope { describe, on_failure: &mut bump, warn }, |v| {
            runner.scoped(&local, v, Scope { describe, on_failure: &mut bump_inner, warn }, f)
        });
        if count_failures {
            let now = chrono::Utc::now().to_rfc3339();
            match &result {
                Ok(_) => {
                    state.consecutive_failures = 0;
                    state.last_success = Some(now);
                }
                Err(_) => {
                    state.consecutive_failures = base + 1;
                    state.last_failure = Some(now);
                }
            }
            crate::state::save(cache, repo, &state);
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        let out = Command::new("sh").arg("-c").arg(format!("printf %s {}", shell_quote("a'b $(x) \"c\""))).output();
        assert_eq!(out.map(|o| o.stdout).unwrap_or_default(), b"a'b $(x) \"c\"");
    }

    #[test]
    fn placeholders_are_replaced_once() {
        let values = HookValues {
            error: "source path /x/{source_path}'$(touch pwned)' does not exist".into(),
            source_path: "/x/{error}".into(),
            ..Default::default()
        };
        let pairs = values.pairs();
        let cmd = substitute("printf '%s|%s|{nope}' {error} {source_path}", &pairs);
        assert_eq!(
            cmd,
            "printf '%s|%s|{nope}' 'source path /x/{source_path}'\\''$(touch pwned)'\\'' does not exist' '/x/{error}'"
        );
        let out = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "source path /x/{source_path}'$(touch pwned)' does not exist|/x/{error}|{nope}"
        );
        assert_eq!(substitute("{", &pairs), "{");
        assert_eq!(substitute("a{{label}}b", &pairs), "a{''}b");
    }
}
