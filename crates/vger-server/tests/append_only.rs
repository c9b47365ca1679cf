//! A compromised client holding an `append` token (or any token on an
//! `--append-only` server) tries every way to destroy or hide committed
//! objects; every one is refused and the objects stay byte-identical.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{key, pack_key, Options, RawReply, Server, ADMIN, APPEND, FULL, OTHER_REPO, READ};
use vger_storage::{Storage, StorageError};

const REPO: &str = "repo";

fn committed() -> Vec<(String, Vec<u8>)> {
    vec![
        ("config".to_owned(), b"config bytes".to_vec()),
        (key("keys", 1), b"key slot".to_vec()),
        (pack_key(0xab, 1), vec![7u8; 5000]),
        (key("index", 1), b"index segment".to_vec()),
        (key("snapshots", 1), b"snapshot one".to_vec()),
        (key("snapshots", 2), b"snapshot two".to_vec()),
    ]
}

fn setup(server: &Server) {
    let full = server.client(REPO, FULL);
    for (key, data) in committed() {
        full.put(&key, &data).unwrap();
    }
    full.put(&key("locks", 1), b"lock").unwrap();
}

/// The committed objects are still there, byte for byte, on disk and
/// through the API.
fn assert_intact(server: &Server) {
    let full = server.client(REPO, FULL);
    for (key, data) in committed() {
        assert_eq!(full.get(&key).unwrap(), data, "{key} changed");
        assert_eq!(std::fs::read(server.data_dir().join(REPO).join(&key)).unwrap(), data, "{key} changed on disk");
    }
}

fn assert_status(reply: &RawReply, want: u16, what: &str) {
    assert_eq!(reply.status, want, "{what}: {} {}", reply.head, reply.text());
}

#[test]
fn append_token_cannot_delete_or_overwrite_committed_objects() {
    let server = Server::start();
    setup(&server);
    let attacker = server.client(REPO, APPEND);
    for (key, data) in committed() {
        let key = key.as_str();
        let key_slot = key.starts_with("keys/");
        // Delete.
        assert_status(&server.raw("DELETE", &format!("/{REPO}/{key}"), Some(APPEND), &[], b""), 403, key);
        let err = attacker.delete(key).unwrap_err();
        assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err}");
        assert!(err.to_string().contains(if key_slot { "may not" } else { "append-only" }), "{err}");
        // Overwrite, with and without If-None-Match (key slots: not at all).
        assert_status(&server.put(REPO, key, APPEND, b"evil", &[]), 403, key);
        let create_only = server.put(REPO, key, APPEND, b"evil", &[("If-None-Match", "*")]);
        assert_status(&create_only, if key_slot { 403 } else { 412 }, key);
        assert!(matches!(attacker.put(key, b"evil"), Err(StorageError::PermissionDenied { .. })));
        let put_new = attacker.put_new(key, b"evil");
        match key_slot {
            true => assert!(matches!(put_new, Err(StorageError::PermissionDenied { .. })), "{put_new:?}"),
            false => assert!(matches!(put_new, Err(StorageError::AlreadyExists { .. })), "{put_new:?}"),
        }
        // Truncate.
        assert_status(&server.put(REPO, key, APPEND, b"", &[]), 403, key);
        // A retried upload of the very same bytes is harmless and succeeds
        // (but an append token writes no key slot at all).
        assert_status(&server.put(REPO, key, APPEND, &data, &[]), if key_slot { 403 } else { 200 }, key);
    }
    // "Rename": one snapshot's content under another's key.
    let (s1, s2, s3) = (key("snapshots", 1), key("snapshots", 2), key("snapshots", 3));
    let s1_bytes = attacker.get(&s1).unwrap();
    assert_status(&server.put(REPO, &s2, APPEND, &s1_bytes, &[]), 403, "rename");
    // Deleting what does not exist is refused too (no probing, no races).
    assert_status(&server.raw("DELETE", &format!("/{REPO}/{s3}"), Some(APPEND), &[], b""), 403, "absent");
    // A wrong hash header cannot sneak a body of the same length past the check.
    let reply = server.raw(
        "PUT",
        &format!("/{REPO}/{s1}"),
        Some(APPEND),
        &[("x-vger-blake3", blake3::hash(b"snapshot one").to_hex().as_ref())],
        b"snapshot ONE",
    );
    assert_status(&reply, 400, "hash mismatch");
    assert_intact(&server);

    // What a backup needs still works: new objects, and its own locks.
    attacker.put_new(&s3, b"new snapshot").unwrap();
    attacker.put(&key("index", 2), b"new segment").unwrap();
    let own_lock = key("locks", 2);
    attacker.put_new(&own_lock, b"taken").unwrap();
    attacker.put(&own_lock, b"refreshed").unwrap();
    assert_eq!(attacker.get(&own_lock).unwrap(), b"refreshed");
    attacker.delete(&own_lock).unwrap();
    assert_eq!(attacker.get(&s3).unwrap(), b"new snapshot");
    // ...and the new snapshot is immutable at once.
    assert_status(&server.put(REPO, &s3, APPEND, b"x", &[]), 403, "new snapshot");
}

/// Locks belong to the token that wrote them: another append token can
/// neither refresh, replace nor remove one; a full token can remove any.
#[test]
fn an_append_token_may_change_only_its_own_locks() {
    let server = Server::start();
    setup(&server);
    let lock = key("locks", 1);
    // `other` is an append token of another repository: use `append` on a
    // lock that `full` wrote, and on one that `append` wrote for `full`.
    let attacker = server.client(REPO, APPEND);
    let err = attacker.delete(&lock).unwrap_err();
    assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err}");
    assert!(err.to_string().contains("token `full`"), "{err}");
    assert!(matches!(attacker.put(&lock, b"stolen"), Err(StorageError::PermissionDenied { .. })));
    assert_eq!(server.client(REPO, FULL).get(&lock).unwrap(), b"lock");
    let theirs = key("locks", 9);
    server.client(REPO, APPEND).put_new(&theirs, b"append's lock").unwrap();
    let second_append = "second-append-token-0123456";
    std::fs::write(
        server.tokens_file(),
        format!("{}- name: second\n  token: {second_append}\n  permissions: append\n", common::default_tokens()),
    )
    .unwrap();
    server.hup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let second = server.client(REPO, second_append);
    while second.get(&lock).is_err() {
        assert!(std::time::Instant::now() < deadline, "the reloaded token is not accepted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = second.delete(&theirs).unwrap_err();
    assert!(err.to_string().contains("token `append`"), "{err}");
    assert_eq!(server.client(REPO, READ).get(&theirs).unwrap(), b"append's lock");
    // The full token breaks any lock (`vger break-lock`).
    server.client(REPO, FULL).delete(&theirs).unwrap();
    server.client(REPO, FULL).delete(&lock).unwrap();
    assert!(server.client(REPO, READ).list("locks/").unwrap().is_empty());
}

/// Key slots are written only with a full token: a stolen append token
/// cannot add a slot that every open of the repository would try.
#[test]
fn key_slots_need_a_full_token() {
    let server = Server::start();
    let slot = key("keys", 5);
    let err = server.client(REPO, APPEND).put_new(&slot, b"planted slot").unwrap_err();
    assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err}");
    assert!(server.client(REPO, READ).list("keys/").unwrap().is_empty());
    server.client(REPO, FULL).put_new(&slot, b"real slot").unwrap();
    let err = server.client(REPO, APPEND).delete(&slot).unwrap_err();
    assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err}");
    assert_eq!(server.client(REPO, READ).get(&slot).unwrap(), b"real slot");
}

/// Only the keys of a vger repository are stored: empty objects at
/// made-up deep keys cannot fill the disk's inodes.
#[test]
fn keys_outside_the_repository_layout_are_refused() {
    let server = Server::start();
    let deep = "a/".repeat(100) + "a";
    for target in [
        deep.as_str(),
        "snapshots/s1",
        "packs/00/abc",
        "other/0000000000000000000000000000000000000000000000000000000000000000",
        "locks/l1",
    ] {
        for token in [APPEND, FULL] {
            let reply = server.put(REPO, target, token, b"", &[]);
            assert_status(&reply, 400, target);
            assert_eq!(reply.header("x-vger-error").as_deref(), Some("invalid-key"), "{target}");
        }
    }
    assert!(common::all_files(&server.data_dir()).is_empty(), "{:?}", server.files());
}

/// A request announcing a body of `length` bytes, of which none is sent:
/// the server must answer from the headers alone.
fn announce_huge_body(server: &Server, key: &str, length: u64) -> RawReply {
    let request = format!(
        "PUT /{REPO}/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {APPEND}\r\n\
         x-vger-blake3: {}\r\nContent-Length: {length}\r\n\r\n",
        blake3::hash(b"").to_hex()
    );
    server.try_raw(request.as_bytes()).unwrap()
}

#[test]
fn huge_bodies_are_refused_before_a_byte_is_read() {
    let server = Server::start();
    setup(&server);
    let started = std::time::Instant::now();
    for (key, _) in committed() {
        assert_status(&announce_huge_body(&server, &key, 1 << 50), 403, &key);
    }
    // A new object larger than the free disk space (no quota set).
    let huge = key("snapshots", 0x4e);
    let reply = announce_huge_body(&server, &huge, 1 << 50);
    assert_status(&reply, 507, "larger than the disk");
    assert_eq!(reply.header("x-vger-error").as_deref(), Some("no-space"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the server waited for bodies");
    assert!(reply.text().contains("no room") && !reply.text().contains("free"), "{}", reply.text());
    assert!(server.files().iter().all(|f| !f.contains(".tmp-") && !f.ends_with(&huge)), "{:?}", server.files());
    assert_intact(&server);
}

#[test]
fn append_only_flag_caps_every_token() {
    let server = Server::start_with(Options {
        tokens: Some(common::default_tokens()),
        args: vec!["--append-only".into()],
        ..Options::default()
    });
    // No token may write a key slot on an append-only server: the
    // repository was made before (here: written straight to the disk).
    for (key, data) in committed() {
        let path = server.data_dir().join(REPO).join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    for token in [FULL, ADMIN] {
        assert_status(&server.put(REPO, &key("keys", 7), token, b"slot", &[]), 403, "a new key slot");
        for (key, _) in committed() {
            assert_status(&server.raw("DELETE", &format!("/{REPO}/{key}"), Some(token), &[], b""), 403, &key);
            assert_status(&server.put(REPO, &key, token, b"evil", &[]), 403, &key);
        }
    }
    assert_intact(&server);
}

#[test]
fn traversal_is_refused_and_nothing_escapes_the_data_dir() {
    let server = Server::start();
    setup(&server);
    let before: Vec<_> = common::all_files(server.root.path());
    let targets = [
        format!("/{REPO}/../outside"),
        format!("/{REPO}/../../outside"),
        format!("/{REPO}/%2e%2e/outside"),
        format!("/{REPO}/%2E%2E/%2e%2e/outside"),
        format!("/{REPO}/snapshots%2F..%2F..%2Foutside"),
        format!("/{REPO}/snapshots/%2F..%2Foutside"),
        format!("/{REPO}/a%5C..%5Coutside"),
        format!("/{REPO}/a\\..\\outside"),
        format!("/{REPO}/a%00b"),
        format!("/{REPO}//etc/passwd"),
        format!("/{REPO}/%2Fetc%2Fpasswd"),
        format!("/{REPO}/.tmp-123"),
        format!("/{REPO}/snapshots/.hidden"),
        format!("/{REPO}/a/a/a/a"),
        "/../outside".to_owned(),
        "/%2e%2e/outside".to_owned(),
        "/%2e%2e%2foutside/x".to_owned(),
        "/.hidden/x".to_owned(),
        "/..%2Foutside/x".to_owned(),
    ];
    for target in &targets {
        for token in [APPEND, FULL] {
            let hash = blake3::hash(b"evil").to_hex().to_string();
            let reply = server.raw("PUT", target, Some(token), &[("x-vger-blake3", &hash)], b"evil");
            assert_status(&reply, 400, &format!("PUT {target}"));
            assert_status(&server.raw("GET", target, Some(token), &[], b""), 400, &format!("GET {target}"));
            assert_status(&server.raw("DELETE", target, Some(token), &[], b""), 400, &format!("DELETE {target}"));
        }
    }
    // Absolute-form request targets.
    for target in
        [format!("http://{}/{REPO}/../outside", server.addr), format!("http://{}/%2e%2e/outside", server.addr)]
    {
        let hash = blake3::hash(b"evil").to_hex().to_string();
        let reply = server.raw("PUT", &target, Some(FULL), &[("x-vger-blake3", &hash)], b"evil");
        assert!(reply.status == 400, "PUT {target}: {}", reply.head);
    }
    assert_eq!(common::all_files(server.root.path()), before, "a file appeared or vanished");
    assert_intact(&server);
}

#[test]
fn tokens_are_checked() {
    let server = Server::start();
    setup(&server);
    let key = format!("/{REPO}/{}", key("snapshots", 1));
    // Missing, wrong, malformed.
    assert_status(&server.raw("GET", &key, None, &[], b""), 401, "missing");
    let reply = server.raw("GET", &key, Some("wrong-token-0123456789abcdef"), &[], b"");
    assert_status(&reply, 401, "wrong");
    assert!(reply.header("www-authenticate").is_some());
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer", FULL, "Bearer  ", "Token abc"] {
        let reply = server.raw("GET", &key, None, &[("Authorization", header)], b"");
        assert_status(&reply, 401, header);
    }
    let truncated = &FULL[..FULL.len() - 1];
    assert_status(&server.raw("GET", &key, Some(truncated), &[], b""), 401, "prefix of a token");
    let longer = format!("{FULL}x");
    assert_status(&server.raw("DELETE", &key, Some(&longer), &[], b""), 401, "token plus a byte");
    // Lower-case scheme is fine.
    let reply = server.raw("GET", &key, None, &[("Authorization", &format!("bearer {FULL}"))], b"");
    assert_status(&reply, 200, "bearer in lower case");

    // A token for another repository.
    assert_status(&server.raw("GET", &key, Some(OTHER_REPO), &[], b""), 403, "other repo");
    let new = common::key("snapshots", 9);
    assert_status(&server.put(REPO, &new, OTHER_REPO, b"x", &[]), 403, "other repo put");
    assert_status(&server.put("newrepo", "config", OTHER_REPO, b"x", &[]), 403, "creating another repo");
    assert!(!server.data_dir().join("newrepo").exists());
    assert_status(&server.put("other", "config", OTHER_REPO, b"x", &[]), 201, "own repo");

    // A read token may read, not write.
    assert_status(&server.raw("GET", &key, Some(READ), &[], b""), 200, "read get");
    assert_status(&server.put(REPO, &new, READ, b"x", &[]), 403, "read put");
    assert_status(&server.raw("DELETE", &key, Some(READ), &[], b""), 403, "read delete");
    let reader = server.client(REPO, READ);
    assert!(matches!(reader.put(&new, b"x"), Err(StorageError::PermissionDenied { .. })));
    let err = server.client(REPO, "wrong-token-0123456789abcdef").get("config").unwrap_err();
    assert!(err.to_string().contains("the access token is missing or wrong"), "{err}");
    // Admin-only server statistics.
    assert_status(&server.raw("GET", "/?stats", Some(FULL), &[], b""), 403, "stats as full");
    assert_status(&server.raw("GET", "/?stats", Some(ADMIN), &[], b""), 200, "stats as admin");
    // The token never reaches the log.
    let log = server.log_text();
    for token in [FULL, APPEND, READ, ADMIN, OTHER_REPO] {
        assert!(!log.contains(token), "token in the log");
    }
    assert!(log.contains("token=full"), "{log}");
    assert_intact(&server);
}

#[test]
fn refuses_to_start_without_tokens() {
    let root = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vger-server"))
        .arg("--data-dir")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("VGER_SERVER_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VGER_SERVER_TOKEN") && stderr.contains("--tokens"), "{stderr}");
    // And there is no option to pass a token on the command line.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vger-server")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains("--token "), "{help}");
}

#[test]
fn env_token_has_full_access() {
    let server =
        Server::start_with(Options { env_token: Some("env-token-0123456789abcdef".into()), ..Options::default() });
    let client = server.client(REPO, "env-token-0123456789abcdef");
    client.put("config", b"c").unwrap();
    client.delete("config").unwrap();
    assert!(matches!(server.client(REPO, FULL).get("config"), Err(StorageError::PermissionDenied { .. })));
}

#[test]
fn a_tokens_file_may_hold_only_hashes() {
    // printf %s hashed-token-0123456789abcdef | sha256sum
    let hash = "d3af0778a1fb6ddef0b9b43dbd80f29d1b737ba942f1aca95368cb42eb5d9703";
    let tokens = format!("- token_sha256: {hash}\n  permissions: append\n  repos: [{REPO}]\n");
    let server = Server::start_with(Options { tokens: Some(tokens), ..Options::default() });
    let client = server.client(REPO, "hashed-token-0123456789abcdef");
    let s1 = key("snapshots", 1);
    client.put_new(&s1, b"s").unwrap();
    assert!(matches!(client.delete(&s1), Err(StorageError::PermissionDenied { .. })), "append only");
    let wrong = server.client(REPO, "hashed-token-0123456789abcdeX");
    assert!(matches!(wrong.get(&s1), Err(StorageError::PermissionDenied { .. })));
    // Logged by the first digits of its hash, never by the token.
    let log = server.log_text();
    assert!(log.contains("sha256:d3af0778") && !log.contains("hashed-token"), "{log}");
}
