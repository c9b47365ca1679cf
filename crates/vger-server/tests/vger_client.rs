//! The `vger` client against a real vger-server: a full lifecycle over
//! HTTP, an append-only client that cannot delete, and retention that a
//! compromised client cannot game with far-future snapshot times.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// The `vger` binary built beside `vger-server` by `cargo test --workspace`.
fn vger_bin() -> Option<PathBuf> {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_vger-server"));
    let vger = server.with_file_name("vger");
    if vger.exists() {
        return Some(vger);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {} is missing: run `cargo test --workspace`", vger.display());
    }
    eprintln!("note: skipping: {} not built (run `cargo build -p vger-cli`)", vger.display());
    None
}

fn config(dir: &Path, addr: &str, token: &str, src: &Path) -> PathBuf {
    let path = dir.join(format!("vger-{}.yaml", &token[..4]));
    std::fs::write(
        &path,
        format!(
            "repositories:\n  - label: server\n    url: http://{addr}/laptop\n    access_token: {token}\n    allow_insecure_http: true\nsources:\n  - label: docs\n    path: \"{}\"\nretention:\n  keep_last: 2\n",
            src.display()
        ),
    )
    .unwrap();
    path
}

fn vger(bin: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("VGER_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn snapshot_times(bin: &Path, config: &Path) -> Vec<String> {
    let out = ok(vger(bin, config, &["--json", "list"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().iter().map(|s| s["time"].as_str().unwrap().to_string()).collect()
}

#[test]
fn append_client_cannot_delete_or_game_retention() {
    let Some(bin) = vger_bin() else { return };
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"first\n").unwrap();
    let append = config(dir.path(), &server.addr, APPEND, &src);
    let full = config(dir.path(), &server.addr, FULL, &src);

    ok(vger(&bin, &append, &["init"]));
    // A compromised client plants snapshots dated far in the future...
    for i in 0..2 {
        std::fs::write(src.join("planted.txt"), format!("planted {i}\n")).unwrap();
        ok(vger(&bin, &append, &["backup", "--time", &format!("2099-01-0{}T00:00:00Z", i + 1)]));
    }
    std::fs::remove_file(src.join("planted.txt")).unwrap();
    // ... before the real backups of this machine.
    for i in 0..2 {
        std::fs::write(src.join("a.txt"), format!("real {i}\n")).unwrap();
        ok(vger(&bin, &append, &["backup"]));
    }
    assert_eq!(snapshot_times(&bin, &append).len(), 4);

    // The append token cannot delete anything: snapshot delete and prune fail.
    let ids: Vec<String> = {
        let out = ok(vger(&bin, &append, &["--json", "list"]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
    };
    let refused = vger(&bin, &append, &["snapshot", "delete", &ids[0]]);
    assert!(!refused.status.success(), "an append token deleted a snapshot");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!vger(&bin, &append, &["prune"]).status.success(), "an append token pruned");
    assert_eq!(snapshot_times(&bin, &append).len(), 4, "an append client removed snapshots");

    // A trusted prune with a full token keeps the two real, newest-received
    // snapshots and says which snapshot times it did not believe.
    let out = ok(vger(&bin, &full, &["prune"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2099-01-01") && stderr.contains("server received"), "{stderr}");
    let left = snapshot_times(&bin, &full);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter().all(|t| !t.starts_with("2099")),
        "real snapshots were pruned in favour of planted ones: {left:?}"
    );
    let restore = dir.path().join("out");
    ok(vger(&bin, &full, &["restore", "latest", restore.to_str().unwrap()]));
    assert_eq!(std::fs::read(restore.join("a.txt")).unwrap(), b"real 1\n");
    ok(vger(&bin, &full, &["compact", "--grace", "0s"]));
    ok(vger(&bin, &full, &["check", "--verify-data"]));
}
