//! `vger info`: repository statistics.

use anyhow::Result;

use crate::context::Context;
use crate::output::bytes;
use crate::Outcome;

pub fn run(ctx: &Context) -> Result<Outcome> {
    let mut all = Vec::new();
    let outcome = super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let i = vger_engine::info::info(&repo)?;
        if ctx.json {
            all.push(serde_json::json!({ "repository": repo_cfg.label(), "info": i }));
            return Ok(Outcome::Ok);
        }
        println!("repository     {} ({})", repo_cfg.label(), i.location);
        println!("id             {}", i.repository_id);
        println!(
            "encryption     {}{}",
            i.encryption,
            if i.tamper_proof { "" } else { " (NOT encrypted, not tamper-proof: checksums only)" }
        );
        println!("compression    {}", i.compression);
        println!("created        {}", i.created);
        println!("snapshots      {}", i.snapshots);
        println!("original       {}  (all snapshots' files added up)", bytes(i.original_bytes));
        println!("deduplicated   {}  (unique data)", bytes(i.deduplicated_bytes));
        println!("compressed     {}  (unique data, compressed and encrypted)", bytes(i.compressed_bytes));
        println!("stored         {}  ({} packs, {} chunks)", bytes(i.stored_bytes), i.packs, i.chunks);
        Ok(Outcome::Ok)
    });
    if ctx.json {
        crate::output::print_json(&all)?;
    }
    outcome
}
