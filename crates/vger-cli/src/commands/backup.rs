//! `vger backup`: one snapshot per source in each selected repository.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use vger_app::backup::BackupRequest;
use vger_format::compress::Codec;

use crate::cli::BackupArgs;
use crate::context::Context;
use crate::frontend::Printer;
use crate::Outcome;

pub fn run(ctx: &Context, args: &BackupArgs) -> Result<Outcome> {
    let front = Printer::new(ctx.json, ctx.quiet);
    let mut request = request(args)?;
    // The scan only feeds the progress totals: with no bar and no JSON
    // lines (`-q`, cron, a pipe) it would walk the sources a second time
    // for nothing (one lstat per entry, about a fifth of an unchanged
    // backup's system time on a tree of 70,000 small files).
    request.no_scan |= !front.shows_progress();
    let mut made = Vec::new();
    let outcome = super::each_repository(ctx, |repo| Ok(ctx.app.backup(repo, &request, &front, &mut made)?));
    if ctx.json {
        let json: Vec<serde_json::Value> = made.iter().map(crate::output::snapshot_made_json).collect();
        crate::output::print_json(&json)?;
    }
    outcome
}

fn request(args: &BackupArgs) -> Result<BackupRequest> {
    let time = match &args.time {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--time `{t}` is not an RFC 3339 time such as 2026-10-05T12:00:00Z"))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let compression = match &args.compression {
        Some(c) => Some(c.parse::<Codec>().map_err(|e| anyhow!(e))?),
        None => None,
    };
    Ok(BackupRequest {
        source: args.source.clone(),
        compression,
        time,
        no_parent: args.no_parent,
        no_scan: args.no_scan,
        tags: args.tags.clone(),
        checkpoint: Duration::from_secs(args.checkpoint),
    })
}
