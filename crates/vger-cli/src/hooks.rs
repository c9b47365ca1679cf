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
//! replaced by shell-quoted values; the same values are in the environment
//! as `VGER_COMMAND`, `VGER_REPOSITORY`, ... .

use std::process::Command;

use anyhow::{anyhow, Result};
use vger_config::CommandHooks;

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

fn run_one(template: &str, values: &HookValues, kind: &str) -> Result<()> {
    let mut cmd = template.to_string();
    let pairs = values.pairs();
    for (placeholder, _, value) in &pairs {
        cmd = cmd.replace(placeholder, &shell_quote(value));
    }
    let mut command = Command::new("sh");
    command.arg("-c").arg(&cmd);
    for (_, var, value) in &pairs {
        command.env(var, value);
    }
    tracing::info!("running {kind} hook: {cmd}");
    let started = std::time::Instant::now();
    let status = command.status().map_err(|e| anyhow!("{kind} hook `{template}` could not start: {e}"))?;
    tracing::debug!("{kind} hook ended ({status}) after {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    if !status.success() {
        return Err(anyhow!("{kind} hook `{template}` failed ({status})"));
    }
    Ok(())
}

fn run_all(list: &[String], values: &HookValues, kind: &str) -> Result<()> {
    for h in list {
        run_one(h, values, kind)?;
    }
    Ok(())
}

/// Runs `body` inside one hook scope. `on_failure` is called with the
/// error before the `failed` hooks run (it updates the failure counter).
pub fn scoped<T>(
    hooks: &CommandHooks,
    values: &mut HookValues,
    on_failure: &mut dyn FnMut(&mut HookValues),
    body: impl FnOnce(&mut HookValues) -> Result<T>,
) -> Result<T> {
    let result = run_all(&hooks.before, values, "before").and_then(|()| body(values));
    let result = match result {
        Ok(v) => run_all(&hooks.after, values, "after").map(|()| v),
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        values.error = crate::one_line(e);
        on_failure(values);
        if let Err(hook_err) = run_all(&hooks.failed, values, "failed") {
            eprintln!("vger: warning: {}", crate::one_line(&hook_err));
        }
    }
    if let Err(hook_err) = run_all(&hooks.finally, values, "finally") {
        eprintln!("vger: warning: {}", crate::one_line(&hook_err));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_values() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        let out = Command::new("sh").arg("-c").arg(format!("printf %s {}", shell_quote("a'b $(x) \"c\""))).output();
        assert_eq!(out.map(|o| o.stdout).unwrap_or_default(), b"a'b $(x) \"c\"");
    }
}
