//! Sixteen clients writing and reading at once: storage clients, then
//! `vger backup` processes.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Server, APPEND, FULL};
use vger_storage::testsuite::pattern;
use vger_storage::Storage;

#[test]
fn sixteen_clients_two_hundred_objects_each() {
    let server = Server::start();
    let key = |t: usize, i: usize| common::pack_key(t as u8, i as u64);
    let data = |t: usize, i: usize| pattern((t * 1000 + i) as u64, 1000 + (t * 7919 + i * 104_729) % 30_000);
    std::thread::scope(|scope| {
        for t in 0..16 {
            let server = &server;
            scope.spawn(move || {
                let client = server.client("shared", if t % 2 == 0 { FULL } else { APPEND });
                for i in 0..200 {
                    client.put_new(&key(t, i), &data(t, i)).unwrap();
                    assert_eq!(client.get(&key(t, i)).unwrap(), data(t, i), "client {t} object {i}");
                }
                let listed = client.list(&format!("packs/{t:02x}/")).unwrap();
                assert_eq!(listed.len(), 200);
            });
        }
    });
    let client = server.client("shared", FULL);
    assert_eq!(client.list("").unwrap().len(), 3200);
    for t in 0..16 {
        for i in (0..200).step_by(37) {
            assert_eq!(client.get(&key(t, i)).unwrap(), data(t, i));
        }
    }
    assert!(server.files().iter().all(|f| !f.contains(".tmp-")));
}

/// Sixteen `vger backup` processes into one repository at once, each with
/// its own source (and data shared by all, so they race to store the
/// same chunks): every snapshot is complete, `check --verify-data` is
/// clean and each source restores byte for byte.
#[test]
fn sixteen_vger_clients_back_up_at_once() {
    use common::cli::{config, ok, text, vger, vger_bin};
    let Some(bin) = vger_bin() else { return };
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let shared = pattern(99, 1 << 20);
    let configs: Vec<_> = (0..16)
        .map(|c| {
            let src = dir.path().join(format!("src{c:02}"));
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("own.bin"), pattern(c, 256 << 10)).unwrap();
            std::fs::write(src.join("shared.bin"), &shared).unwrap();
            let client_dir = dir.path().join(format!("client{c:02}"));
            std::fs::create_dir_all(&client_dir).unwrap();
            (src.clone(), config(&client_dir, &server.addr, if c % 2 == 0 { FULL } else { APPEND }, &src))
        })
        .collect();
    ok(vger(&bin, &configs[0].1, &["init"]));
    let children: Vec<_> = configs
        .iter()
        .map(|(_, cfg)| {
            std::process::Command::new(&bin)
                .arg("--config")
                .arg(cfg)
                .arg("backup")
                .env("VGER_PASSPHRASE", "correct horse battery staple")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a backup failed: {}", text(&out));
    }
    let out = ok(vger(&bin, &configs[0].1, &["--json", "list"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 16, "{list}");
    let out = ok(vger(&bin, &configs[0].1, &["check", "--verify-data"]));
    assert!(text(&out).contains("no problems found"), "{}", text(&out));
    let mut restored = std::collections::BTreeSet::new();
    for (i, snapshot) in list.as_array().unwrap().iter().enumerate() {
        let dest = dir.path().join(format!("out{i:02}"));
        ok(vger(&bin, &configs[0].1, &["restore", snapshot["id"].as_str().unwrap(), dest.to_str().unwrap()]));
        let own = std::fs::read(dest.join("own.bin")).unwrap();
        let (src, _) = configs.iter().find(|(src, _)| std::fs::read(src.join("own.bin")).unwrap() == own).unwrap();
        assert_eq!(std::fs::read(dest.join("shared.bin")).unwrap(), shared, "{}", src.display());
        restored.insert(src.clone());
    }
    assert_eq!(restored.len(), 16, "every client's data is in its own snapshot");
    assert!(server.files().iter().all(|f| !f.contains(".tmp-")));
}
