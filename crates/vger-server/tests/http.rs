//! The HTTP surface: ranges, HEAD, listings, statistics, metrics, logs,
//! token reload.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{key, pack_key, Options, Server, ADMIN, APPEND, FULL, OTHER_REPO, READ};
use vger_protocol::RepoStats;
use vger_storage::testsuite::pattern;
use vger_storage::{Storage, StorageError};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn ranges_and_head() {
    let server = Server::start();
    let data = pattern(1, 1000);
    let pack = pack_key(0, 1);
    let path = format!("/r/{pack}");
    server.client("r", FULL).put(&pack, &data).unwrap();
    let get = |range: &str| server.raw("GET", &path, Some(READ), &[("Range", range)], b"");
    let reply = get("bytes=10-19");
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &data[10..20]);
    assert_eq!(reply.header("content-range").as_deref(), Some("bytes 10-19/1000"));
    let reply = get("bytes=990-");
    assert_eq!((reply.status, reply.body.as_slice()), (206, &data[990..]));
    let reply = get("bytes=-5");
    assert_eq!((reply.status, reply.body.as_slice()), (206, &data[995..]));
    // Past the end: the last byte is clamped (RFC 9110), the first is not.
    let reply = get("bytes=995-2000");
    assert_eq!((reply.status, reply.body.len()), (206, 5));
    for range in ["bytes=1000-1000", "bytes=5000-", "bytes=1000-"] {
        let reply = get(range);
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(reply.header("content-range").as_deref(), Some("bytes */1000"), "{range}");
    }
    assert_eq!(get("bytes=9-3").status, 400);
    let reply = get("bytes=0-999");
    assert_eq!((reply.status, reply.body.len()), (206, 1000));
    let reply = server.raw("GET", &path, Some(READ), &[], b"");
    assert_eq!((reply.status, reply.body.as_slice()), (200, data.as_slice()));

    let reply = server.raw("HEAD", &path, Some(READ), &[], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length").as_deref(), Some("1000"));
    assert!(reply.body.is_empty());
    assert_eq!(server.raw("HEAD", &format!("/r/{}", pack_key(0, 2)), Some(READ), &[], b"").status, 404);
    assert_eq!(server.raw("HEAD", "/r/packs/00", Some(READ), &[], b"").status, 400, "not a repository key");

    let client = server.client("r", READ);
    assert_eq!(client.size(&pack).unwrap(), Some(1000));
    assert!(matches!(client.get_range(&pack, 995, 10), Err(StorageError::RangeOutOfBounds { size: 1000, .. })));
    assert!(matches!(client.get_range(&pack, 1000, 1), Err(StorageError::RangeOutOfBounds { size: 1000, .. })));
}

#[test]
fn listing_1500_keys_with_receipt_times() {
    let server = Server::start();
    let client = server.client("r", APPEND);
    let start = now();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let client = &client;
            scope.spawn(move || {
                for i in (t..1500).step_by(4) {
                    client.put_new(&key("snapshots", i), format!("snap {i}").as_bytes()).unwrap();
                }
            });
        }
    });
    client.put_new("config", b"c").unwrap();
    let mut listed = client.list("snapshots/").unwrap();
    listed.sort();
    assert_eq!(listed.len(), 1500);
    for (i, object) in listed.iter().enumerate() {
        assert_eq!(object.key, key("snapshots", i as u64));
        assert_eq!(object.writer.as_deref(), Some("append"), "the server names who wrote it");
        assert_eq!(object.size, format!("snap {i}").len() as u64);
        let modified = object.modified.unwrap();
        assert!(modified >= start && modified <= now() + 1, "{modified}");
    }
    assert_eq!(client.list("").unwrap().len(), 1501);
    // A partial name: the 16 ids 0x10..=0x1f share all but their last digit.
    let prefix = key("snapshots", 0x10);
    assert_eq!(client.list(&prefix[..prefix.len() - 1]).unwrap().len(), 16);
    assert!(client.list("packs/").unwrap().is_empty());
    assert!(server.client("empty", FULL).list("").unwrap().is_empty());
    // The raw reply is JSON lines ending with a count.
    let reply = server.raw("GET", "/r/?list&prefix=config", Some(READ), &[], b"");
    assert_eq!(reply.status, 200);
    let lines: Vec<serde_json::Value> = reply.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], "config");
    assert_eq!(lines[1]["count"], 1);
}

#[test]
fn stats_and_metrics() {
    let server = Server::start();
    let full = server.client("r", FULL);
    full.put("config", b"cfg").unwrap();
    full.put(&pack_key(0xab, 1), &[1u8; 100]).unwrap();
    full.put(&pack_key(0xcd, 2), &[2u8; 200]).unwrap();
    full.put(&key("snapshots", 1), b"s").unwrap();
    let stats: RepoStats = full.stats().unwrap();
    // Every object counts at least 4 KiB, as against a quota.
    assert_eq!((stats.size, stats.objects, stats.packs, stats.quota), (4 * 4096, 4, 2, None));
    let last = stats.last_backup_at.unwrap();
    assert!(last + 60 > now());
    let _ = full.get(&key("snapshots", 2));
    let reply = server.raw("GET", "/?stats", Some(ADMIN), &[], b"");
    let all: std::collections::BTreeMap<String, RepoStats> = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(all["r"].objects, 4);

    assert_eq!(server.raw("GET", "/metrics", None, &[], b"").status, 401);
    let metrics = server.raw("GET", "/metrics", Some(READ), &[], b"").text();
    for want in [
        "vger_server_requests_total{repo=\"r\",method=\"PUT\",status=\"201\"} 4",
        "vger_server_requests_total{repo=\"r\",method=\"GET\",status=\"404\"} 1",
        "vger_server_received_bytes_total{repo=\"r\"} 304",
        "vger_server_sent_bytes_total{repo=\"r\"}",
        "vger_server_request_duration_seconds_count{repo=\"r\",method=\"PUT\"} 4",
        "# TYPE vger_server_requests_total counter",
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }
    assert_eq!(server.raw("GET", "/health", None, &[], b"").text(), "ok\n");
}

#[test]
fn metrics_can_be_public() {
    let server = Server::start_with(Options {
        tokens: Some(common::default_tokens()),
        args: vec!["--metrics-public".into()],
        ..Options::default()
    });
    assert_eq!(server.raw("GET", "/metrics", None, &[], b"").status, 200);
    assert_eq!(server.raw("GET", "/r/config", None, &[], b"").status, 401);
}

#[test]
fn sighup_reloads_tokens() {
    let server = Server::start();
    let old = server.client("r", FULL);
    old.put("config", b"c").unwrap();
    let new_token = "brand-new-token-0123456789";
    std::fs::write(server.tokens_file(), format!("- token: {new_token}\n  permissions: read\n")).unwrap();
    server.hup();
    let deadline = Instant::now() + Duration::from_secs(5);
    while old.get("config").is_ok() {
        assert!(Instant::now() < deadline, "old token still accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(old.get("config"), Err(StorageError::PermissionDenied { .. })));
    let new = server.client("r", new_token);
    assert_eq!(new.get("config").unwrap(), b"c");
    assert!(matches!(new.put(&key("snapshots", 1), b"x"), Err(StorageError::PermissionDenied { .. })));
    // A broken file keeps the tokens in force.
    std::fs::write(server.tokens_file(), "- token: short\n  permissions: full\n").unwrap();
    server.hup();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log_text().contains("token reload failed") {
        assert!(Instant::now() < deadline, "no reload error logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(new.get("config").unwrap(), b"c");
}

#[test]
fn json_logs() {
    let server = Server::start_with(Options {
        tokens: Some(common::default_tokens()),
        args: vec!["--log-format".into(), "json".into()],
        ..Options::default()
    });
    server.client("r", APPEND).put("config", b"cfg").unwrap();
    let _ = server.raw("GET", "/r/config", Some("wrong-token-0123456789abcdef"), &[], b"");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<serde_json::Value> =
            server.log.lock().unwrap().iter().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
        let put = lines.iter().find(|l| l["method"] == "PUT");
        let refused = lines.iter().find(|l| l["status"] == 401);
        if let (Some(put), Some(refused)) = (put, refused) {
            assert_eq!(put["path"], "/r/config");
            assert_eq!(put["status"], 201);
            assert_eq!(put["bytes_in"], 3);
            assert_eq!(put["repo"], "r");
            assert_eq!(put["token"], "append");
            assert!(put["duration_ms"].is_number());
            assert!(refused["token"].is_null());
            break;
        }
        assert!(Instant::now() < deadline, "request lines missing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!server.log_text().contains(APPEND));
}

#[test]
fn receipt_times_cannot_be_set_by_clients() {
    let server = Server::start();
    let start = now();
    let body = b"planted snapshot claiming 2001";
    let hash = blake3::hash(body).to_hex().to_string();
    let reply = server.raw(
        "PUT",
        &format!("/r/{}", key("snapshots", 7)),
        Some(APPEND),
        &[
            ("x-vger-blake3", &hash),
            ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("Last-Modified", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("X-Mtime", "978307200"),
            ("X-Vger-Modified", "978307200"),
        ],
        body,
    );
    assert_eq!(reply.status, 201);
    let listed = server.client("r", READ).list("snapshots/").unwrap();
    let modified = listed[0].modified.unwrap();
    assert!(modified >= start && modified <= now() + 1, "{modified}");
    let stats = server.client("r", READ).stats().unwrap();
    assert_eq!(stats.last_backup_at, Some(modified));
}

/// Random methods, made-up repositories and requests without a token add
/// no series to `/metrics`; a token limited to one repository sees only
/// that repository's.
#[test]
fn metrics_are_bounded_and_scoped() {
    let server = Server::start();
    server.client("r", FULL).put("config", b"c").unwrap();
    server.client("other", OTHER_REPO).put("config", b"o").unwrap();
    for i in 0..50 {
        assert_eq!(server.raw(&format!("X-RANDOM-{i}"), &format!("/repo{i}/config"), None, &[], b"").status, 401);
        assert_eq!(server.raw(&format!("METHOD{i}"), "/r/config", Some(READ), &[], b"").status, 405);
        assert_eq!(server.raw("GET", &format!("/nothere{i}/config"), Some(FULL), &[], b"").status, 404);
    }
    let all = server.raw("GET", "/metrics", Some(ADMIN), &[], b"").text();
    for absent in ["RANDOM", "METHOD", "nothere", "repo1"] {
        assert!(!all.contains(absent), "{absent} in\n{all}");
    }
    for want in [
        "vger_server_unauthenticated_requests_total 50",
        "vger_server_requests_total{repo=\"r\",method=\"OTHER\",status=\"405\"} 50",
        "vger_server_requests_total{repo=\"-\",method=\"GET\",status=\"404\"} 50",
    ] {
        assert!(all.contains(want), "{want} missing from\n{all}");
    }
    let series = all.lines().filter(|l| !l.starts_with('#')).count();
    assert!(series < 30, "{series} series:\n{all}");
    let theirs = server.raw("GET", "/metrics", Some(OTHER_REPO), &[], b"").text();
    assert!(theirs.contains("repo=\"other\""), "{theirs}");
    for absent in ["repo=\"r\"", "repo=\"-\"", "unauthenticated"] {
        assert!(!theirs.contains(absent), "{absent} shown to a token of another repository:\n{theirs}");
    }
}
