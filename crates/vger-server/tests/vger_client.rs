//! The `vger` client against a real vger-server: a full lifecycle over
//! HTTP, an append-only client that cannot delete, and retention that a
//! compromised client cannot game with far-future snapshot times.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::path::Path;

use common::cli::{config, ok, vger, vger_bin};
use common::*;

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

    // Key slots are written with a full token only; the append token backs up.
    let refused = vger(&bin, &append, &["init"]);
    assert!(!refused.status.success(), "an append token wrote a key slot");
    ok(vger(&bin, &full, &["init"]));
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
