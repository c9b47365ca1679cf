//! How the CLI words errors and notices: the engine and the application
//! layer say what is wrong without naming a command; here each typed case
//! gets the `vger` command that helps, and the whole chain of causes goes
//! on one line.

use std::error::Error;

use vger_app::AppError;
use vger_engine::check::CheckReport;
use vger_engine::compact::CompactReport;
use vger_engine::lock::LockKind;
use vger_engine::{EngineError, Notice};

/// The error and its causes on one line, in the CLI's words, without
/// repeating a cause that the text before it already contains.
pub fn one_line(e: &anyhow::Error) -> String {
    join(e.chain())
}

/// [`one_line`] of an application-layer error.
pub fn one_line_of(e: &AppError) -> String {
    let mut causes: Vec<&(dyn Error + 'static)> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(cause) = next {
        causes.push(cause);
        next = cause.source();
    }
    join(causes.into_iter())
}

fn join<'a>(causes: impl Iterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut out = String::new();
    for cause in causes {
        let text = cli_text(cause).unwrap_or_else(|| cause.to_string());
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    // Control characters (from a server's reply, a file name in a
    // snapshot) become spaces, so no error can move the cursor or retitle
    // the terminal.
    out.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The CLI's text for the error cases it words itself.
fn cli_text(cause: &(dyn Error + 'static)) -> Option<String> {
    if let Some(e) = cause.downcast_ref::<AppError>() {
        return app_text(e);
    }
    if let Some(e) = cause.downcast_ref::<Box<AppError>>() {
        return app_text(e);
    }
    cause.downcast_ref::<EngineError>().and_then(engine_text)
}

fn app_text(e: &AppError) -> Option<String> {
    Some(match e {
        AppError::Engine(e) => return engine_text(e),
        AppError::NoRepositoryFolder { repository, .. } => {
            format!("{e}; run `vger init` first, or check `url` of repository `{repository}`")
        }
        AppError::NoSources { config, .. } => format!("{e}; add a `sources:` list to {}", config.display()),
        AppError::SourceMissing { config, .. } => format!("{e}; fix `sources` in {}", config.display()),
        AppError::PruneHeldBack { held, .. } => format!(
            "prune deleted nothing: {held} snapshots would go only because of a burst of new ones (a stolen client may \
             be flooding the repository). If the burst is your own backups, run `vger prune --force`; if not, remove \
             them with `vger snapshot delete ID...`, revoke the token that wrote them, and prune again"
        ),
        AppError::Damaged { .. } => {
            format!("{e}; `vger check --repair` rebuilds the index and removes what cannot be restored")
        }
        _ => return None,
    })
}

fn engine_text(e: &EngineError) -> Option<String> {
    Some(match e {
        EngineError::NotARepository { .. } => format!("{e}; run `vger init` first, or check the url"),
        EngineError::SnapshotNotFound(_) => format!("{e}; `vger list` shows the snapshot ids"),
        EngineError::MissingChunk { .. } => format!("{e}: run `vger check`"),
        EngineError::Locked { holder, wanted } => {
            let what = match wanted {
                LockKind::Exclusive => "this command needs the repository to itself",
                LockKind::Shared => "maintenance is running",
            };
            format!(
                "repository is locked: {what}; {}. Wait for it to finish and retry; if that process is gone, run `vger break-lock`",
                holder.describe()
            )
        }
        EngineError::LockUnreadable { .. } => format!("{e}; if no vger is running on it, run `vger break-lock`"),
        EngineError::LockLapsed { seconds, lease_secs } => format!(
            "our repository lock lapsed ({seconds}s without a heartbeat, lease {lease_secs}s): maintenance may have changed the repository meanwhile, so nothing more is committed; run the command again"
        ),
        EngineError::LockRemoved => "our repository lock was removed (break-lock or a stale-lock cleanup): nothing more is committed; run the command again".to_string(),
        EngineError::PathsNotInSnapshot => format!("{e}; `vger snapshot list ID` shows its paths"),
        EngineError::KeySlotNotFound { .. } => format!("{e}; `vger key list` shows them"),
        EngineError::PackTooShort { .. } => format!("{e}; run `vger check`"),
        _ => return None,
    })
}

/// A notice in the CLI's words.
pub fn notice(n: &Notice) -> String {
    match n {
        Notice::SegmentSkipped { .. } => format!("{n}: run `vger check --repair`"),
        Notice::SegmentUnreadable { .. } => format!("{n} (`vger check --repair` rebuilds the index)"),
        Notice::UnindexedPacks { .. } => format!("{n}; `vger compact` adopts or removes them"),
        Notice::DamagedPackLeft { .. } => format!("{n}, run `vger check`"),
        _ => n.to_string(),
    }
}

fn notices(list: &[Notice]) -> serde_json::Value {
    list.iter().map(notice).collect()
}

/// A check report as `--json` prints it: the notices in the CLI's words.
pub fn check_json(r: &CheckReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["errors"] = notices(&r.errors);
    v["warnings"] = notices(&r.warnings);
    v
}

/// A compact report as `--json` prints it: the notices in the CLI's words.
pub fn compact_json(r: &CompactReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["warnings"] = notices(&r.warnings);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_adds_its_commands_to_typed_errors_once() {
        let e: anyhow::Error = AppError::from(EngineError::NotARepository { location: "/r".into() }).into();
        assert_eq!(
            one_line(&e),
            "no vger repository at /r (no `config` object); run `vger init` first, or check the url"
        );
        let nested = AppError::Source {
            label: "docs".into(),
            source: Box::new(AppError::from(EngineError::SnapshotNotFound("ab".into()))),
        };
        assert_eq!(one_line_of(&nested), "source `docs`: no snapshot matches `ab`; `vger list` shows the snapshot ids");
        assert_eq!(
            notice(&Notice::UnindexedPacks { count: 2 }),
            "2 pack(s) are not in the index (left by an interrupted backup or compact); `vger compact` adopts or removes them"
        );
    }
}
