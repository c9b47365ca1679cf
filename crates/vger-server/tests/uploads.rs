//! Uploads that go wrong: cut off, larger than the quota, damaged.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{key, pack_key, Options, Server, APPEND, FULL};
use vger_storage::testsuite::pattern;
use vger_storage::{Storage, StorageError};

fn quota_server(quota: &str) -> Server {
    Server::start_with(Options {
        tokens: Some(common::default_tokens()),
        args: vec!["--quota".into(), quota.into()],
        ..Options::default()
    })
}

/// Waits until `check` holds, up to 5 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn disconnect_mid_upload_leaves_nothing() {
    let server = Server::start();
    server.client("r", FULL).put("config", b"c").unwrap();
    let body = pattern(1, 4 << 20);
    let hash = blake3::hash(&body).to_hex().to_string();
    let half = pack_key(0, 1);
    for token in [FULL, APPEND] {
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        let head = format!(
            "PUT /r/{half} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             x-vger-blake3: {hash}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body[..body.len() / 2]).unwrap();
        // The server is writing a temporary file by now.
        eventually("a temporary file", || server.files().iter().any(|f| f.contains(".tmp-")));
        drop(stream);
        eventually("no temporary file left", || server.files().iter().all(|f| !f.contains(".tmp-")));
        assert_eq!(server.files(), ["r/config"]);
        assert!(server.client("r", FULL).get(&half).unwrap_err().is_not_found());
    }
}

#[test]
fn body_larger_than_quota_is_refused_before_and_during_upload() {
    let server = quota_server("1MiB");
    let client = server.client("r", APPEND);
    client.put("config", &pattern(1, 300 << 10)).unwrap();
    // Announced too large: refused at once, and the client says why.
    let big = pack_key(0, 2);
    let err = client.put(&big, &pattern(2, 2 << 20)).unwrap_err();
    assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err:?}");
    assert!(err.to_string().contains("quota of 1.0 MiB"), "{err}");
    // Within the quota alone, but not with what the repository holds.
    let err = client.put(&big, &pattern(3, 800 << 10)).unwrap_err();
    assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err:?}");
    // Chunked, with no length announced: refused once the stream passes it.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let body = pattern(4, 3 << 20);
    let hash = blake3::hash(&body).to_hex().to_string();
    let head = format!(
        "PUT /r/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {APPEND}\r\nx-vger-blake3: {hash}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        pack_key(0, 3)
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 << 10) {
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err() {
            break;
        }
        let _ = stream.write_all(chunk);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut reply = Vec::new();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 507"), "{reply}");
    assert!(reply.contains("x-vger-error: quota-exceeded"), "{reply}");
    eventually("no temporary file left", || server.files().iter().all(|f| !f.contains(".tmp-")));
    assert_eq!(server.files(), ["r/config"]);
    // What fits still fits; deleting frees space (full token).
    client.put(&pack_key(0, 4), &pattern(5, 600 << 10)).unwrap();
    let full = server.client("r", FULL);
    full.delete(&pack_key(0, 4)).unwrap();
    full.put(&pack_key(0, 5), &pattern(6, 600 << 10)).unwrap();
    let stats = full.stats().unwrap();
    assert_eq!(stats.quota, Some(1 << 20));
    assert_eq!(stats.size, (300 << 10) + (600 << 10));
}

#[test]
fn token_quota_applies() {
    let tokens = format!("- token: {FULL}\n  permissions: full\n  quota: 100KiB\n");
    let server = Server::start_with(Options { tokens: Some(tokens), ..Options::default() });
    let client = server.client("r", FULL);
    client.put(&key("index", 1), &pattern(1, 60 << 10)).unwrap();
    // Replacing an object counts only the difference.
    client.put(&key("index", 1), &pattern(2, 90 << 10)).unwrap();
    assert!(matches!(client.put(&key("index", 2), &pattern(3, 20 << 10)), Err(StorageError::QuotaExceeded { .. })));
}

#[test]
fn damaged_bodies_and_missing_hashes_are_refused() {
    let server = Server::start();
    let wrong = blake3::hash(b"something else").to_hex().to_string();
    let target = format!("/r/{}", key("snapshots", 1));
    let reply = server.raw("PUT", &target, Some(FULL), &[("x-vger-blake3", &wrong)], b"payload");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.header("x-vger-error").as_deref(), Some("hash-mismatch"));
    assert_eq!(server.raw("PUT", &target, Some(FULL), &[], b"payload").status, 400);
    let reply = server.raw("PUT", &target, Some(FULL), &[("x-vger-blake3", "abc")], b"payload");
    assert_eq!(reply.status, 400);
    assert!(server.files().iter().all(|f| !f.contains("snapshots")), "{:?}", server.files());
}

/// Every object counts at least 4 KiB against a quota, so a client cannot
/// fill the disk's inodes with empty objects for free.
#[test]
fn empty_objects_count_against_the_quota() {
    let server = quota_server("64KiB");
    let client = server.client("r", APPEND);
    for i in 0..16 {
        client.put_new(&key("index", i), b"").unwrap();
    }
    let err = client.put_new(&key("index", 16), b"").unwrap_err();
    assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err:?}");
    let stats = server.client("r", FULL).stats().unwrap();
    assert_eq!((stats.objects, stats.size), (16, 64 << 10));
}
