//! `vger`: parses arguments, runs the command on each selected repository
//! and maps the outcome to an exit code (0 ok, 1 error, 3 partial: some
//! files were skipped). The work itself lives in the application layer
//! (`vger-app`) and the engine (`vger-engine`); this binary prints, words
//! errors, and owns what is process-wide (allocator tuning, niceness).

mod alloc;
mod cli;
mod commands;
mod context;
mod daemon;
mod frontend;
mod limits;
mod output;
mod wording;

#[global_allocator]
static GLOBAL: alloc::SplitAlloc = alloc::SplitAlloc;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;

pub use vger_app::Outcome;
pub(crate) use wording::one_line;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(3),
        Err(e) => {
            eprintln!("vger: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// `-v` shows what vger does (info), `-vv` also every storage request and
/// hook detail (debug), `-vvv` everything (trace, with the module). Logs go
/// to stderr so that `--json` output on stdout stays clean.
fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    let level = match verbose {
        // Without -v, problems reach the user as warnings and errors of
        // the command itself, never as log lines.
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose >= 3)
        .try_init();
}

fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    if cli.json && cli.progress {
        frontend::JSON_LINES.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    init_logging(cli.verbose);
    // The allocator's tuning is process-wide: chosen here, per command,
    // before any thread starts.
    match &cli.command {
        None | Some(Command::Backup(_)) | Some(Command::Daemon(_)) => limits::tune_allocator_for_backups(),
        Some(Command::Mount(_)) => limits::tune_allocator_for_serving(),
        _ => {}
    }
    if let Some(Command::Config(args)) = &cli.command {
        return commands::config::run(args);
    }
    // Generated from the argument definitions; they need no config.
    match &cli.command {
        Some(Command::Completions(args)) => return commands::shell::completions(args, &mut std::io::stdout().lock()),
        Some(Command::Man(args)) => return commands::shell::man_pages(&args.dir),
        _ => {}
    }
    let ctx = Context::load(cli)?;
    let Some(command) = &cli.command else {
        return commands::run::run(&ctx);
    };
    match command {
        Command::Config(_) | Command::Completions(_) | Command::Man(_) => Ok(Outcome::Ok),
        Command::Init(args) => commands::init::run(&ctx, args),
        Command::Backup(args) => commands::backup::run(&ctx, args),
        Command::List(args) => commands::list::run(&ctx, args),
        Command::Snapshot(cmd) => commands::snapshot::run(&ctx, cmd),
        Command::Restore(args) => commands::restore::run(&ctx, args),
        Command::Info => commands::info::run(&ctx),
        Command::Key(cmd) => commands::key::run(&ctx, cmd),
        Command::Prune(args) => commands::prune::run(&ctx, args),
        Command::Compact(args) => commands::compact::run(&ctx, args),
        Command::Copy(args) => commands::copy::run(&ctx, args),
        Command::Check(args) => commands::check::run(&ctx, args),
        Command::Delete(args) => commands::delete::run(&ctx, args),
        Command::BreakLock => commands::delete::break_lock(&ctx),
        Command::Daemon(args) => commands::daemon::run(&ctx, args),
        Command::Mount(args) => commands::mount::run(&ctx, args),
    }
}
