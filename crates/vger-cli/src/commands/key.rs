//! `vger key list|add|change|remove`.

use anyhow::{anyhow, Result};
use vger_crypto::KdfParams;
use vger_engine::keys;

use crate::cli::KeyCommand;
use crate::context::{prompt_passphrase, Context};
use crate::Outcome;

fn new_passphrase() -> Result<Vec<u8>> {
    if let Ok(p) = std::env::var("VGER_NEW_PASSPHRASE") {
        if p.is_empty() {
            return Err(anyhow!("VGER_NEW_PASSPHRASE is empty"));
        }
        return Ok(p.into_bytes());
    }
    prompt_passphrase("New passphrase: ", true)?
        .ok_or_else(|| anyhow!("no new passphrase: set VGER_NEW_PASSPHRASE or run on a terminal"))
}

pub fn run(ctx: &Context, cmd: &KeyCommand) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        match cmd {
            KeyCommand::List => {
                let slots = keys::list(&repo)?;
                if ctx.json {
                    crate::output::print_json(&slots)?;
                } else {
                    for s in slots {
                        println!(
                            "{}  {}  {}@{}  {}  (argon2id {} MiB, t={})",
                            &s.id[..8],
                            s.created,
                            s.username,
                            s.hostname,
                            s.label,
                            s.memory_kib / 1024,
                            s.iterations
                        );
                    }
                }
            }
            KeyCommand::Add { label } => {
                let id = keys::add(&repo, &new_passphrase()?, label, KdfParams::default())?;
                println!("added key slot {}", id.short());
            }
            KeyCommand::Change => {
                let old = ctx.app.passphrase(repo_cfg, false)?.ok_or_else(|| anyhow!("no current passphrase"))?;
                let id = keys::change(&repo, &old, &new_passphrase()?, KdfParams::default())?;
                println!(
                    "passphrase changed (new key slot {}); update VGER_PASSPHRASE / passcommand / the config",
                    id.short()
                );
            }
            KeyCommand::Remove { id } => {
                let removed = keys::remove(&repo, id)?;
                println!("removed key slot {}", removed.short());
            }
        }
        Ok(Outcome::Ok)
    })
}
