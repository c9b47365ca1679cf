//! Progress as users see it: `--json --progress` lines of every long
//! command carry done and total files and bytes, rate, time left and the
//! current path, with totals `null` until known; a backup learns its totals
//! from a scan of its source while it runs. Without a terminal, and with
//! `-q` on one, no bar is drawn.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{run, vger_bin, Run, TestEnv, PASS};
use serde_json::Value;

/// The progress lines of a run's stderr (every other line is left out).
fn progress_lines(run: &Run) -> Vec<Value> {
    run.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["type"] == "progress")
        .collect()
}

/// Asserts every field a consumer may read is there, of its type.
#[track_caller]
fn assert_fields(line: &Value) {
    for key in ["files", "bytes", "new_bytes", "errors"] {
        assert!(line[key].is_u64(), "{key} in {line}");
    }
    for key in ["total_files", "total_bytes", "eta_seconds"] {
        let v = &line[key];
        assert!(v.is_null() || v.is_number(), "{key} in {line}");
    }
    assert!(line["bytes_per_sec"].is_number() && line["elapsed_seconds"].is_number(), "{line}");
    assert!(line["done"].is_boolean() && line["totals_estimated"].is_boolean(), "{line}");
    assert!(line["current"].is_string() && line["command"].is_string(), "{line}");
}

/// `count` files of a few KiB each in 20 folders, different contents.
fn tree(root: &Path, count: usize) {
    for i in 0..count {
        let dir = root.join(format!("d{:02}", i % 20));
        fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3000 + i).map(|j| (j * 31 + i * 7 + j / 251) as u8).collect();
        fs::write(dir.join(format!("f{i:05}")), data).unwrap();
    }
}

fn last_done(lines: &[Value], command: &str) -> Value {
    let done: Vec<&Value> = lines.iter().filter(|l| l["command"] == command && l["done"] == true).collect();
    assert_eq!(done.len(), 1, "one last line of {command}: {lines:?}");
    done[0].clone()
}

#[test]
fn backup_lines_reach_the_real_totals_and_tell_the_time_left() {
    let env = TestEnv::new();
    let src = env.path("src");
    tree(&src, 3000);
    // About 10 MiB read at 4 MiB/s: lines for about three seconds.
    env.config_with(&[("files", &src)], "limits: { io_read_mib_per_sec: 4 }\n");
    env.init();
    let run = env.run(["--json", "--progress", "backup"]).ok();
    let stats = run.json()[0]["stats"].clone();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "backup");
    assert_eq!(stats["files"], 3000, "{stats}");
    assert_eq!(last["total_files"], stats["files"], "{last}");
    assert_eq!(last["total_bytes"], stats["bytes"], "{last}");
    assert_eq!((&last["files"], &last["bytes"]), (&stats["files"], &stats["bytes"]), "{last}");
    assert_eq!(last["totals_estimated"], false, "{last}");
    assert!(last["new_bytes"].as_u64().unwrap() >= stats["bytes"].as_u64().unwrap(), "{last}");
    // A first backup has no parent: a total is the scan's count, or not known yet.
    for l in &lines {
        assert!(l["total_files"].is_null() || l["total_files"] == 3000, "{l}");
    }
    let timed: Vec<&Value> = lines.iter().filter(|l| l["done"] == false && l["eta_seconds"].is_number()).collect();
    assert!(!timed.is_empty(), "a line tells the time left: {}", run.stderr);
    for l in &timed {
        assert_eq!(l["total_bytes"], stats["bytes"], "{l}");
        assert!(l["eta_seconds"].as_f64().unwrap() < 30.0, "{l}");
        assert!(l["bytes_per_sec"].as_f64().unwrap() > 0.0 && !l["current"].as_str().unwrap().is_empty(), "{l}");
    }

    // The second backup starts from the parent's totals (marked as an
    // estimate) and ends with the scan's count of the grown tree.
    fs::write(src.join("added"), vec![7u8; 100_000]).unwrap();
    let run = env.run(["--json", "--progress", "backup"]).ok();
    let second = run.json()[0]["stats"].clone();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "backup");
    assert_eq!(last["total_files"], 3001, "{last}");
    assert_eq!(last["total_bytes"], second["bytes"], "{last}");
    for l in &lines {
        if l["totals_estimated"] == true {
            assert_eq!((&l["total_files"], &l["total_bytes"]), (&stats["files"], &stats["bytes"]), "{l}");
        } else if !l["total_files"].is_null() {
            assert_eq!((&l["total_files"], &l["total_bytes"]), (&second["files"], &second["bytes"]), "{l}");
        }
    }
}

/// A later backup's first line already carries totals: the parent
/// snapshot's, marked as an estimate. `--no-scan` keeps the scan from
/// replacing them (it may count the source before the first line).
#[test]
fn a_second_backup_starts_from_the_parent_totals_as_an_estimate() {
    let env = TestEnv::new();
    let src = env.path("src");
    tree(&src, 300);
    env.config_with(&[("files", &src)], "limits: { io_read_mib_per_sec: 2 }\n");
    env.init();
    let parent = env.backup_json()["stats"].clone();
    // About 3 MiB to read at 2 MiB/s: lines before the end.
    let added: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(src.join("added"), added).unwrap();
    let run = env.run(["--json", "--progress", "backup", "--no-scan"]).ok();
    let second = run.json()[0]["stats"].clone();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    assert!(lines.len() >= 2, "a line before the last: {}", run.stderr);
    let first = &lines[0];
    assert_eq!(
        (&first["command"], &first["done"], &first["totals_estimated"]),
        (&"backup".into(), &false.into(), &true.into()),
        "{first}"
    );
    assert_eq!((&first["total_files"], &first["total_bytes"]), (&parent["files"], &parent["bytes"]), "{first}");
    let last = last_done(&lines, "backup");
    assert_eq!((&last["files"], &last["bytes"]), (&second["files"], &second["bytes"]), "{last}");
    assert_eq!(second["files"], 301, "{second}");
}

#[test]
fn restore_check_compact_and_copy_lines_carry_totals() {
    let env = TestEnv::new();
    let src = env.path("src");
    tree(&src, 400);
    // A symlink: restore counts it as the snapshot's stats do.
    std::os::unix::fs::symlink("d00/f00000", src.join("link")).unwrap();
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\n  - label: second\n    url: \"{}\"\n\
         sources:\n  - label: files\n    path: \"{}\"\n",
        env.repo().display(),
        env.path("second").display(),
        src.display()
    );
    env.write_config(&yaml);
    env.init();
    env.run(["-R", "local", "backup"]).ok();
    let first = env.list_json()[0].clone();

    let dest = env.path("restored");
    let run = env.run(["-R", "local", "--json", "--progress", "restore", "latest", dest.to_str().unwrap()]).ok();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "restore");
    assert_eq!(last["total_files"], 401, "{last}");
    assert_eq!((&last["files"], &last["bytes"]), (&last["total_files"], &last["total_bytes"]), "{last}");
    assert!(last["total_bytes"].as_u64().unwrap() > 400 * 3000, "{last}");

    // Some paths: totals counted from their subtrees, not the snapshot's.
    let inside = if dest.join("d00").exists() {
        String::new()
    } else {
        format!("{}/", src.to_str().unwrap().trim_start_matches('/'))
    };
    let some = env.path("some");
    let (dir, file, link) = (format!("{inside}d03"), format!("{inside}d07/f00007"), format!("{inside}link"));
    let args = ["-R", "local", "--json", "--progress", "restore", "latest", some.to_str().unwrap(), &dir, &file, &link];
    let run = env.run(args).ok();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "restore");
    let sizes: u64 = ["d07/f00007".to_string()]
        .into_iter()
        .chain((3..400).step_by(20).map(|i| format!("d03/f{i:05}")))
        .map(|f| fs::metadata(src.join(f)).unwrap().len())
        .sum();
    // 20 files in d03, one more, and the symlink.
    assert_eq!((&last["total_files"], last["total_bytes"].as_u64()), (&22.into(), Some(sizes)), "{last}");
    assert_eq!((&last["files"], &last["bytes"]), (&last["total_files"], &last["total_bytes"]), "{last}");

    let run = env.run(["-R", "local", "--json", "--progress", "check", "--verify-data"]).ok();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "check");
    let packs = last["total_files"].as_u64().unwrap();
    assert!(packs >= 1, "{last}");
    assert_eq!((&last["files"], &last["bytes"]), (&last["total_files"], &last["total_bytes"]), "{last}");
    assert!(last["total_bytes"].as_u64().unwrap() > 100_000, "{last}");

    // Copy: two snapshots, the totals are their stats summed.
    for i in (0..400).step_by(2) {
        fs::remove_file(src.join(format!("d{:02}/f{i:05}", i % 20))).unwrap();
    }
    env.run(["-R", "local", "backup"]).ok();
    let listed = env.run(["-R", "local", "--json", "list"]).ok().json();
    let sum = |key: &str| listed.as_array().unwrap().iter().map(|s| s["stats"][key].as_u64().unwrap()).sum::<u64>();
    let run = env.run(["--json", "--progress", "copy", "--from", "local", "--to", "second"]).ok();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "copy");
    assert_eq!((last["total_files"].as_u64(), last["total_bytes"].as_u64()), (Some(sum("files")), Some(sum("bytes"))));
    assert_eq!((&last["files"], &last["bytes"]), (&last["total_files"], &last["total_bytes"]), "{last}");
    assert!(last["new_bytes"].as_u64().unwrap() > 0, "{last}");

    // Compact: with the first snapshot gone, half of its data is unused.
    let id = first["id"].as_str().unwrap();
    env.run(["-R", "local", "snapshot", "delete", id]).ok();
    let run = env.run(["-R", "local", "--json", "--progress", "compact", "--grace", "0s"]).ok();
    let report = run.json();
    let lines = progress_lines(&run);
    lines.iter().for_each(assert_fields);
    let last = last_done(&lines, "compact");
    assert!(report["report"]["packs_repacked"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(last["total_files"], report["report"]["packs_repacked"], "{last} {report}");
    assert_eq!((&last["files"], &last["bytes"]), (&last["total_files"], &last["total_bytes"]), "{last}");
}

/// `vger ARGS` with its stderr (and stdout) on a pseudo-terminal, through
/// `script`: what a user at a terminal sees.
fn on_a_terminal(env: &TestEnv, args: &str) -> String {
    let line = format!("{} --config {} {args}", vger_bin(), env.config().display());
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &line, "/dev/null"]).env("VGER_PASSPHRASE", PASS).env("TERM", "xterm");
    env.private_user_dirs(&mut cmd);
    let run = run(cmd).ok();
    run.stdout
}

#[test]
fn no_bar_without_a_terminal_nor_with_quiet() {
    let env = TestEnv::new();
    let src = env.path("src");
    tree(&src, 600);
    env.config_with(&[("files", &src)], "limits: { io_read_mib_per_sec: 2 }\n");
    env.init();
    let bar = |s: &str| s.contains('\x1b') || s.contains("backup [");

    // Piped (as under systemd): messages only, no escape codes, no \r.
    let piped = env.run(["backup"]).ok();
    assert!(!bar(&piped.stderr) && !piped.stderr.contains('\r'), "{:?}", piped.stderr);
    assert!(piped.stdout.contains("snapshot "), "{}", piped.stdout);

    // On a terminal the bar is drawn (so the check above can fail) ...
    let shown = on_a_terminal(&env, "backup --no-parent");
    assert!(bar(&shown) && shown.contains('%'), "{shown:?}");
    // ... and -q silences it.
    let quiet = on_a_terminal(&env, "-q backup --no-parent");
    assert!(!bar(&quiet), "{quiet:?}");
    assert!(quiet.contains("snapshot "), "{quiet:?}");
}
