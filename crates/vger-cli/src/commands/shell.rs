//! `vger completions SHELL` and `vger man DIR`: generated from the clap
//! definitions in `cli.rs`, so they follow every new command and flag.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::Outcome;

/// Writes the completion script for `args.shell` to `out`.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<Outcome> {
    let mut cmd = Cli::command();
    // Generated into memory first: clap_complete panics when its writer
    // fails (e.g. `vger completions bash | head`), ours returns an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "vger", &mut script);
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script to standard output")?;
    Ok(Outcome::Ok)
}

/// Writes `vger.1` and one page per subcommand (`vger-backup.1`,
/// `vger-snapshot-list.1`, ...) into `dir`, creating it when missing.
pub fn man_pages(dir: &Path) -> Result<Outcome> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}: check the path and its permissions", dir.display()))?;
    let cmd = Cli::command();
    write_pages(cmd, dir)?;
    Ok(Outcome::Ok)
}

/// Writes the page of `cmd`, then recursively those of its subcommands
/// (clap_mangen's own `generate_to` without the `help` pseudo-commands).
fn write_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir)?;
    }
    let name = format!("{}.1", cmd.get_display_name().unwrap_or_else(|| cmd.get_name()));
    let path = dir.join(&name);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page).with_context(|| format!("cannot render {name}"))?;
    std::fs::write(&path, page)
        .with_context(|| format!("cannot write {}: check the folder's permissions and free space", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn script(shell: clap_complete::Shell) -> String {
        let mut out = Vec::new();
        completions(&CompletionsArgs { shell }, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_shell_script_names_the_commands() {
        use clap_complete::Shell::*;
        for shell in [Bash, Zsh, Fish, Elvish, PowerShell] {
            let text = script(shell);
            for word in ["restore", "backup", "completions", "repo"] {
                assert!(text.contains(word), "{shell} script lacks {word}");
            }
        }
        assert!(script(Bash).contains("complete -F _vger"));
    }

    #[test]
    fn man_writes_one_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(dir.path()).unwrap();
        for page in
            ["vger.1", "vger-backup.1", "vger-restore.1", "vger-snapshot.1", "vger-snapshot-list.1", "vger-key.1"]
        {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not a man page");
        }
        let main = std::fs::read_to_string(dir.path().join("vger.1")).unwrap();
        assert!(main.contains("restore"), "vger.1 lists the subcommands");
        assert!(!dir.path().join("vger-help.1").exists(), "no page for the help pseudo-command");
    }

    #[test]
    fn man_reports_an_unwritable_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = man_pages(&file.join("sub")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
    }
}
