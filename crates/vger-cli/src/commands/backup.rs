//! `vger backup`: one snapshot per source in each selected repository.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use vger_config::{ChangeDetection, HookCommand, RepositoryConfig, SourceConfig};
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection as EngineChange};
use vger_engine::progress::Progress;
use vger_format::compress::Codec;
use vger_fs::WalkOptions;

use crate::cli::BackupArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::progress::ProgressDisplay;
use crate::Outcome;

pub fn codec(s: &str) -> Result<Codec> {
    s.parse::<Codec>().map_err(|e| anyhow!(e))
}

pub fn run(ctx: &Context, args: &BackupArgs) -> Result<Outcome> {
    let mut json_out = Vec::new();
    let outcome = super::each_repository(ctx, |repo_cfg| backup_repository(ctx, repo_cfg, args, &mut json_out));
    if ctx.json {
        crate::output::print_json(&json_out)?;
    }
    outcome
}

/// Backs up every source that goes to `repo_cfg`, inside the global,
/// repository and source hook scopes; updates the failure counter.
pub fn backup_repository(
    ctx: &Context,
    repo_cfg: &RepositoryConfig,
    args: &BackupArgs,
    json_out: &mut Vec<serde_json::Value>,
) -> Result<Outcome> {
    let time = match &args.time {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--time `{t}` is not an RFC 3339 time such as 2026-10-05T12:00:00Z"))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let sources: Vec<&SourceConfig> = ctx
        .config
        .sources()
        .iter()
        .filter(|s| args.source.as_ref().is_none_or(|l| &s.label() == l))
        .filter(|s| s.goes_to(repo_cfg.label()))
        .collect();
    if sources.is_empty() {
        match &args.source {
            Some(l) => bail!("no source labelled `{l}` goes to repository `{}`", repo_cfg.label()),
            None => bail!(
                "no sources go to repository `{}`; add a `sources:` list to {}",
                repo_cfg.label(),
                ctx.config_path.display()
            ),
        }
    }
    super::with_hooks(ctx, repo_cfg, HookCommand::Backup, true, |values| {
        let repo = ctx.open(repo_cfg)?;
        let compression = match &args.compression {
            Some(c) => Some(codec(c)?),
            None => Some(codec(&ctx.config.effective_compression(repo_cfg).to_string())?),
        };
        let limits = ctx.config.effective_limits(repo_cfg);
        let threads = limits.threads.unwrap_or(0);
        crate::limits::apply_process_limits(&limits);
        let read_limit = limits.io_read_mib_per_sec.map(|m| (m * 1048576.0) as u64);
        let mut worst = Outcome::Ok;
        let mut failed = Vec::new();
        for source in &sources {
            let label = source.label();
            let mut source_values = values.clone();
            source_values.source_label = label.clone();
            source_values.source_path =
                source.all_paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
            let source_paths = source_values.source_path.clone();
            let hooks = source.hooks.clone().unwrap_or_default().for_command(HookCommand::Backup);
            let base = values.consecutive_failures;
            let result =
                crate::hooks::scoped(&hooks, &mut source_values, &mut |v| v.consecutive_failures = base + 1, |_| {
                    let prepared = prepare(ctx, source)?;
                    tracing::info!(
                        "source `{label}`: backing up {} ({} threads{})",
                        source_paths,
                        if threads == 0 { "auto".to_string() } else { threads.to_string() },
                        read_limit.map(|r| format!(", reads capped at {} MiB/s", r / 1_048_576)).unwrap_or_default()
                    );
                    let opts = BackupOptions {
                        compression,
                        time,
                        threads,
                        tags: args.tags.clone(),
                        no_parent: args.no_parent,
                        checkpoint_interval: Some(std::time::Duration::from_secs(args.checkpoint)),
                        read_limit,
                        resume_dir: crate::state::resume_dir(ctx.config.cache_dir.as_ref()),
                    };
                    let progress = Arc::new(Progress::default());
                    let display = ProgressDisplay::start(progress.clone(), "backup", ctx.quiet);
                    let result = backup(&repo, &prepared, &opts, &progress);
                    drop(display);
                    for w in progress.take_warnings() {
                        eprintln!("vger: warning: {w}");
                    }
                    Ok(result?)
                });
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    failed.push((label, e));
                    continue;
                }
            };
            for w in &report.warnings {
                eprintln!("vger: warning: {w}");
            }
            {
                let s = &report.snapshot.stats;
                tracing::info!(
                    "source `{label}`: {} read, {} packs written, {} new chunks, {} stored, parent {}",
                    bytes(report.read_bytes),
                    report.packs_written,
                    s.added_chunks,
                    bytes(s.added_stored),
                    report
                        .snapshot
                        .parent
                        .map(|p| vger_engine::snapshots::short_id(&p))
                        .unwrap_or_else(|| "none".into())
                );
                if report.resumed_files > 0 {
                    tracing::info!(
                        "source `{label}`: resumed an interrupted backup: {} files ({}) not read again",
                        report.resumed_files,
                        bytes(report.resumed_bytes)
                    );
                }
            }
            if !report.warnings.is_empty() {
                worst = Outcome::Partial;
            }
            let s = &report.snapshot.stats;
            // Collected for --json and for the default run's summary (the daemon reports it).
            json_out.push(serde_json::json!({
                "repository": repo_cfg.label(),
                "source_label": label,
                "id": report.snapshot_id.to_hex(),
                "short_id": vger_engine::snapshots::short_id(&report.snapshot_id),
                "time": report.snapshot.time,
                "end_time": report.snapshot.end_time,
                "stats": s,
                "read_bytes": report.read_bytes,
                "resumed_files": report.resumed_files,
                "resumed_bytes": report.resumed_bytes,
                "warnings": report.warnings,
            }));
            if !ctx.json {
                println!(
                    "snapshot {} of `{label}`: {} files, {} dirs, {} read, {} new ({} stored){}",
                    vger_engine::snapshots::short_id(&report.snapshot_id),
                    s.files,
                    s.dirs,
                    bytes(s.bytes),
                    bytes(s.added_bytes),
                    bytes(s.added_stored),
                    if s.errors > 0 { format!(", {} skipped", s.errors) } else { String::new() }
                );
            }
        }
        if sources.len() == 1 {
            if let Some((label, e)) = failed.pop() {
                return Err(e.context(format!("source `{label}`")));
            }
        }
        if !failed.is_empty() {
            for (label, e) in &failed {
                eprintln!("vger: error: source `{label}`: {}", crate::one_line(e));
            }
            let labels: Vec<&str> = failed.iter().map(|(l, _)| l.as_str()).collect();
            bail!("{} of {} sources failed: {}", failed.len(), sources.len(), labels.join(", "));
        }
        Ok(worst)
    })
}

/// Turns a configured source into what the engine walks.
fn prepare(ctx: &Context, source: &SourceConfig) -> Result<BackupSource> {
    let paths: Vec<PathBuf> = source.all_paths().iter().map(|p| normalize(p)).collect::<Result<_>>()?;
    for p in &paths {
        if std::fs::symlink_metadata(p).is_err() {
            bail!("source path {} does not exist; fix `sources` in {}", p.display(), ctx.config_path.display());
        }
    }
    let roots = vger_engine::backup::roots_for_paths(&paths);
    let exclude = crate::excludes::build(
        crate::excludes::ExcludeSpec {
            patterns: ctx.config.exclude_patterns.iter().chain(&source.exclude).cloned().collect(),
            markers: ctx.config.exclude_if_present.iter().chain(&source.exclude_if_present).cloned().collect(),
            git_ignore: source.git_ignore,
        },
        &roots,
    )?;
    let xattrs = source.xattrs.as_ref().or(ctx.config.xattrs.as_ref()).is_none_or(|x| x.enabled);
    let walk = WalkOptions { one_file_system: source.one_file_system, xattrs, file_xattrs_later: false, exclude };
    let change_detection = match source.change_detection.unwrap_or_default() {
        ChangeDetection::Strict => EngineChange::Strict,
        ChangeDetection::MtimeSize => EngineChange::MtimeSize,
    };
    Ok(BackupSource {
        label: source.label(),
        roots,
        paths: paths.iter().map(|p| p.display().to_string()).collect(),
        walk,
        change_detection,
        dumps: source
            .command_dumps
            .iter()
            .map(|d| vger_engine::dump::CommandDumpSpec { name: d.name.clone(), command: d.command.clone() })
            .collect(),
    })
}

/// Absolute, without `.`/`..` components or a trailing slash (symlinks are
/// not resolved: the path is stored as the user wrote it).
fn normalize(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}
