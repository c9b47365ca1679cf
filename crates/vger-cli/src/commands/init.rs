//! `vger init`: creates each selected repository.

use anyhow::{Context as _, Result};
use vger_config::EncryptionMode;
use vger_crypto::Algorithm;
use vger_engine::repository::{EncryptionChoice, InitOptions, Repository};
use vger_engine::EngineError;

use crate::context::Context;
use crate::Outcome;

pub fn run(ctx: &Context) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        let enc = ctx.config.effective_encryption(repo_cfg);
        let encryption = match enc.mode() {
            EncryptionMode::Auto => EncryptionChoice::Auto,
            EncryptionMode::Aes256Gcm => EncryptionChoice::Fixed(Algorithm::Aes256Gcm),
            EncryptionMode::Chacha20Poly1305 => EncryptionChoice::Fixed(Algorithm::Chacha20Poly1305),
            EncryptionMode::None => EncryptionChoice::Fixed(Algorithm::None),
        };
        let mut opts = InitOptions { encryption, ..InitOptions::default() };
        opts.compression = crate::commands::backup::codec(&ctx.config.effective_compression(repo_cfg).to_string())?;
        if let Some(c) = &ctx.config.chunker {
            let n = |v: u64| u32::try_from(v).context("chunker size too large");
            opts.chunker = vger_chunker::ChunkerParams {
                min_size: n(c.min_size)?,
                avg_size: n(c.avg_size)?,
                max_size: n(c.max_size)?,
            };
        }
        let passphrase = if enc.mode() == EncryptionMode::None {
            None
        } else {
            Some(
                ctx.passphrase(repo_cfg, true)?
                    .ok_or_else(|| EngineError::PassphraseRequired { location: repo_cfg.url.clone() })?,
            )
        };
        let storage = ctx.storage(repo_cfg, true)?;
        let repo = Repository::init(storage, passphrase, opts)?;
        if ctx.json {
            crate::output::print_json(&serde_json::json!({
                "repository": repo_cfg.label(),
                "url": repo_cfg.url,
                "encryption": repo.config().encryption,
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
