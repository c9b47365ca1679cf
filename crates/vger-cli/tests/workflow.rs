//! The YAML workflow: hook order and failure handling, placeholders,
//! command dumps, several sources, the default run.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;

use common::*;

fn log_lines(env: &TestEnv) -> Vec<String> {
    fs::read_to_string(env.path("hooks.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

/// A config with hooks at every level that append their name to hooks.log.
fn hooked_config(env: &TestEnv, source_before: &str) -> String {
    let log = env.path("hooks.log");
    let h = |name: &str| format!("\"echo {name} >> '{}'\"", log.display());
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f.txt"), b"data\n").unwrap();
    let sf = format!("\"echo source-failed {{consecutive_failures}} {{error}} >> '{}'\"", log.display());
    let gf = format!("\"echo global-failed $VGER_CONSECUTIVE_FAILURES >> '{}'\"", log.display());
    format!(
        r#"repositories:
  - label: local
    url: "{repo}"
    hooks:
      before: {rb}
      before_backup: {rbb}
      after: {ra}
      failed: {rf}
      finally: {rfin}
sources:
  - label: src
    path: "{src}"
    hooks:
      before: {sb}
      after: {sa}
      failed: {sf}
      finally: {sfin}
hooks:
  before: {gb}
  before_backup: {gbb}
  after_backup: {gab}
  after: {ga}
  failed: {gf}
  finally: {gfin}
"#,
        repo = env.repo().display(),
        src = src.display(),
        rb = h("repo-before"),
        rbb = h("repo-before_backup"),
        ra = h("repo-after"),
        rf = h("repo-failed"),
        rfin = h("repo-finally"),
        sb = source_before,
        sa = h("source-after"),
        sf = sf,
        sfin = h("source-finally"),
        gb = h("global-before"),
        gbb = h("global-before_backup"),
        gab = h("global-after_backup"),
        ga = h("global-after"),
        gf = gf,
        gfin = h("global-finally"),
    )
}

#[test]
fn hooks_run_in_the_documented_order() {
    let env = TestEnv::new();
    let log = env.path("hooks.log");
    let before = format!("\"echo source-before {{source_label}} $VGER_LABEL >> '{}'\"", log.display());
    env.write_config(&hooked_config(&env, &before));
    env.init();
    env.run(["backup"]).ok();
    assert_eq!(
        log_lines(&env),
        vec![
            "global-before",
            "global-before_backup",
            "repo-before",
            "repo-before_backup",
            "source-before src local",
            "source-after",
            "source-finally",
            "repo-after",
            "repo-finally",
            "global-after_backup",
            "global-after",
            "global-finally",
        ]
    );
}

#[test]
fn a_failing_before_hook_skips_the_backup_and_counts_failures() {
    let env = TestEnv::new();
    env.write_config(&hooked_config(&env, "\"exit 7\""));
    env.init();
    for round in 1..=2 {
        fs::remove_file(env.path("hooks.log")).ok();
        let run = env.run(["backup"]).code(1);
        assert!(run.stderr.contains("before hook"), "{}", run.stderr);
        let lines = log_lines(&env);
        assert!(lines.iter().any(|l| l.starts_with(&format!("source-failed {round} "))), "{lines:?}");
        assert!(lines.contains(&"source-finally".to_string()), "{lines:?}");
        assert!(!lines.contains(&"source-after".to_string()), "{lines:?}");
        assert!(
            lines.contains(&"repo-failed".to_string()) && lines.contains(&format!("global-failed {round}")),
            "{lines:?}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("global-finally"));
    }
    assert!(env.list_json().is_empty(), "a skipped backup committed a snapshot");
}

#[test]
fn command_dumps_are_stored_and_failures_commit_nothing() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a\n").unwrap();
    // 64 MiB of output, more than a chunk and streamed.
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: src\n    path: \"{}\"\n    command_dumps:\n      - name: big.bin\n        command: \"head -c 67108864 /dev/zero | tr '\\\\0' x\"\n      - name: hello.txt\n        command: \"echo hello from a dump\"\n",
        env.repo().display(),
        src.display()
    );
    env.write_config(&yaml);
    env.init();
    env.run(["backup"]).ok();
    let dest = env.path("out");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    assert_eq!(fs::read(dest.join("vger-dumps/hello.txt")).unwrap(), b"hello from a dump\n");
    let big = fs::metadata(dest.join("vger-dumps/big.bin")).unwrap();
    assert_eq!(big.len(), 64 << 20);
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"a\n");

    let failing = yaml.replace("echo hello from a dump", "echo partial; echo broken pipe detail >&2; exit 3");
    env.write_config(&failing);
    let run = env.run(["backup"]).code(1);
    assert!(run.stderr.contains("hello.txt") && run.stderr.contains("broken pipe detail"), "{}", run.stderr);
    assert_eq!(env.list_json().len(), 1, "a failed dump committed a snapshot");
}

#[test]
fn one_missing_source_fails_alone() {
    let env = TestEnv::new();
    let good = env.path("good");
    fs::create_dir_all(&good).unwrap();
    fs::write(good.join("x"), b"x").unwrap();
    env.config_with(&[("good", &good), ("gone", &env.path("does-not-exist"))], "");
    env.init();
    let run = env.run(["backup"]).code(1);
    assert!(run.stderr.contains("gone") && run.stderr.contains("does not exist"), "{}", run.stderr);
    let snaps = env.list_json();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["source_label"], "good");
}

#[test]
fn the_default_run_backs_up_prunes_compacts_and_checks() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("x.bin"), random_bytes(1 << 20, 1)).unwrap();
    env.config_with(&[("src", &src)], "retention:\n  keep_last: 2\ncheck:\n  max_percent: 100\n");
    env.init();
    for i in 0..3u64 {
        fs::write(src.join("x.bin"), random_bytes(1 << 20, i + 10)).unwrap();
        let run = env.run(["--json"]).ok();
        let v = run.json();
        let steps = v[0]["steps"].as_array().unwrap();
        let status: Vec<(&str, &str)> =
            steps.iter().map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap())).collect();
        assert_eq!(status, vec![("backup", "ok"), ("prune", "ok"), ("compact", "ok"), ("check", "ok")], "{v}");
    }
    assert_eq!(env.list_json().len(), 2, "keep_last: 2 was not applied");
    // A failing backup skips prune and compact and exits 1.
    fs::remove_dir_all(&src).unwrap();
    let v = env.run(["--json"]).code(1).json();
    let steps: Vec<&str> = v[0]["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(steps[..3], ["failed", "skipped", "skipped"], "{v}");
    assert_eq!(env.list_json().len(), 2, "prune ran after a failed backup");
}

/// `-v` logs what vger does, `-vv` every storage request, both on stderr
/// so that `--json` on stdout stays parseable; without `-v` nothing is logged.
#[test]
fn verbosity_levels_log_to_stderr_only() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"hello").unwrap();
    env.config_with(&[("docs", &src)], "hooks:\n  before_backup: \"true\"\n");
    env.init();

    let quiet = env.run(["--json", "backup"]).ok();
    assert!(quiet.stderr.trim().is_empty(), "no -v, no log: {}", quiet.stderr);

    let v = env.run(["-v", "--json", "backup"]).ok();
    v.json();
    for needle in [
        "config ",
        "opened repository `local`",
        "repository lock taken for `backup`",
        "source `docs`: backing up",
        "running before hook: true",
    ] {
        assert!(v.stderr.contains(needle), "-v lacks {needle:?}: {}", v.stderr);
    }
    assert!(!v.stderr.contains("storage PUT"), "-v shows no requests: {}", v.stderr);

    let vv = env.run(["-vv", "--json", "backup"]).ok();
    vv.json();
    for needle in ["storage PUT", "storage LIST", "repository lock released"] {
        assert!(vv.stderr.contains(needle), "-vv lacks {needle:?}: {}", vv.stderr);
    }
}

/// `limits.io_read_mib_per_sec` caps what a backup reads, for the whole
/// process (several reading threads share one budget): 16 MiB at 4 MiB/s
/// take about 4 s beyond the fixed cost of a backup (measured on an
/// unchanged backup of the same tree). Within 15 %.
#[test]
fn the_read_cap_holds_within_15_percent() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..4u64 {
        fs::write(src.join(format!("f{i}.bin")), random_bytes(4 << 20, 40 + i)).unwrap();
    }
    env.config_with(&[("data", &src)], "limits:\n  io_read_mib_per_sec: 4\n  threads: 2\n");
    env.init();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let start = std::time::Instant::now();
    env.run(["backup"]).ok();
    let capped = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    env.run(["backup"]).ok();
    let fixed = start.elapsed().as_secs_f64();
    let rate = 16.0 / (capped - fixed).max(0.001);
    eprintln!("read cap 4 MiB/s: {rate:.2} MiB/s ({capped:.2} s, of which {fixed:.2} s fixed cost)");
    assert!(
        (3.4..=4.6).contains(&rate),
        "read at {rate:.2} MiB/s with a 4 MiB/s cap ({capped:.2} s, fixed {fixed:.2} s)"
    );
}
