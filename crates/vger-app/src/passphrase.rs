//! Where a repository's passphrase comes from, first that answers:
//! `VGER_PASSPHRASE`, the config's `passcommand`, the config's
//! `passphrase`, and last the front end's prompt (a terminal, a dialog),
//! if it has one. The daemon has none and refuses to start without one of
//! the others.

use std::process::Command;

use vger_config::{Config, RepositoryConfig};

use crate::AppError;

/// What a front end's prompt is asked for.
#[derive(Debug, Clone, Copy)]
pub struct PassphraseRequest<'a> {
    pub repository: &'a RepositoryConfig,
    /// A new passphrase (init): ask twice and compare.
    pub confirm: bool,
}

/// A front end's way to ask the user; `Ok(None)` when it cannot (no
/// terminal, the dialog was dismissed).
pub type PromptFn = dyn Fn(&PassphraseRequest<'_>) -> Result<Option<Vec<u8>>, AppError> + Send + Sync;

/// The passphrase from `VGER_PASSPHRASE`, `passcommand` or `passphrase`;
/// `None` when only a prompt could supply it.
pub fn without_prompt(config: &Config, repo: &RepositoryConfig) -> Result<Option<Vec<u8>>, AppError> {
    if let Ok(p) = std::env::var("VGER_PASSPHRASE") {
        return Ok(Some(p.into_bytes()));
    }
    let enc = config.effective_encryption(repo);
    if let Some(cmd) = &enc.passcommand {
        return run_passcommand(cmd).map(Some);
    }
    Ok(enc.passphrase.as_ref().map(|p| p.clone().into_bytes()))
}

/// Runs `passcommand` and takes its output, without the final newline.
/// Its stderr is shown only when it fails: a passphrase printed there by
/// mistake would otherwise end up in a log.
fn run_passcommand(cmd: &str) -> Result<Vec<u8>, AppError> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|source| AppError::PasscommandStart { command: cmd.to_string(), source })?;
    if !out.status.success() {
        return Err(AppError::PasscommandFailed {
            command: cmd.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut p = out.stdout;
    while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        p.pop();
    }
    if p.is_empty() {
        return Err(AppError::PasscommandEmpty { command: cmd.to_string() });
    }
    Ok(p)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passcommand_output_without_its_newline() {
        assert_eq!(run_passcommand("printf 'pw\\n'").unwrap(), b"pw");
        assert!(matches!(run_passcommand("true"), Err(AppError::PasscommandEmpty { .. })));
        let err = run_passcommand("echo oops >&2; exit 3").err().unwrap();
        assert!(matches!(err, AppError::PasscommandFailed { ref stderr, .. } if stderr == "oops"), "{err:?}");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }
}
