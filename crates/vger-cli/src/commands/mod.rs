//! One file per command.

pub mod backup;
pub mod check;
pub mod compact;
pub mod config;
pub mod daemon;
pub mod delete;
pub mod info;
pub mod init;
pub mod key;
pub mod list;
pub mod prune;
pub mod restore;
pub mod run;
pub mod snapshot;

use anyhow::Result;
use vger_config::RepositoryConfig;

use crate::context::Context;
use crate::Outcome;

/// Runs `f` on every selected repository in turn. Errors are printed per
/// repository and the others still run; the result is the worst outcome.
pub fn each_repository(ctx: &Context, mut f: impl FnMut(&RepositoryConfig) -> Result<Outcome>) -> Result<Outcome> {
    let repos = ctx.repositories()?;
    if repos.len() == 1 {
        return f(repos[0]);
    }
    let mut worst = Outcome::Ok;
    let mut failed = Vec::new();
    for repo in &repos {
        ctx.heading(repo, repos.len());
        match f(repo) {
            Ok(o) => worst = worst.max(o),
            Err(e) => {
                eprintln!("vger: error: repository `{}`: {}", repo.label(), crate::one_line(&e));
                failed.push(repo.label().to_string());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("failed on {} of {} repositories: {}", failed.len(), repos.len(), failed.join(", "));
    }
    Ok(worst)
}

/// Runs `f` for one repository inside the global and repository hook
/// scopes of `command`. With `count_failures`, the repository's
/// consecutive-failure counter is updated (backups and the default run).
pub fn with_hooks(
    ctx: &Context,
    repo: &RepositoryConfig,
    command: vger_config::HookCommand,
    count_failures: bool,
    f: impl FnOnce(&mut crate::hooks::HookValues) -> Result<Outcome>,
) -> Result<Outcome> {
    let cache = ctx.config.cache_dir.as_ref();
    let mut state = crate::state::load(cache, repo);
    let base = state.consecutive_failures;
    let name = match command {
        vger_config::HookCommand::Backup => "backup",
        vger_config::HookCommand::Prune => "prune",
        vger_config::HookCommand::Check => "check",
        vger_config::HookCommand::Compact => "compact",
    };
    let mut values = crate::hooks::HookValues {
        command: name.to_string(),
        repository: repo.url.clone(),
        label: repo.label().to_string(),
        consecutive_failures: base,
        ..Default::default()
    };
    let global = ctx.config.hooks.clone().unwrap_or_default().for_command(command);
    let local = repo.hooks.clone().unwrap_or_default().for_command(command);
    let bump = |v: &mut crate::hooks::HookValues| {
        if count_failures {
            v.consecutive_failures = base + 1;
        }
    };
    let result = crate::hooks::scoped(&global, &mut values, &mut { bump }, |v| {
        crate::hooks::scoped(&local, v, &mut { bump }, f)
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
