//! One file per command.

pub mod backup;
pub mod check;
pub mod compact;
pub mod config;
pub mod copy;
pub mod daemon;
pub mod delete;
pub mod info;
pub mod init;
pub mod key;
pub mod list;
pub mod mount;
pub mod prune;
pub mod restore;
pub mod run;
pub mod shell;
pub mod snapshot;
pub mod snapshot_diff;
pub mod snapshot_find;
pub mod snapshot_list;

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
