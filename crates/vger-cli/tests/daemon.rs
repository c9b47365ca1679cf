//! `vger daemon` as a real process against local repositories: cycles on
//! time with jitter in bounds, SIGUSR1, SIGHUP (good and bad configs),
//! SIGTERM (clean, and a second one at once), the scheduler lock, missed
//! runs caught up once, a failing repository beside a good one, the status
//! JSON and metrics against what happened, notifications to a local
//! webhook, refusals at start, and the status page in headless Chromium.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
mod daemonkit;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use common::*;
use daemonkit::*;

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().with_timezone(&Utc)
}

fn seconds_between(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    (time(b) - time(a)).num_milliseconds() as f64 / 1000.0
}

/// A config with `repos` (label, url), one source `docs` and `tail` appended.
fn config(env: &TestEnv, repos: &[(&str, &Path)], src: &Path, tail: &str) -> String {
    let mut y = format!("cache_dir: \"{}\"\nrepositories:\n", env.path("cache").display());
    for (label, url) in repos {
        y.push_str(&repo_yaml(label, url, ""));
    }
    y.push_str(&format!("sources:\n  - label: docs\n    path: \"{}\"\n", src.display()));
    y.push_str(tail);
    y
}

const EVERY_3S: &str = "schedule:\n  enabled: true\n  every: 3s\n  jitter_seconds: 1\n";

fn ok_cycles_in_log(log: &str, label: &str) -> usize {
    log.matches(&format!("vger daemon: {label}: cycle ok")).count()
}

#[test]
fn runs_on_schedule_and_obeys_signals_and_the_lock() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let (local, second) = (env.path("repo"), env.path("second"));
    write_config(&env, &config(&env, &[("local", &local), ("second", &second)], &src, EVERY_3S));
    init(&env, "local");
    init(&env, "second");
    write_config(&env, &config(&env, &[("local", &local)], &src, EVERY_3S));

    let started = Utc::now();
    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    daemon.port();

    // A second scheduler for the same config is refused, naming the first.
    let mut other = spawn(&env, "other", &[]);
    assert_eq!(other.wait_exit(Duration::from_secs(20)), 1, "{}", other.log());
    let refusal = other.log();
    assert!(refusal.contains("already running") && refusal.contains(&format!("PID {}", daemon.pid())), "{refusal}");
    assert_eq!(refusal.lines().count(), 1, "one line: {refusal}");

    // Cycles on time: every 3 s on a fixed grid, each started within the jitter after its slot.
    let mut runs: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(25);
    while runs.len() < 3 {
        assert!(Instant::now() < deadline, "only {} cycles in 25 s:\n{}", runs.len(), daemon.log());
        let status = daemon.status();
        let last = &repo(&status, "local")["last_run"];
        if !last.is_null() && runs.last().is_none_or(|r| r["started_at"] != last["started_at"]) {
            runs.push(last.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_slot = time(&runs[0]["scheduled_for"]);
    let after_start = (first_slot - started).num_milliseconds() as f64 / 1000.0;
    assert!((2.0..=4.5).contains(&after_start), "first slot {after_start:.2}s after start: {runs:#?}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["reason"], "schedule", "{run:#}");
        assert_eq!(run["outcome"], "ok", "{run:#}\n{}", daemon.log());
        let jitter = seconds_between(&run["scheduled_for"], &run["started_at"]);
        assert!((0.0..=1.3).contains(&jitter), "run {i} started {jitter:.2}s after its slot (jitter 1s): {run:#}");
        if i > 0 {
            let gap = seconds_between(&runs[i - 1]["scheduled_for"], &run["scheduled_for"]);
            assert!((gap / 3.0 - (gap / 3.0).round()).abs() < 0.01 && gap >= 2.99, "slots {gap}s apart: {runs:#?}");
        }
    }

    // SIGUSR1 runs a cycle now.
    let before = cycles(&daemon.status(), "local");
    let signalled = Utc::now();
    daemon.signal(SIGUSR1);
    let status = daemon.wait_status(Duration::from_secs(10), "a SIGUSR1 cycle", |s| {
        repo(s, "local")["last_run"]["reason"] == "signal" && cycles(s, "local") > before
    });
    let waited = (time(&repo(&status, "local")["last_run"]["started_at"]) - signalled).num_milliseconds();
    assert!(waited < 4_000, "the SIGUSR1 cycle started {waited} ms after the signal");

    // SIGHUP with a second repository: it is scheduled and runs.
    write_config(&env, &config(&env, &[("local", &local), ("second", &second)], &src, EVERY_3S));
    daemon.signal(SIGHUP);
    daemon.wait_status(Duration::from_secs(15), "the reloaded repository's first cycle", |s| {
        s["reloads"] == 1 && cycles(s, "second") >= 1
    });

    // SIGHUP with a broken config: logged, the running one stays.
    fs::write(env.config(), "repositories:\n  - label: [unterminated\n").unwrap();
    daemon.signal(SIGHUP);
    daemon.wait_log("reload refused, the running configuration stays", Duration::from_secs(10));
    let before = cycles(&daemon.status(), "second");
    let status =
        daemon.wait_status(Duration::from_secs(15), "cycles after a refused reload", |s| cycles(s, "second") > before);
    assert!(status["last_reload_error"].as_str().is_some_and(|e| e.contains("vger.yaml")), "{status:#}");
    assert_eq!(status["reloads"], 1);
    assert_eq!(status["repositories"].as_array().unwrap().len(), 2);

    // Metrics and status agree (retry if a cycle ended between the two requests).
    let mut agreed = false;
    for _ in 0..20 {
        let (code, metrics) = daemon.get("/metrics");
        assert_eq!(code, 200);
        let status = daemon.status();
        let c = metric(&metrics, "vger_repository_cycles_total", "repository=\"local\"");
        let made = metric(&metrics, "vger_repository_snapshots_created_total", "repository=\"local\"");
        if c == Some(cycles(&status, "local") as f64) && made == repo(&status, "local")["snapshots_created"].as_f64() {
            assert_eq!(metric(&metrics, "vger_repository_consecutive_failures", "repository=\"local\""), Some(0.0));
            assert_eq!(metric(&metrics, "vger_source_last_files", "repository=\"local\",source=\"docs\""), Some(2.0));
            agreed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(agreed, "metrics and status.json disagree");
    let (code, body) = daemon.get("/healthz");
    assert_eq!((code, body.trim()), (200, "ok"));

    // SIGTERM: a clean stop, exit 0.
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("vger daemon: stopped"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Every ok cycle made one snapshot, and status counted them.
    fs::write(env.config(), config(&env, &[("local", &local), ("second", &second)], &src, EVERY_3S)).unwrap();
    assert_eq!(snapshot_count(&env, "local"), ok_cycles_in_log(&log, "local"), "{log}");
    assert_eq!(snapshot_count(&env, "second"), ok_cycles_in_log(&log, "second"), "{log}");

    // The lock went with it: a new daemon starts.
    let mut again = spawn(&env, "again", &[]);
    again.wait_log("vger daemon: started", Duration::from_secs(20));
    again.signal(SIGINT);
    assert_eq!(again.wait_exit(Duration::from_secs(60)), 0, "{}", again.log());
}

#[test]
fn a_failing_repository_does_not_stop_the_others() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let (good, broken) = (env.path("good"), env.path("not-a-repository"));
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join("stray.txt"), b"not a vger repository\n").unwrap();
    let schedule = "schedule:\n  enabled: true\n  every: 2s\n";
    write_config(&env, &config(&env, &[("good", &good), ("broken", &broken)], &src, schedule));
    init(&env, "good");

    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    let status = daemon.wait_status(Duration::from_secs(40), "two cycles each", |s| {
        cycles(s, "good") >= 2 && repo(s, "broken")["consecutive_failures"].as_u64() >= Some(2)
    });
    let b = repo(&status, "broken");
    assert_eq!(b["last_run"]["outcome"], "failed", "{b:#}");
    assert_eq!(b["last_run"]["steps"][0]["step"], "backup");
    assert_eq!(b["last_run"]["steps"][0]["status"], "failed");
    assert_eq!(b["snapshots_created"], 0);
    assert_eq!(b["failed_cycles"], b["cycles"]);
    let g = repo(&status, "good");
    assert_eq!(g["last_run"]["outcome"], "ok", "{g:#}");
    assert_eq!(g["consecutive_failures"], 0);
    assert_eq!(g["sources"][0]["label"], "docs");
    assert_eq!(g["sources"][0]["files"], 2);
    assert!(!g["recent_snapshots"].as_array().unwrap().is_empty());

    let mut checked = false;
    for _ in 0..20 {
        let (_, metrics) = daemon.get("/metrics");
        let status = daemon.status();
        let failures = repo(&status, "broken")["consecutive_failures"].as_f64();
        let broken_label = "repository=\"broken\"";
        if metric(&metrics, "vger_repository_consecutive_failures", broken_label) != failures
            || metric(&metrics, "vger_repository_cycles_total", "repository=\"good\"")
                != Some(cycles(&status, "good") as f64)
        {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert!(failures >= Some(2.0));
        assert_eq!(metric(&metrics, "vger_repository_last_success", broken_label), Some(0.0));
        assert_eq!(metric(&metrics, "vger_repository_last_success", "repository=\"good\""), Some(1.0));
        assert_eq!(metric(&metrics, "vger_repository_consecutive_failures", "repository=\"good\""), Some(0.0));
        let source = "repository=\"broken\",source=\"docs\"";
        assert_eq!(metric(&metrics, "vger_source_last_backup_failed", source), Some(1.0));
        let source = "repository=\"good\",source=\"docs\"";
        assert_eq!(metric(&metrics, "vger_source_last_backup_failed", source), Some(0.0));
        assert_eq!(metric(&metrics, "vger_source_last_errors", source), Some(0.0));
        assert!(metric(&metrics, "vger_source_last_success_timestamp_seconds", source).is_some(), "{metrics}");
        assert!(metric(&metrics, "vger_source_last_added_bytes", source).is_some(), "{metrics}");
        checked = true;
        break;
    }
    assert!(checked, "metrics never matched status.json");

    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
    let log = daemon.log();
    assert_eq!(snapshot_count(&env, "good"), ok_cycles_in_log(&log, "good"), "{log}");
}

#[test]
fn notifications_reach_a_webhook_and_a_dead_one_is_harmless() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let (good, broken) = (env.path("good"), env.path("missing-repository"));
    let hook = Webhook::start();
    let dead = closed_port();
    let tail = format!(
        "schedule:\n  enabled: true\n  every: 1h\n  on_startup: true\nnotify:\n  \
         - url: \"http://127.0.0.1:{p}/hook/{{event}}/{{label}}\"\n  \
         - url: \"http://127.0.0.1:{dead}/down\"\n    events: [success]\n  \
         - url: \"http://127.0.0.1:{p}/ntfy\"\n    events: [failure]\n    body: \"{{label}} on {{hostname}}: {{event}}\"\n",
        p = hook.port
    );
    write_config(&env, &config(&env, &[("good", &good), ("broken", &broken)], &src, &tail));
    init(&env, "good");

    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    let got = hook.wait_for(Duration::from_secs(30), "start, success and failure pings", |r| {
        r.iter().any(|x| x.path == "/hook/success/good")
            && r.iter().any(|x| x.path == "/hook/failure/broken")
            && r.iter().any(|x| x.path == "/ntfy")
    });
    let index = |path: &str| got.iter().position(|r| r.path == path).unwrap_or_else(|| panic!("no {path}: {got:#?}"));
    assert!(index("/hook/start/good") < index("/hook/success/good"), "{got:#?}");
    assert!(index("/hook/start/broken") < index("/hook/failure/broken"), "{got:#?}");

    let success = &got[index("/hook/success/good")];
    assert_eq!(success.method, "POST");
    assert_eq!(success.content_type, "application/json");
    let doc: serde_json::Value = serde_json::from_str(&success.body).unwrap();
    assert_eq!(doc["event"], "success");
    assert_eq!(doc["repository"], "good");
    assert_eq!(doc["outcome"], "ok");
    assert_eq!(doc["reason"], "startup");
    assert_eq!(doc["steps"][0]["step"], "backup");
    assert_eq!(doc["snapshots"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(doc["snapshots"][0]["source"], "docs");
    assert!(doc["summary"].as_str().unwrap().starts_with("good: backup ok"), "{doc:#}");
    let log_tail = doc["log_tail"].as_str().unwrap();
    assert!(log_tail.contains("snapshot") && log_tail.contains("good: backup ok"), "{log_tail}");

    let failure: serde_json::Value = serde_json::from_str(&got[index("/hook/failure/broken")].body).unwrap();
    assert_eq!(failure["outcome"], "failed");
    assert_eq!(failure["consecutive_failures"], 1);
    assert!(failure["log_tail"].as_str().unwrap().contains("error"), "{failure:#}");
    let start: serde_json::Value = serde_json::from_str(&got[index("/hook/start/good")].body).unwrap();
    assert_eq!((start["event"].as_str(), start["outcome"].as_str()), (Some("start"), Some("running")));
    let ntfy = &got[index("/ntfy")];
    assert!(ntfy.body.starts_with("broken on ") && ntfy.body.ends_with(": failure"), "{ntfy:?}");
    assert!(ntfy.content_type.starts_with("text/plain"), "{ntfy:?}");
    assert!(!got.iter().any(|r| r.path == "/hook/failure/good" || r.path == "/hook/success/broken"), "{got:#?}");

    // The dead listener: retried, logged, and the cycle still counts as ok.
    daemon.wait_log(
        &format!("notification POST http://127.0.0.1:{dead}/down failed after 3 attempts"),
        Duration::from_secs(30),
    );
    let status = daemon.status();
    assert_eq!(repo(&status, "good")["last_run"]["outcome"], "ok");
    assert_eq!(repo(&status, "good")["consecutive_failures"], 0);
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
    assert_eq!(snapshot_count(&env, "good"), 1);
}

/// A repository's own `notify` list replaces the top-level one (`[]`
/// silences it), and the default run (`vger` without a command, as run
/// from a systemd timer or cron) notifies like the daemon does.
#[test]
fn per_repository_notify_and_the_default_run_notifies() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let hook = Webhook::start();
    let p = hook.port;
    let mut y = format!("cache_dir: \"{}\"\nrepositories:\n", env.path("cache").display());
    y.push_str(&repo_yaml("global", &env.path("r-global"), ""));
    y.push_str(&repo_yaml(
        "own",
        &env.path("r-own"),
        &format!("    notify:\n      - url: \"http://127.0.0.1:{p}/own/{{event}}/{{label}}\"\n"),
    ));
    y.push_str(&repo_yaml("quiet", &env.path("r-quiet"), "    notify: []\n"));
    y.push_str(&repo_yaml("broken", &env.path("missing-repository"), ""));
    y.push_str(&format!("sources:\n  - label: docs\n    path: \"{}\"\n", src.display()));
    y.push_str(&format!("notify:\n  - url: \"http://127.0.0.1:{p}/global/{{event}}/{{label}}\"\n"));
    write_config(&env, &y);
    for label in ["global", "own", "quiet"] {
        init(&env, label);
    }

    // The broken repository fails its backup, so the run exits 1.
    env.run(Vec::<&str>::new()).code(1);
    let got = hook.received();
    let mut paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/global/failure/broken",
            "/global/start/broken",
            "/global/start/global",
            "/global/success/global",
            "/own/start/own",
            "/own/success/own",
        ],
        "{got:#?}"
    );
    let success = got.iter().find(|r| r.path == "/own/success/own").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&success.body).unwrap();
    assert_eq!((doc["outcome"].as_str(), doc["reason"].as_str()), (Some("ok"), Some("run")), "{doc:#}");
    assert_eq!(doc["snapshots"][0]["source"], "docs", "{doc:#}");
    let failure = got.iter().find(|r| r.path == "/global/failure/broken").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&failure.body).unwrap();
    assert_eq!((doc["outcome"].as_str(), doc["consecutive_failures"].as_u64()), (Some("failed"), Some(1)), "{doc:#}");
}

/// The state file of a repository (see `state.rs`): label and a hash of its url.
fn state_file(env: &TestEnv, label: &str, url: &Path) -> PathBuf {
    let hash = blake3::hash(url.display().to_string().as_bytes()).to_hex();
    env.path("cache").join("state").join(format!("{label}-{}.json", &hash[..12]))
}

#[test]
fn runs_missed_while_down_are_caught_up_once() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let (hourly, nightly, recent) = (env.path("hourly"), env.path("nightly"), env.path("recent"));
    let mut yaml = format!("cache_dir: \"{}\"\nrepositories:\n", env.path("cache").display());
    let every = "    schedule:\n      enabled: true\n      every: 1h\n";
    yaml.push_str(&repo_yaml("hourly", &hourly, every));
    yaml.push_str(&repo_yaml("nightly", &nightly, "    schedule:\n      enabled: true\n      cron: \"0 3 * * *\"\n"));
    yaml.push_str(&repo_yaml("recent", &recent, every));
    yaml.push_str(&format!("sources:\n  - label: docs\n    path: \"{}\"\n", src.display()));
    write_config(&env, &yaml);
    for label in ["hourly", "nightly", "recent"] {
        init(&env, label);
    }
    // The daemon last ran two days ago (many slots missed), and "recent" ten minutes ago.
    let now = Utc::now();
    let long_ago = (now - chrono::Duration::days(2)).to_rfc3339();
    let ten_minutes_ago = now - chrono::Duration::minutes(10);
    fs::create_dir_all(env.path("cache/state")).unwrap();
    for (label, url, last) in [
        ("hourly", &hourly, long_ago.clone()),
        ("nightly", &nightly, long_ago),
        ("recent", &recent, ten_minutes_ago.to_rfc3339()),
    ] {
        fs::write(state_file(&env, label, url), format!("{{\"daemon_last_run\": \"{last}\"}}")).unwrap();
    }

    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    daemon.wait_status(Duration::from_secs(30), "the catch-up cycles", |s| {
        cycles(s, "hourly") >= 1 && cycles(s, "nightly") >= 1
    });
    std::thread::sleep(Duration::from_secs(3));
    let status = daemon.status();
    for label in ["hourly", "nightly"] {
        let r = repo(&status, label);
        assert_eq!(r["cycles"], 1, "caught up once, not once per missed slot: {r:#}");
        assert_eq!(r["last_run"]["reason"], "catch-up", "{r:#}");
        assert_eq!(r["last_run"]["outcome"], "ok", "{r:#}\n{}", daemon.log());
        let next = time(&r["next_run"]);
        if label == "hourly" {
            assert!(next > Utc::now() + chrono::Duration::minutes(30), "{r:#}");
        } else {
            // The next 03:00 (local time) after the catch-up: as little as
            // minutes away when the test runs shortly before 03:00.
            let local = next.with_timezone(&chrono::Local);
            assert!(next > Utc::now() && next <= Utc::now() + chrono::Duration::hours(25), "{r:#}");
            assert_eq!((local.hour(), local.minute(), local.second()), (3, 0, 0), "{r:#}");
        }
    }
    let next = time(&repo(&status, "hourly")["next_run"]);
    let in_minutes = (next - Utc::now()).num_seconds() as f64 / 60.0;
    assert!((58.0..=60.5).contains(&in_minutes), "hourly next run in {in_minutes} min");
    let r = repo(&status, "recent");
    assert_eq!(r["cycles"], 0, "not missed: {r:#}");
    let expected = ten_minutes_ago + chrono::Duration::hours(1);
    assert!((time(&r["next_run"]) - expected).num_seconds().abs() <= 1, "keeps its cadence: {r:#}");

    // The state file records the run and the next one.
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(state_file(&env, "hourly", &hourly)).unwrap()).unwrap();
    assert!(time(&state["daemon_last_run"]) > now, "{state}");
    assert_eq!(time(&state["daemon_next_run"]), next, "{state}");
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
}

#[test]
fn sigterm_lets_the_running_cycle_finish_and_a_second_one_exits_at_once() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let local = env.path("repo");
    let slow = "schedule:\n  enabled: true\n  every: 1h\n  on_startup: true\nhooks:\n  before_backup: \"sleep 3\"\n";
    write_config(&env, &config(&env, &[("local", &local)], &src, slow));
    init(&env, "local");

    let mut daemon = spawn(&env, "graceful", &[]);
    daemon.wait_log("local: cycle starts", Duration::from_secs(20));
    let stop = Instant::now();
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
    assert!(stop.elapsed() >= Duration::from_millis(1500), "did not wait for the cycle: {}", daemon.log());
    assert!(daemon.log().contains("local: cycle ok"), "{}", daemon.log());
    assert_eq!(snapshot_count(&env, "local"), 1);

    let mut daemon = spawn(&env, "impatient", &[]);
    daemon.wait_log("local: cycle starts", Duration::from_secs(20));
    daemon.signal(SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let stop = Instant::now();
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), 143, "{}", daemon.log());
    assert!(stop.elapsed() < Duration::from_secs(2), "the second SIGTERM took {:?}", stop.elapsed());
    // The repository is consistent: the interrupted cycle left no snapshot and nothing to repair.
    env.run(["check"]).ok();
    assert_eq!(snapshot_count(&env, "local"), 1);

    // SIGINT twice: 130. The lock was released by the kernel.
    let mut daemon = spawn(&env, "interrupted", &[]);
    daemon.wait_log("local: cycle starts", Duration::from_secs(20));
    daemon.signal(SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal(SIGINT);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), 130, "{}", daemon.log());
}

#[test]
fn refuses_to_start_without_a_schedule_a_passphrase_or_a_safe_address() {
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let local = env.path("repo");
    let daemon = |args: &[&str], vars: &[(&str, &str)]| {
        let mut all = vec!["daemon"];
        all.extend_from_slice(args);
        env.run_env(all, vars)
    };
    let pass = [("VGER_PASSPHRASE", PASS)];

    write_config(&env, &config(&env, &[("local", &local)], &src, ""));
    daemon(&[], &pass).one_line_error(&["no repository has an enabled schedule", "vger.yaml"]);
    write_config(&env, &config(&env, &[("local", &local)], &src, "schedule:\n  enabled: false\n  every: 1h\n"));
    daemon(&[], &pass).one_line_error(&["no repository has an enabled schedule"]);
    write_config(&env, &config(&env, &[("local", &local)], &src, "schedule:\n  enabled: true\n"));
    daemon(&[], &pass).one_line_error(&["neither `every`", "cron"]);

    write_config(&env, &config(&env, &[("local", &local)], &src, EVERY_3S));
    daemon(&[], &[]).one_line_error(&["repository `local` is encrypted", "VGER_PASSPHRASE", "passcommand"]);
    let failing = format!("{EVERY_3S}encryption:\n  passcommand: \"exit 3\"\n");
    write_config(&env, &config(&env, &[("local", &local)], &src, &failing));
    daemon(&[], &[]).one_line_error(&["passcommand", "exit 3"]);

    write_config(&env, &config(&env, &[("local", &local)], &src, EVERY_3S));
    daemon(&["--http-listen", "0.0.0.0:7575"], &pass)
        .one_line_error(&["not a loopback address", "--http-allow-public"]);
    daemon(&["--http-listen", "nonsense"], &pass).one_line_error(&["--http-listen", "nonsense"]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let run_dir = env.path("run").display().to_string();
    let vars = [("VGER_PASSPHRASE", PASS), ("XDG_RUNTIME_DIR", run_dir.as_str())];
    daemon(&["--http-listen", &addr], &vars).one_line_error(&["cannot listen on", &addr]);

    // Unencrypted repositories need no passphrase.
    let plain = format!("{EVERY_3S}encryption:\n  mode: none\n");
    write_config(&env, &config(&env, &[("local", &local)], &src, &plain));
    env.run_env(["init"], &[]).ok();
    let mut d = spawn_env(&env, "plain", &[], &[]);
    d.wait_log("vger daemon: started", Duration::from_secs(20));
    d.signal(SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(60)), 0, "{}", d.log());
}

/// The workspace's `test-artifacts/` folder (git-ignored).
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but chromium is not installed: .ci/run must install Debian's `chromium`");
        }
        eprintln!("note: skipping the status page test: chromium is not installed (apt-get install chromium)");
        return;
    };
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let (local, broken) = (env.path("repo"), env.path("missing"));
    let tail = "schedule:\n  enabled: true\n  every: 1h\n  on_startup: true\n";
    write_config(&env, &config(&env, &[("local", &local), ("broken", &broken)], &src, tail));
    init(&env, "local");
    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    daemon.wait_status(Duration::from_secs(30), "a cycle of each repository", |s| {
        cycles(s, "local") >= 1 && cycles(s, "broken") >= 1
    });
    let url = format!("http://127.0.0.1:{}/", daemon.port());

    let profile = tempfile::tempdir().unwrap();
    let run_browser = |extra: &[&str]| {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{browser} failed: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };

    let shot = artifacts().join("daemon-status.png");
    let _ = fs::remove_file(&shot);
    let (_, shot_log) = run_browser(&[&format!("--screenshot={}", shot.display())]);
    let png = fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {} ({e}): {shot_log}", shot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a trivial screenshot ({} bytes)", png.len());

    let (dom, dom_log) = run_browser(&["--dump-dom"]);
    for needle in [
        "vger daemon",
        "local",
        "broken",
        "badge ok",
        "badge failed",
        "docs",
        "Recent snapshots",
        "Consecutive failures",
    ] {
        assert!(dom.contains(needle), "the rendered page lacks {needle:?}:\n{dom}");
    }
    for log in [&shot_log, &dom_log] {
        for line in log.lines() {
            let bad = line.contains("CONSOLE") || line.contains("Uncaught") || line.contains("Refused to");
            assert!(!bad, "console error on the status page: {line}\n{log}");
        }
    }
    eprintln!("status page screenshot: {}", shot.display());
    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
}
