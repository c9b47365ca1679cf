//! Retention flooding (issue 17, item 4), played with the real `vger`
//! and `vger-server`: a thief holding the laptop's append token and its
//! key writes a burst of snapshots with the laptop's source label and
//! host, so that `keep_last` would rank them above every real snapshot.
//! The owner's next `prune` with a full token deletes nothing, names the
//! planted snapshots, when they arrived and which token wrote them; once
//! they are removed, prune keeps exactly what the rules say.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::cli::{config, ok, text, vger, vger_bin};
use common::*;

const DAY: u64 = 86_400;

/// Snapshot ids and times, oldest first.
fn snapshots(bin: &Path, cfg: &Path) -> Vec<(String, String)> {
    let out = ok(vger(bin, cfg, &["--json", "list"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s["time"].as_str().unwrap().to_owned()))
        .collect();
    all.sort_by(|a, b| a.1.cmp(&b.1));
    all
}

#[test]
fn a_burst_of_planted_snapshots_does_not_push_the_real_ones_out() {
    let Some(bin) = vger_bin() else { return };
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Retention (from the test config): keep_last 2.
    let laptop = config(dir.path(), &server.addr, APPEND, &src);
    let owner = config(dir.path(), &server.addr, FULL, &src);
    ok(vger(&bin, &owner, &["init"]));

    // Five real daily backups, the last one yesterday. The server's receipt
    // time of each is set to its day, as if it had arrived then.
    let now = SystemTime::now();
    for day in (1..=5u64).rev() {
        std::fs::write(src.join("notes.txt"), format!("real, {day} days ago\n")).unwrap();
        let when = now - Duration::from_secs(day * DAY);
        let stamp = chrono::DateTime::<chrono::Utc>::from(when).to_rfc3339();
        let before = snapshots(&bin, &owner);
        ok(vger(&bin, &laptop, &["backup", "--time", &stamp]));
        let (id, _) = snapshots(&bin, &owner).into_iter().find(|s| !before.contains(s)).unwrap();
        let file = server.data_dir().join("laptop/snapshots").join(&id);
        std::fs::File::options().write(true).open(file).unwrap().set_modified(when).unwrap();
    }
    let real = snapshots(&bin, &owner);
    assert_eq!(real.len(), 5);

    // The thief: the same token, key, label and host; eight snapshots in
    // a few seconds.
    std::fs::write(src.join("notes.txt"), b"planted\n").unwrap();
    for _ in 0..8 {
        ok(vger(&bin, &laptop, &["backup"]));
    }
    assert_eq!(snapshots(&bin, &owner).len(), 13);

    // The owner prunes: nothing is deleted, and the user is told why.
    let refused = vger(&bin, &owner, &["prune"]);
    let said = text(&refused);
    assert!(!refused.status.success(), "prune followed the flood: {said}");
    assert!(said.contains("8 snapshots arrived in a burst"), "{said}");
    assert!(said.contains("token `append`"), "{said}");
    assert!(said.contains("vger prune --force") && said.contains("vger snapshot delete"), "{said}");
    let left = snapshots(&bin, &owner);
    assert_eq!(left.len(), 13, "prune deleted snapshots: {said}");
    for (id, _) in &real {
        assert!(left.iter().any(|(l, _)| l == id), "real snapshot {id} is gone");
    }

    // The JSON report names the same snapshots; --force would follow the rules.
    let out = vger(&bin, &owner, &["--json", "prune", "--dry-run"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planted: Vec<String> =
        report["flood"]["suspects"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(planted.len(), 8, "{report}");
    assert!(planted.iter().all(|id| !real.iter().any(|(r, _)| r == id)), "a real snapshot was called planted");
    assert_eq!(report["flood"]["held"].as_array().unwrap().len(), 2, "the two newest real ones: {report}");
    assert!(report["flood"]["suspects"][0]["writer"] == "append", "{report}");
    let forced = ok(vger(&bin, &owner, &["--json", "prune", "--dry-run", "--force"]));
    let forced: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert_eq!(forced["refused"], false);

    // The owner removes the planted snapshots; prune then keeps the two
    // newest real ones, as the rules say, and they restore.
    let mut args = vec!["snapshot", "delete"];
    args.extend(planted.iter().map(String::as_str));
    ok(vger(&bin, &owner, &args));
    let out = ok(vger(&bin, &owner, &["prune"]));
    assert!(!text(&out).contains("burst"), "{}", text(&out));
    let left: Vec<String> = snapshots(&bin, &owner).into_iter().map(|(id, _)| id).collect();
    let newest: Vec<String> = real[3..].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(left, newest);
    let restore = dir.path().join("restored");
    ok(vger(&bin, &owner, &["restore", "latest", restore.to_str().unwrap()]));
    assert_eq!(std::fs::read(restore.join("notes.txt")).unwrap(), b"real, 1 days ago\n");
    ok(vger(&bin, &owner, &["check"]));
}
