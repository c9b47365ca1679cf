//! `vger delete` and `vger break-lock`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};

use crate::cli::DeleteArgs;
use crate::context::Context;
use crate::Outcome;

pub fn run(ctx: &Context, args: &DeleteArgs) -> Result<Outcome> {
    if ctx.repositories()?.len() > 1 {
        bail!("delete works on one repository at a time: pick it with -R/--repo");
    }
    super::each_repository(ctx, |repo_cfg| {
        let label = repo_cfg.label();
        let typed = match &args.confirm {
            Some(c) => c.clone(),
            None if std::io::stdin().is_terminal() => {
                print!("this deletes every snapshot in `{label}` ({}); type the label to confirm: ", repo_cfg.url);
                let _ = std::io::stdout().flush();
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim().to_string()
            }
            None => bail!("deleting a repository needs confirmation: pass --confirm {label}"),
        };
        if typed != label {
            bail!("confirmation `{typed}` does not match the repository label `{label}`; nothing was deleted");
        }
        let repo = ctx.open(repo_cfg)?;
        let n = vger_engine::delete::delete_repository(&repo)?;
        println!("deleted repository `{label}` ({n} objects)");
        Ok(Outcome::Ok)
    })
}

pub fn break_lock(ctx: &Context) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let n = vger_engine::lock::break_locks(&repo)?;
        println!("removed {n} lock(s) from `{}`", repo_cfg.label());
        Ok(Outcome::Ok)
    })
}
