//! `vger init`: creates each selected repository.

use anyhow::Result;
use vger_crypto::Algorithm;

use crate::cli::InitArgs;
use crate::context::Context;
use crate::Outcome;

pub fn run(ctx: &Context, args: &InitArgs) -> Result<Outcome> {
    let like = match &args.copy_chunker_params_from {
        Some(label) => Some(
            ctx.app
                .repositories(Some(label))?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no repository `{label}` in the config"))?,
        ),
        None => None,
    };
    super::each_repository(ctx, |repo_cfg| {
        let repo = match like {
            Some(from) if from.label() == repo_cfg.label() => {
                anyhow::bail!(
                    "--copy-chunker-params-from {} names the repository being created; pick it with -R LABEL",
                    from.label()
                )
            }
            Some(from) => ctx.app.init_like(repo_cfg, from)?,
            None => ctx.app.init(repo_cfg)?,
        };
        if ctx.json {
            crate::output::print_json(&serde_json::json!({
                "repository": repo_cfg.label(),
                "url": repo_cfg.url,
                "encryption": repo.config().encryption,
                "chunker": repo.config().chunker,
                "id": hex_id(repo.repository_id()),
            }))?;
        } else {
            println!(
                "initialised repository `{}` at {} (encryption: {})",
                repo_cfg.label(),
                repo.location(),
                repo.config().encryption
            );
            if repo.algorithm() == Algorithm::None {
                println!(
                    "warning: encryption is `none`: data is checksummed but NOT protected against reading or tampering"
                );
            } else {
                println!("keep your passphrase safe: without it the backups cannot be read");
            }
        }
        Ok(Outcome::Ok)
    })
}

fn hex_id(id: &[u8; 32]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
