//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "vger", version = env!("VGER_LONG_VERSION"), about = "Fast, encrypted, deduplicating backups driven by one YAML file", long_about = None)]
pub struct Cli {
    /// Configuration file (default: $VGER_CONFIG, ./vger.yaml, ~/.config/vger/config.yaml, /etc/vger/config.yaml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run on one repository only, by label or URL (default: every repository in the config).
    #[arg(short = 'R', long = "repo", global = true, value_name = "NAME")]
    pub repo: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// With --json: progress as JSON lines on stderr, about once a second.
    #[arg(long, global = true)]
    pub progress: bool,
    /// More detail on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Without a command: backup, prune, compact and (when due) check every repository.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter vger.yaml.
    Config(ConfigArgs),
    /// Create the repositories named in the config.
    Init(InitArgs),
    /// Back up the configured sources, one snapshot per source and repository.
    Backup(BackupArgs),
    /// List snapshots.
    List(ListArgs),
    /// Inspect snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Restore a snapshot (or some paths of it) into DEST.
    Restore(RestoreArgs),
    /// Repository statistics: snapshots, original, deduplicated and stored sizes.
    Info,
    /// Manage passphrases (key slots).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delete snapshots no retention rule keeps (then `compact` frees the space).
    Prune(PruneArgs),
    /// Free the space of unused chunks: delete empty packs, repack sparse ones.
    Compact(CompactArgs),
    /// Copy snapshots from one repository of the config into another
    /// (only the chunks the target lacks are sent).
    Copy(CopyArgs),
    /// Verify the repository: structure, and with --verify-data every chunk.
    Check(CheckArgs),
    /// Delete the whole repository (asks you to type its label).
    Delete(DeleteArgs),
    /// Remove all locks (when a crashed vger left one behind).
    BreakLock,
    /// Run the default cycle on each repository's schedule, in the foreground (for systemd).
    Daemon(crate::commands::daemon::DaemonArgs),
    /// Serve the snapshots read-only over WebDAV and as a web UI (browser, file managers, rclone).
    Mount(crate::commands::mount::MountArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write one man page per command and subcommand into DIR (vger.1, vger-backup.1, ...).
    Man(ManArgs),
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// Use the chunker parameters of repository LABEL of the config (which must exist) instead
    /// of the config's, so that `vger copy --from LABEL` moves chunks as they are (the new
    /// repository still gets its own keys and passphrase).
    #[arg(long, value_name = "LABEL")]
    pub copy_chunker_params_from: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct PruneArgs {
    /// Show what would be deleted and which rule keeps each kept snapshot.
    #[arg(long)]
    pub dry_run: bool,
    /// Only snapshots of this source label.
    #[arg(long, value_name = "LABEL")]
    pub source: Option<String>,
    /// Delete what the rules say even when a burst of new snapshots is
    /// what pushes older ones out (vger-server; see docs/server.md).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CopyArgs {
    /// The repository to copy from (label or URL).
    #[arg(long, value_name = "LABEL")]
    pub from: String,
    /// The repository to copy into (label or URL).
    #[arg(long, value_name = "LABEL")]
    pub to: String,
    /// Only snapshots of this source label.
    #[arg(long, value_name = "LABEL")]
    pub source: Option<String>,
    /// Only the newest N snapshots (after --source).
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Snapshots to copy (IDs, prefixes or `latest`); default: all.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CompactArgs {
    /// Repack packs with at least this percentage unused (chunks no snapshot needs, bytes no index entry lists).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub threshold: u8,
    /// Rewrite at most this much pack data (e.g. 2GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_repack_size: Option<String>,
    /// Leave packs younger than this alone (e.g. 3h, 30m, 0s).
    #[arg(long, default_value = "3h", value_name = "DURATION")]
    pub grace: String,
    /// Report only.
    #[arg(long)]
    pub dry_run: bool,
    /// On vger-server: download and repack here instead of having the
    /// server copy the chunks.
    #[arg(long)]
    pub distrust_server: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Read, decrypt and re-hash every chunk.
    #[arg(long)]
    pub verify_data: bool,
    /// Check only this percentage of packs and snapshots.
    #[arg(long, value_name = "N")]
    pub max_percent: Option<f64>,
    /// Rebuild the index from the packs and remove snapshots whose data is gone.
    #[arg(long)]
    pub repair: bool,
    /// With --repair: do not ask before removing damaged snapshots.
    #[arg(long)]
    pub yes: bool,
    /// On vger-server: download the packs and check their hashes here
    /// instead of asking the server to.
    #[arg(long)]
    pub distrust_server: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The repository label, typed to confirm (otherwise asked on the terminal).
    #[arg(long, value_name = "LABEL")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Where to write it.
    #[arg(short, long, default_value = "vger.yaml")]
    pub output: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// Only the source with this label.
    #[arg(long, value_name = "LABEL")]
    pub source: Option<String>,
    /// Compression for new chunks: lz4, none, zstd, zstd:1..22.
    #[arg(long, value_name = "CODEC")]
    pub compression: Option<String>,
    /// The snapshot's time, RFC 3339 (for imports and tests).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Read every file, ignoring the previous snapshot.
    #[arg(long)]
    pub no_parent: bool,
    /// Do not count the sources beside the backup (progress then shows a
    /// total and time left only from the previous snapshot).
    #[arg(long)]
    pub no_scan: bool,
    /// A tag to record with the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Write a resume point at least every SECS seconds (an interrupted backup restarts from there).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub checkpoint: u64,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only snapshots of this source label.
    #[arg(long, value_name = "LABEL")]
    pub source: Option<String>,
    /// Only the last N snapshots.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List a directory of a snapshot (--recursive: everything below it).
    List(SnapshotListArgs),
    /// Show a snapshot's details.
    Info(SnapshotIdArg),
    /// Find paths across snapshots, with the history of each.
    Find(SnapshotFindArgs),
    /// What changed between two snapshots (+ added, - removed, M content, T metadata, ~ type).
    Diff(SnapshotDiffArgs),
    /// Delete snapshots (then `compact` frees the space).
    Delete(SnapshotDeleteArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotDeleteArgs {
    /// Snapshot ids (unique prefixes).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotListArgs {
    /// Snapshot id (a unique prefix) or `latest`.
    pub id: String,
    /// The directory to list (the snapshot's top when left out).
    #[arg(value_name = "PATH")]
    pub path_arg: Option<String>,
    /// The same as PATH.
    #[arg(long, conflicts_with = "path_arg")]
    pub path: Option<String>,
    /// Everything below PATH, not only its entries.
    #[arg(short, long)]
    pub recursive: bool,
    /// Show mode, owner, size and time.
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotDiffArgs {
    /// The older snapshot (a unique prefix or `latest`).
    pub a: String,
    /// The newer snapshot.
    pub b: String,
    /// Only this path and what is below it.
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotFindArgs {
    /// A glob on the name (`*.pdf`); without `*`, `?` or `[` it matches
    /// names that contain it.
    pub pattern: Option<String>,
    /// Names matching this glob.
    #[arg(long)]
    pub name: Option<String>,
    /// Names matching this glob, ignoring case.
    #[arg(long)]
    pub iname: Option<String>,
    /// Paths (as `snapshot list` prints them) matching this glob.
    #[arg(long)]
    pub path: Option<String>,
    /// f (files), d (directories) or l (symlinks).
    #[arg(long = "type", value_name = "f|d|l")]
    pub kind: Option<String>,
    /// Larger than SIZE (e.g. 10M).
    #[arg(long, value_name = "SIZE")]
    pub larger: Option<String>,
    /// Smaller than SIZE.
    #[arg(long, value_name = "SIZE")]
    pub smaller: Option<String>,
    /// Modified within this period (14d, 2w, 6m) or since this date (2026-01-31).
    #[arg(long, value_name = "PERIOD|DATE")]
    pub newer: Option<String>,
    /// Modified before this period ago or this date.
    #[arg(long, value_name = "PERIOD|DATE")]
    pub older: Option<String>,
    /// Only snapshots of this source label.
    #[arg(long)]
    pub source: Option<String>,
    /// Only the newest N snapshots.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Only these snapshots (unique prefixes); all by default.
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotIdArg {
    /// Snapshot id (a unique prefix) or `latest`.
    pub id: String,
}

/// `vger restore --overwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OverwriteArg {
    Always,
    IfChanged,
    IfNewer,
    Never,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot id (a unique prefix) or `latest`.
    pub id: String,
    /// Target directory (created if missing).
    pub dest: PathBuf,
    /// Only these paths of the snapshot (as `vger snapshot list` shows them).
    pub paths: Vec<String>,
    /// What to do with a regular file already in DEST: `never` keeps it (the default: a
    /// restore never destroys what it did not write), `if-changed` replaces it unless its size
    /// and modification time match the snapshot, `if-newer` when the snapshot's copy is newer,
    /// `always` replaces it.
    #[arg(long, value_enum, default_value_t = OverwriteArg::Never)]
    pub overwrite: OverwriteArg,
    /// Read every written file back before putting it in place and check it against the
    /// snapshot's chunk IDs.
    #[arg(long)]
    pub verify: bool,
    /// Write nothing: print what would be created, changed and (with --delete) deleted
    /// (`--json` lists them).
    #[arg(long)]
    pub dry_run: bool,
    /// Remove what DEST holds inside the restored paths that the snapshot does not have
    /// (restoring PATH cleans only DEST/PATH; symlinks are removed, never followed).
    #[arg(long)]
    pub delete: bool,
    /// Leave files owned by the restoring user (as root, owners are restored by default).
    #[arg(long)]
    pub no_owner: bool,
    /// Drop setuid, setgid and sticky bits, and skip device nodes and FIFOs.
    #[arg(long)]
    pub no_special: bool,
    /// Restore no extended attributes (`security.*` ones included).
    #[arg(long)]
    pub no_xattrs: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List key slots.
    List,
    /// Add a passphrase (read from VGER_NEW_PASSPHRASE or a prompt).
    Add {
        /// A label to remember it by.
        #[arg(long, default_value = "added")]
        label: String,
    },
    /// Replace the current passphrase (new one from VGER_NEW_PASSPHRASE or a prompt).
    Change,
    /// Remove a key slot by id prefix (never the last one).
    Remove { id: String },
}
