//! `vger config`, `vger key ...`, `-R/--repo` over several repositories, and
//! the encryption modes.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::path::Path;

use common::{
    assert_diff_clean, assert_unchanged, compare_trees, files_under, fingerprint, random_bytes, TestEnv, PASS,
};

#[test]
fn config_writes_a_starter_that_init_accepts() {
    let env = TestEnv::new();
    env.run(["config"]).ok();
    let starter = fs::read_to_string(env.config()).unwrap();
    assert!(starter.contains("repositories:") && starter.contains("sources:"), "{starter}");

    // As written, it parses: a command gets as far as the repository.
    if !Path::new("/var/backups/vger-repo").exists() {
        env.run(["info"]).one_line_error(&["vger init"]);
    }

    // Not overwritten without --force.
    let edited = starter.replace("/var/backups/vger-repo", &env.repo().display().to_string());
    assert_ne!(edited, starter, "the starter has no url to edit");
    fs::write(env.config(), &edited).unwrap();
    env.run(["config"]).one_line_error(&["already exists", "--force"]);
    assert_eq!(fs::read_to_string(env.config()).unwrap(), edited);

    env.init();
    assert!(env.repo().join("config").is_file());
    env.run(["info"]).ok();

    env.run(["config", "--force"]).ok();
    assert_eq!(fs::read_to_string(env.config()).unwrap(), starter);

    // -o writes elsewhere.
    let other = env.path("other.yaml");
    env.run(["config".as_ref(), "-o".as_ref(), other.as_os_str()]).ok();
    assert_eq!(fs::read_to_string(other).unwrap(), starter);
}

fn key_slots(env: &TestEnv, pass: &str) -> Vec<serde_json::Value> {
    let v = env.run_env(["--json", "key", "list"], &[("VGER_PASSPHRASE", pass)]).ok().json();
    v.as_array().unwrap_or_else(|| panic!("key list --json is not an array: {v}")).clone()
}

#[test]
fn key_add_change_remove() {
    let env = TestEnv::new();
    env.config_with(&[], "");
    env.init();
    let opens = |pass: &str| env.run_env(["list"], &[("VGER_PASSPHRASE", pass)]);

    let slots = key_slots(&env, PASS);
    assert_eq!(slots.len(), 1, "{slots:?}");
    let first_id = slots[0]["id"].as_str().unwrap().to_string();
    assert!(slots[0]["created"].is_string() && slots[0]["kdf"] == "argon2id", "{:?}", slots[0]);

    env.run_env(["key", "add", "--label", "laptop"], &[("VGER_PASSPHRASE", PASS), ("VGER_NEW_PASSPHRASE", "second")])
        .ok();
    opens(PASS).ok();
    opens("second").ok();
    let slots = key_slots(&env, "second");
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert!(slots.iter().any(|s| s["label"] == "laptop"), "{slots:?}");

    // `key change` replaces the slot the current passphrase opens.
    env.run_env(["key", "change"], &[("VGER_PASSPHRASE", "second"), ("VGER_NEW_PASSPHRASE", "third")]).ok();
    opens("second").one_line_error(&["wrong passphrase"]);
    opens("third").ok();
    opens(PASS).ok();
    assert_eq!(key_slots(&env, "third").len(), 2);

    // Remove the first slot by an id prefix; its passphrase stops working.
    env.run_env(["key", "remove", &first_id[..10]], &[("VGER_PASSPHRASE", "third")]).ok();
    opens(PASS).one_line_error(&["wrong passphrase"]);
    let slots = key_slots(&env, "third");
    assert_eq!(slots.len(), 1, "{slots:?}");

    // The last slot is never removed.
    let last = slots[0]["id"].as_str().unwrap().to_string();
    let before = fingerprint(&env.repo());
    env.run_env(["key", "remove", &last[..10]], &[("VGER_PASSPHRASE", "third")]).one_line_error(&["last"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
    opens("third").ok();

    // No new passphrase given, no terminal: a clear error, nothing added.
    env.run_env(["key", "add"], &[("VGER_PASSPHRASE", "third")]).one_line_error(&["VGER_NEW_PASSPHRASE"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

/// Two repositories, one source.
fn two_repositories(env: &TestEnv, src: &Path) {
    let yaml = format!(
        "repositories:\n  - label: first\n    url: \"{}\"\n  - label: second\n    url: \"{}\"\n\
         sources:\n  - label: data\n    path: \"{}\"\n",
        env.path("repo1").display(),
        env.path("repo2").display(),
        src.display()
    );
    env.write_config(&yaml);
}

fn snapshot_count(env: &TestEnv, repo: &str) -> usize {
    env.run(["--json", "-R", repo, "list"]).ok().json().as_array().unwrap().len()
}

#[test]
fn repo_option_selects_repositories() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f.txt"), b"in both\n").unwrap();
    two_repositories(&env, &src);

    let run = env.run(["init"]).ok();
    assert!(run.stdout.contains("first") && run.stdout.contains("second"), "{}", run.stdout);
    assert!(env.path("repo1/config").is_file() && env.path("repo2/config").is_file());

    // Without -R: every repository, each under its own heading, in order.
    let run = env.run(["backup"]).ok();
    let (h1, h2) = (run.stdout.find("first"), run.stdout.find("second"));
    assert!(h1.is_some() && h2.is_some() && h1 < h2, "no per-repository headings: {}", run.stdout);
    assert_eq!((snapshot_count(&env, "first"), snapshot_count(&env, "second")), (1, 1));

    // With -R LABEL, and with -R URL: only that one.
    env.run(["-R", "first", "backup"]).ok();
    assert_eq!((snapshot_count(&env, "first"), snapshot_count(&env, "second")), (2, 1));
    let url2 = env.path("repo2").display().to_string();
    env.run(["-R", &url2, "backup"]).ok();
    assert_eq!((snapshot_count(&env, "first"), snapshot_count(&env, "second")), (2, 2));
    let list = env.run(["--json", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 4, "list without -R covers both: {list}");

    // Unknown: one clear line listing the labels, nothing touched.
    let (b1, b2) = (fingerprint(&env.path("repo1")), fingerprint(&env.path("repo2")));
    env.run(["-R", "third", "backup"]).one_line_error(&["third", "first", "second"]);
    assert_unchanged(&b1, &fingerprint(&env.path("repo1")));
    assert_unchanged(&b2, &fingerprint(&env.path("repo2")));

    // Restore needs one repository.
    env.run(["restore", "latest", "dest"]).one_line_error(&["-R", "first", "second"]);
    env.run(["-R", "second", "restore", "latest", "dest"]).ok();
    assert_eq!(fs::read(env.path("dest/f.txt")).unwrap(), b"in both\n");
}

/// Backs up a small tree in `mode` with compression off, restores it, and
/// returns `info --json` and whether a known run of file bytes is visible
/// in the packs.
fn round_trip_in_mode(mode: &str, pass: Option<&str>) -> (serde_json::Value, bool) {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let secret = random_bytes(64 << 10, 3);
    fs::write(src.join("secret.bin"), &secret).unwrap();
    fs::write(src.join("sub/plain.txt"), b"hello\n").unwrap();
    std::os::unix::fs::symlink("../secret.bin", src.join("sub/link")).unwrap();
    env.config_with(&[("s", &src)], &format!("encryption:\n  mode: {mode}\ncompression: none\n"));
    let envs: Vec<(&str, &str)> = pass.map(|p| ("VGER_PASSPHRASE", p)).into_iter().collect();
    env.run_env(["init"], &envs).ok();
    env.run_env(["backup"], &envs).ok();
    let dest = env.path("dest");
    env.run_env(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()], &envs).ok();
    assert_diff_clean(&src, &dest, &[]);
    let diffs = compare_trees(&src, &dest);
    assert!(diffs.is_empty(), "{mode}: {}", diffs.join("\n"));
    let info = env.run_env(["--json", "info"], &envs).ok().json();
    let needle = &secret[1000..1064];
    let visible = files_under(&env.repo().join("packs"))
        .iter()
        .any(|p| fs::read(p).unwrap().windows(needle.len()).any(|w| w == needle));
    (info, visible)
}

fn info_field<'a>(info: &'a serde_json::Value, field: &str) -> &'a serde_json::Value {
    &info[0]["info"][field]
}

#[test]
fn chacha20poly1305_round_trip() {
    let (info, visible) = round_trip_in_mode("chacha20poly1305", Some(PASS));
    assert_eq!(info_field(&info, "encryption"), "chacha20poly1305", "{info}");
    assert_eq!(info_field(&info, "tamper_proof"), true, "{info}");
    assert!(!visible, "file bytes are readable in the packs of an encrypted repository");
}

#[test]
fn aes256gcm_round_trip() {
    let (info, visible) = round_trip_in_mode("aes256gcm", Some(PASS));
    assert_eq!(info_field(&info, "encryption"), "aes256gcm", "{info}");
    assert!(!visible, "file bytes are readable in the packs of an encrypted repository");
}

#[test]
fn unencrypted_round_trip_needs_no_passphrase() {
    let (info, visible) = round_trip_in_mode("none", None);
    assert_eq!(info_field(&info, "encryption"), "none", "{info}");
    assert_eq!(info_field(&info, "tamper_proof"), false, "{info}");
    // Proves the check above can see plaintext when it is there.
    assert!(visible, "with encryption and compression off the file bytes should be in the packs");
}
