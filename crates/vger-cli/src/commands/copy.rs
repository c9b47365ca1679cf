//! `vger copy`.

use anyhow::Result;
use vger_app::copy::CopySelection;
use vger_engine::copy::CopyOptions;
use vger_engine::snapshots::short_id;

use crate::cli::CopyArgs;
use crate::context::Context;
use crate::frontend::Printer;
use crate::output::{bytes, print_json};
use crate::Outcome;

pub fn run(ctx: &Context, args: &CopyArgs) -> Result<Outcome> {
    let from = one_repository(ctx, &args.from)?;
    let to = one_repository(ctx, &args.to)?;
    let selection = CopySelection { source_label: args.source.clone(), last: args.last, ids: args.ids.clone() };
    let front = Printer::new(ctx.json, ctx.quiet);
    let report = ctx.app.copy(from, to, &selection, &CopyOptions::default(), &front)?;
    if ctx.json {
        print_json(&serde_json::json!({
            "from": from.label(),
            "to": to.label(),
            "copied": report.copied.iter().map(|c| serde_json::json!({
                "source_id": c.source_id.to_string(),
                "target_id": c.target_id.to_string(),
            })).collect::<Vec<_>>(),
            "already_copied": report.already_copied.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
            "chunks_sent": report.chunks_sent,
            "bytes_sent": report.bytes_sent,
            "chunks_deduplicated": report.chunks_deduplicated,
            "stored_bytes": report.stored_bytes,
            "rechunked_files": report.rechunked_files,
            "packs_recovered": report.packs_recovered,
            "chunks_recovered": report.chunks_recovered,
        }))?;
        return Ok(Outcome::Ok);
    }
    if report.packs_recovered > 0 {
        println!(
            "{} packs ({} chunks) an interrupted run had stored in {} were indexed; their chunks were not sent again",
            report.packs_recovered,
            report.chunks_recovered,
            to.label()
        );
    }
    for c in &report.copied {
        println!("copied snapshot {} to {} as {}", short_id(&c.source_id), to.label(), short_id(&c.target_id));
    }
    println!(
        "{} snapshots copied, {} already in {}; {} chunks sent ({} of data, {} stored), {} already there",
        report.copied.len(),
        report.already_copied.len(),
        to.label(),
        report.chunks_sent,
        bytes(report.bytes_sent),
        bytes(report.stored_bytes),
        report.chunks_deduplicated
    );
    if report.rechunked_files > 0 {
        println!(
            "{} files were cut again with {}'s chunker (its chunker parameters differ from {}'s)",
            report.rechunked_files,
            to.label(),
            from.label()
        );
    }
    Ok(Outcome::Ok)
}

fn one_repository<'a>(ctx: &'a Context, name: &str) -> Result<&'a vger_config::RepositoryConfig> {
    let repos = ctx.app.repositories(Some(name))?;
    repos.into_iter().next().ok_or_else(|| anyhow::anyhow!("no repository `{name}` in the config"))
}
