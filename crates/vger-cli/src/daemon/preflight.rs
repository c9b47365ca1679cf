//! What must hold before the daemon starts (and before a reloaded config
//! replaces the running one): at least one repository has an enabled
//! schedule, and every scheduled encrypted repository has a passphrase
//! that needs no terminal.

use anyhow::{anyhow, bail, Result};
use vger_config::{EncryptionMode, RepositoryConfig};

use super::schedule::Schedule;
use crate::context::Context;

/// The selected repositories that have an enabled schedule, with it.
pub fn scheduled_repositories(ctx: &Context) -> Result<Vec<(RepositoryConfig, Schedule)>> {
    let mut scheduled = Vec::new();
    for repo in ctx.repositories()? {
        if let Some(schedule) = Schedule::for_repository(&ctx.app.config, repo)? {
            scheduled.push((repo.clone(), schedule));
        }
    }
    if scheduled.is_empty() {
        bail!(
            "no repository has an enabled schedule; add `schedule: {{ enabled: true, every: 6h }}` to {}",
            ctx.app.config_path.display()
        );
    }
    for (repo, _) in &scheduled {
        check_passphrase(ctx, repo)?;
    }
    Ok(scheduled)
}

/// Asks the non-interactive sources (VGER_PASSPHRASE, `passcommand`,
/// `passphrase`), never the prompt: nobody is there to answer it.
fn check_passphrase(ctx: &Context, repo: &RepositoryConfig) -> Result<()> {
    if ctx.app.config.effective_encryption(repo).mode() == EncryptionMode::None {
        return Ok(());
    }
    match ctx.app.passphrase_without_prompt(repo) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!(
            "repository `{}` is encrypted and the daemon cannot ask for its passphrase; set VGER_PASSPHRASE, \
             or `passcommand` or `passphrase` under `encryption` in {}",
            repo.label(),
            ctx.app.config_path.display()
        ),
        Err(e) => Err(anyhow!("repository `{}`: {}", repo.label(), crate::one_line(&e.into()))),
    }
}
