//! Issue 3: a first backup killed halfway resumes without reading again the
//! files it had finished, and what it then writes restores byte for byte.
//!
//! A real `vger backup` (reads capped so that it runs for seconds and
//! writes a checkpoint every second) is killed with SIGKILL once a few
//! index segments are stored; then files are changed in ways that must be
//! noticed, and the backup is run again.
//!
//! ```sh
//! cargo test -p vger-cli --test resume
//! ```

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod crashkit;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crashkit::{manifest, manifest_bytes, objects_under, run_until, write_random_file, Env, KillOutcome};

const FILES: u64 = 48;
const FILE_BYTES: u64 = 3 << 20;
/// Reads capped at this while the first backup runs: about 7 s for the tree.
const READ_MIB_PER_SEC: u64 = 20;

/// `FILES` incompressible files in four folders, their mtimes an hour in
/// the past (a file modified just before it is read is never trusted).
fn make_source(src: &Path, seed: u64) {
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..FILES {
        let path = src.join(format!("d{}/f{i:03}.bin", i % 4));
        write_random_file(&path, FILE_BYTES, seed + i);
        set_mtime(&path, hour_ago);
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t)).unwrap();
}

/// The config: one source, the state (and so the resume journals) kept in
/// the scratch folder, reads capped when `slow`.
fn write_config(env: &Env, src: &Path, slow: bool) {
    let mut extra = format!("cache_dir: \"{}\"\n", env.path("cache").display());
    if slow {
        extra.push_str(&format!("limits:\n  io_read_mib_per_sec: {READ_MIB_PER_SEC}\n"));
    }
    env.write_config(&[("data", src)], &extra);
}

fn journals(env: &Env) -> Vec<PathBuf> {
    let dir = env.path("cache/state/resume");
    let mut out: Vec<PathBuf> = fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    out.sort();
    out
}

/// Starts a first backup and kills it once `segments` index segments are
/// stored (so the journal has files whose chunks are indexed).
fn kill_first_backup(env: &Env, src: &Path, segments: usize) {
    write_config(env, src, true);
    let cmd = env.cmd(["backup", "--checkpoint", "1"]);
    let index = env.repo.join("index");
    let outcome = run_until(cmd, env.dir.path(), |elapsed| {
        objects_under(&index).len() >= segments || elapsed > Duration::from_secs(120)
    });
    match outcome {
        KillOutcome::Killed(after) => {
            println!("killed after {after:.2?} with {} segments", objects_under(&index).len())
        }
        KillOutcome::Completed(run) => panic!("the backup finished before the kill: {}", run.describe()),
    }
    assert!(objects_under(&index).len() >= segments, "no checkpoint within two minutes");
    assert!(env.list().is_empty(), "a killed first backup committed no snapshot");
    assert_eq!(journals(env).len(), 1, "the killed backup left its journal");
    write_config(env, src, false);
}

fn as_u64(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// A new repository with a source of `FILES` files made from `seed`.
fn setup(prefix: &str, seed: u64) -> (Env, PathBuf) {
    let env = Env::new(prefix);
    let src = env.path("src");
    make_source(&src, seed);
    write_config(&env, &src, false);
    env.init();
    (env, src)
}

#[test]
fn a_killed_first_backup_resumes_without_reading_finished_files() {
    let (env, src) = setup("vger-resume-", 1);
    kill_first_backup(&env, &src, 3);

    // d0/f000 and d1/f001 are the first two files of the walk: finished
    // and indexed by the third checkpoint. Change both without changing
    // their size: one with a new mtime, one with its mtime put back, which
    // only ctime (strict change detection, the default) reveals.
    let moved = src.join("d0/f000.bin");
    let old_mtime = fs::metadata(&moved).unwrap().modified().unwrap();
    write_random_file(&moved, FILE_BYTES, 1001);
    set_mtime(&moved, old_mtime + Duration::from_secs(5));
    let put_back = src.join("d1/f001.bin");
    let old_mtime = fs::metadata(&put_back).unwrap().modified().unwrap();
    write_random_file(&put_back, FILE_BYTES, 1002);
    set_mtime(&put_back, old_mtime);
    let expected = manifest(&src);
    let total = manifest_bytes(&expected);

    let (report, run) = env.backup(&["-v"]);
    let read = as_u64(&report, "read_bytes");
    let resumed = as_u64(&report, "resumed_files");
    println!("rerun: read {read} of {total} bytes, {resumed} files resumed");
    // (a) far fewer bytes read than the tree holds; the two changed files
    // are among those read.
    assert!(resumed >= 4, "{}", run.describe());
    assert!(read <= total - resumed * FILE_BYTES, "read {read} bytes with {resumed} files resumed: {}", run.describe());
    assert!(read >= 2 * FILE_BYTES, "the two changed files are read again: {}", run.describe());
    assert!(read * 4 < total * 3, "read {read} of {total} bytes: {}", run.describe());
    assert!(run.stderr.contains("resumed an interrupted backup"), "{}", run.describe());
    assert!(journals(&env).is_empty(), "the journal is removed once the snapshot is committed: {:?}", journals(&env));

    // (b) every chunk verifies; (c) the restore equals the source, (d) the
    // two changed files with their new content.
    env.run(["check", "--verify-data"]).ok();
    let id = env.list().pop().unwrap().0;
    let diff = env.restore_diff(&id, &expected);
    assert!(diff.is_empty(), "restore differs: {diff:?}");

    // The tree is the one a backup reading every file writes: reading all
    // again adds not a single chunk, tree chunks included.
    let (full, _) = env.backup(&["--no-parent"]);
    assert_eq!(as_u64(&full, "read_bytes"), total);
    assert_eq!(full["stats"]["added_bytes"].as_u64(), Some(0), "{full}");
}

#[test]
fn a_corrupt_or_foreign_journal_is_ignored() {
    let (env, src) = setup("vger-resume-bad-", 7);
    let expected = manifest(&src);
    let total = manifest_bytes(&expected);

    // Damaged in its middle: the frames before the damage still count.
    kill_first_backup(&env, &src, 3);
    let journal = journals(&env).pop().unwrap();
    let mut bytes = fs::read(&journal).unwrap();
    let len = bytes.len();
    assert!(len > 200, "the journal holds files: {len} bytes");
    for b in &mut bytes[len - 40..len - 20] {
        *b ^= 0x5a;
    }
    fs::write(&journal, &bytes).unwrap();
    let (report, run) = env.backup(&["-v"]);
    assert!(run.stderr.contains("resume journal"), "the damage is logged at -v: {}", run.describe());
    assert!(as_u64(&report, "read_bytes") <= total);
    let id = env.list().pop().unwrap().0;
    assert!(env.restore_diff(&id, &expected).is_empty());

    // Another repository's journal under this one's name: never used.
    let other = Env::new("vger-resume-other-");
    write_config(&other, &src, false);
    other.init();
    let fresh = Env::new("vger-resume-fresh-");
    write_config(&fresh, &src, false);
    fresh.init();
    kill_first_backup(&fresh, &src, 2);
    let ours = journals(&fresh).pop().unwrap();
    kill_first_backup(&other, &src, 2);
    let theirs = journals(&other).pop().unwrap();
    fs::copy(&theirs, &ours).unwrap();
    let (report, run) = fresh.backup(&["-v"]);
    assert_eq!(as_u64(&report, "resumed_files"), 0, "{}", run.describe());
    assert_eq!(as_u64(&report, "read_bytes"), total, "{}", run.describe());
    assert!(run.stderr.contains("ignoring it"), "the foreign journal is logged at -v: {}", run.describe());
    let id = fresh.list().pop().unwrap().0;
    assert!(fresh.restore_diff(&id, &expected).is_empty());
    assert!(journals(&fresh).is_empty());
}
