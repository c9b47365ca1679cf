//! Checks that span several keys, run after the strict parse succeeded.

use std::collections::HashMap;
use std::path::Path;

use crate::diagnose::suggestion;
use crate::error::ConfigError;
use crate::model::Config;
use crate::sections::{ChunkerConfig, ScheduleConfig};
use crate::spans::{ConfigSpans, Position};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// FastCDC 5.0 (`v2020`) bounds: `(key, lowest, highest)`.
const CHUNKER_BOUNDS: [(&str, u64, u64); 3] =
    [("min_size", 64, MIB), ("avg_size", 256, 4 * MIB), ("max_size", KIB, 16 * MIB)];

/// Returns the first problem found, pointing at its line where known.
pub(crate) fn validate(config: &Config, spans: &ConfigSpans, file: &Path) -> Result<(), ConfigError> {
    let fail = |position: Option<Position>, message: String| Err(ConfigError::invalid(file, position, message));

    if config.repositories.is_empty() {
        return fail(spans.repositories(), "`repositories` is empty; add at least one entry with a `url`".to_owned());
    }
    let mut repo_labels: HashMap<&str, usize> = HashMap::new();
    for (index, repo) in config.repositories.iter().enumerate() {
        let label = repo.label();
        if repo.url.trim().is_empty() {
            return fail(spans.repository_url(index), "repository `url` is empty; write a path or a URL".to_owned());
        }
        if let Some(first) = repo_labels.insert(label, index) {
            let also = line_note(spans.repository(first));
            return fail(
                spans.repository(index),
                format!("repository label `{label}` is used twice{also}; give one of them a different `label:`"),
            );
        }
        let lower = repo.url.to_ascii_lowercase();
        if (lower.starts_with("http://") || lower.starts_with("s3+http://")) && !repo.allow_insecure_http {
            return fail(
                spans.repository_url(index),
                format!("`{}` sends data and credentials unencrypted; use https or set `allow_insecure_http: true` on this repository", repo.url),
            );
        }
        if let Some(schedule) = &repo.schedule {
            let position = spans.repository_schedule(index);
            if !schedule.enabled {
                return fail(
                    position,
                    format!("repository `{label}` has a `schedule` without `enabled: true`; add `enabled: true` or remove the schedule"),
                );
            }
            check_schedule(schedule).or_else(|message| fail(position, message))?;
        }
    }

    if let Some(schedule) = &config.schedule {
        check_schedule(schedule).or_else(|message| fail(spans.schedule(), message))?;
    }
    if let Some(chunker) = &config.chunker {
        check_chunker(chunker).or_else(|message| fail(spans.chunker(), message))?;
    }

    let known_repos: Vec<&str> = config.repositories.iter().map(|r| r.label()).collect();
    for (index, repo) in config.repositories.iter().enumerate() {
        for target in &repo.copy_to {
            let label = repo.label();
            if target == label {
                return fail(
                    spans.repository(index),
                    format!("repository `{label}` names itself in `copy_to`; list other repositories' labels"),
                );
            }
            if !known_repos.contains(&target.as_str()) {
                return fail(
                    spans.repository(index),
                    format!(
                        "repository `{label}` names unknown repository `{target}` in `copy_to`{}",
                        suggestion(target, &known_repos)
                    ),
                );
            }
        }
    }
    let mut source_labels: HashMap<String, usize> = HashMap::new();
    for (index, source) in config.sources.iter().enumerate() {
        let position = spans.source(index);
        let label = source.label();
        match (&source.path, source.paths.is_empty()) {
            (Some(_), false) => {
                return fail(position, format!("source `{label}` sets both `path` and `paths`; keep one"))
            }
            // Command dumps alone (a database server with nothing else to
            // back up): the label names the snapshots, so it is required.
            (None, true) if !source.command_dumps.is_empty() && source.label.is_none() => {
                return fail(
                    position,
                    "a source of `command_dumps` alone needs a `label:` to name its snapshots".to_owned(),
                );
            }
            (None, true) if !source.command_dumps.is_empty() => {}
            (None, true) => {
                return fail(
                    position,
                    format!("source `{label}` has neither `path` nor `paths`; add the folders to back up (or `command_dumps` with a `label`)"),
                )
            }
            _ => {}
        }
        for repo in &source.repos {
            if !known_repos.contains(&repo.as_str()) {
                return fail(
                    position,
                    format!(
                        "source `{label}` names unknown repository `{repo}` in `repos`{}",
                        suggestion(repo, &known_repos)
                    ),
                );
            }
        }
        if let Some(first) = source_labels.insert(label.clone(), index) {
            let also = line_note(spans.source(first));
            return fail(
                position,
                format!("source label `{label}` is used twice{also}; give one of them a different `label:`"),
            );
        }
    }
    Ok(())
}

fn line_note(position: Option<Position>) -> String {
    position.map_or_else(String::new, |(line, _)| format!(" (first at line {line})"))
}

fn check_schedule(schedule: &ScheduleConfig) -> Result<(), String> {
    if schedule.every.is_some() && schedule.cron.is_some() {
        return Err("`schedule` sets both `every` and `cron`; keep one".to_owned());
    }
    Ok(())
}

fn check_chunker(chunker: &ChunkerConfig) -> Result<(), String> {
    let sizes = [chunker.min_size, chunker.avg_size, chunker.max_size];
    for ((key, lowest, highest), size) in CHUNKER_BOUNDS.iter().zip(sizes) {
        if size % 2 != 0 {
            return Err(format!("chunker `{key}` is {size}, an odd number; FastCDC needs even sizes"));
        }
        if size < *lowest || size > *highest {
            return Err(format!("chunker `{key}` is {size} bytes; FastCDC accepts {lowest} to {highest}"));
        }
    }
    if !(chunker.min_size <= chunker.avg_size && chunker.avg_size <= chunker.max_size) {
        return Err(format!(
            "chunker sizes must satisfy min_size <= avg_size <= max_size; got {} / {} / {}",
            chunker.min_size, chunker.avg_size, chunker.max_size
        ));
    }
    Ok(())
}
