//! `vger daemon` against S3 (`s3+http://` to the test server started by
//! `scripts/servers/s3-start`): cycles on time with jitter in bounds,
//! SIGUSR1 (for both repositories), a repository in a missing bucket
//! failing beside a good one with its own hourly schedule,
//! status and metrics against the snapshots really made, SIGTERM.
//!
//! Needs VGER_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY; without
//! them the test is skipped with a note, except under CI, where it fails.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
mod daemonkit;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use daemonkit::*;

struct S3 {
    host_port: String,
    bucket: String,
    access_key: String,
    secret_key: String,
}

fn s3() -> Option<S3> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("VGER_TEST_S3_ENDPOINT") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but VGER_TEST_S3_ENDPOINT is not: start the server with scripts/servers/s3-start");
        }
        eprintln!("note: skipping the daemon S3 test: VGER_TEST_S3_ENDPOINT not set (see scripts/servers/s3-start)");
        return None;
    };
    let host_port = endpoint.trim_start_matches("http://").trim_end_matches('/').to_string();
    Some(S3 {
        host_port,
        bucket: var("VGER_TEST_S3_BUCKET").unwrap_or_else(|| "vger-test".into()),
        access_key: var("VGER_TEST_S3_ACCESS_KEY").unwrap_or_default(),
        secret_key: var("VGER_TEST_S3_SECRET_KEY").unwrap_or_default(),
    })
}

fn s3_repo_yaml(s3: &S3, label: &str, bucket: &str, prefix: &str) -> String {
    format!(
        "  - label: {label}\n    url: \"s3+http://{}/{bucket}/{prefix}\"\n    allow_insecure_http: true\n    \
         access_key_id: \"{}\"\n    secret_access_key: \"{}\"\n    region: us-east-1\n    s3_addressing: path\n    \
         retry: {{ max_retries: 1, retry_delay_ms: 100, retry_max_delay_ms: 200 }}\n",
        s3.host_port, s3.access_key, s3.secret_key
    )
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().with_timezone(&Utc)
}

#[test]
fn daemon_runs_on_schedule_against_s3() {
    let Some(s3) = s3() else { return };
    let env = TestEnv::new();
    let src = make_source(&env, "src");
    let prefix = format!("daemon-{}-{}", std::process::id(), Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let hourly = "    schedule: { enabled: true, every: 1h, on_startup: true }\n";
    let mut yaml = format!("cache_dir: \"{}\"\nrepositories:\n", env.path("cache").display());
    yaml.push_str(&s3_repo_yaml(&s3, "s3", &s3.bucket, &prefix));
    yaml.push_str(&s3_repo_yaml(&s3, "nobucket", "vger-no-such-bucket", &prefix));
    yaml.push_str(hourly);
    yaml.push_str(&format!("sources:\n  - label: docs\n    path: \"{}\"\n", src.display()));
    yaml.push_str("schedule:\n  enabled: true\n  every: 3s\n  jitter_seconds: 1\n");
    write_config(&env, &yaml);
    init(&env, "s3");

    let mut daemon = spawn(&env, "daemon", &["--http-listen", "127.0.0.1:0"]);
    let mut runs: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs.len() < 2 {
        assert!(Instant::now() < deadline, "only {} S3 cycles in 60 s:\n{}", runs.len(), daemon.log());
        let status = daemon.status();
        let last = &repo(&status, "s3")["last_run"];
        if last["reason"] == "schedule" && runs.last().is_none_or(|r| r["started_at"] != last["started_at"]) {
            runs.push(last.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for run in &runs {
        assert_eq!(run["outcome"], "ok", "{run:#}\n{}", daemon.log());
        let jitter = (time(&run["started_at"]) - time(&run["scheduled_for"])).num_milliseconds();
        assert!((0..=1_300).contains(&jitter), "started {jitter} ms after its slot (jitter 1 s): {run:#}");
    }

    // SIGUSR1 runs both now, the hourly one in the missing bucket too (its second failure).
    let before = cycles(&daemon.status(), "s3");
    daemon.signal(SIGUSR1);
    let status = daemon.wait_status(Duration::from_secs(30), "a SIGUSR1 cycle of each", |s| {
        repo(s, "s3")["last_run"]["reason"] == "signal"
            && cycles(s, "s3") > before
            && repo(s, "nobucket")["last_run"]["reason"] == "signal"
    });
    assert_eq!(repo(&status, "nobucket")["consecutive_failures"], 2, "{status:#}");
    assert_eq!(repo(&status, "nobucket")["cycles"], 2, "{status:#}");
    assert_eq!(repo(&status, "nobucket")["last_run"]["outcome"], "failed");
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        metric(&metrics, "vger_repository_consecutive_failures", "repository=\"nobucket\"") >= Some(2.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "vger_source_last_files", "repository=\"s3\",source=\"docs\""), Some(2.0));

    daemon.signal(SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), 0, "{}", daemon.log());
    let log = daemon.log();
    let ok = log.matches("vger daemon: s3: cycle ok").count();
    assert!(ok >= 3, "{log}");
    assert_eq!(snapshot_count(&env, "s3"), ok, "{log}");
}
