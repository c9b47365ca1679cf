//! S3Storage against a real S3 server (`scripts/servers/s3-start`): the
//! shared backend suite through every layer, then what only S3 has
//! (multipart, soft delete, signatures).
//!
//! Needs VGER_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY. Without
//! them the tests are skipped with a note, except under CI, where they fail
//! so that a missing server cannot pass unnoticed.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use vger_storage::s3::{S3Location, MULTIPART_THRESHOLD};
use vger_storage::testsuite::{pattern, Fixture};
use vger_storage::{open_url, BackendOptions, S3Storage, Storage, StorageError};

struct Server {
    endpoint: String,
    bucket: String,
    kind: String,
    opts: BackendOptions,
}

/// The configured server; `None` (after a note) to skip; panics under CI.
fn server() -> Option<Server> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("VGER_TEST_S3_ENDPOINT") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but VGER_TEST_S3_ENDPOINT is not: start the server with scripts/servers/s3-start");
        }
        eprintln!("note: skipping S3 tests: VGER_TEST_S3_ENDPOINT not set (see scripts/servers/s3-start)");
        return None;
    };
    let opts = BackendOptions {
        access_key_id: var("VGER_TEST_S3_ACCESS_KEY"),
        secret_access_key: var("VGER_TEST_S3_SECRET_KEY"),
        allow_insecure_http: true,
        connections: 8,
        ..BackendOptions::default()
    };
    Some(Server {
        endpoint,
        bucket: var("VGER_TEST_S3_BUCKET").unwrap_or_else(|| "vger-test".into()),
        kind: var("VGER_TEST_S3_SERVER").unwrap_or_default(),
        opts,
    })
}

impl Server {
    fn url(&self, prefix: &str) -> String {
        let host = self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, h)| h);
        let scheme = if self.endpoint.starts_with("https://") { "s3" } else { "s3+http" };
        format!("{scheme}://{host}/{}/{prefix}", self.bucket)
    }
}

/// A unique prefix, emptied when the check ends.
struct S3Fixture {
    storage: Arc<dyn Storage>,
}

impl Fixture for S3Fixture {
    fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }
}

impl Drop for S3Fixture {
    fn drop(&mut self) {
        if let Ok(objects) = self.storage.list("") {
            for object in objects {
                let _ = self.storage.delete(&object.key);
            }
        }
    }
}

fn unique_prefix(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{what}-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn fresh_on(server: &Server) -> S3Fixture {
    let storage = open_url(&server.url(&unique_prefix("suite")), &server.opts, true).unwrap();
    S3Fixture { storage }
}

fn fresh() -> S3Fixture {
    fresh_on(&server().unwrap())
}

// `return` in the block leaves the generated #[test] fn: the skip.
vger_storage::storage_test_suite!({
    if server().is_none() {
        return;
    }
    fresh
});

#[test]
fn multipart_upload_round_trip() {
    let Some(server) = server() else { return };
    let f = fresh_on(&server);
    let data = pattern(11, MULTIPART_THRESHOLD + (5 << 20) + 123);
    f.storage.put("packs/aa/big", &data).unwrap();
    assert_eq!(f.storage.size("packs/aa/big").unwrap(), Some(data.len() as u64));
    assert!(f.storage.get("packs/aa/big").unwrap() == data);
    let middle = f.storage.get_range("packs/aa/big", (16 << 20) - 10, 20).unwrap();
    assert_eq!(middle, data[(16 << 20) - 10..(16 << 20) + 10]);
}

#[test]
fn soft_delete_keeps_a_copy_under_trash() {
    let Some(server) = server() else { return };
    let prefix = unique_prefix("soft");
    let opts = BackendOptions { s3_soft_delete: true, ..server.opts.clone() };
    let storage = open_url(&server.url(&prefix), &opts, true).unwrap();
    storage.put("packs/ab/p", b"pack bytes").unwrap();
    storage.delete("packs/ab/p").unwrap();
    storage.delete("packs/ab/never").unwrap();
    assert!(storage.get("packs/ab/p").unwrap_err().is_not_found());
    assert!(storage.list("").unwrap().is_empty(), ".trash/ must not show in listings");
    let endpoint = url::Url::parse(&format!("{}/", server.endpoint)).unwrap();
    let location = S3Location { endpoint, bucket: server.bucket.clone(), prefix: format!("{prefix}/.trash") };
    let trash = S3Storage::new(&location, &server.opts).unwrap();
    assert_eq!(trash.get("packs/ab/p").unwrap(), b"pack bytes");
    trash.delete("packs/ab/p").unwrap();
}

#[test]
fn wrong_secret_is_permission_denied_where_signatures_are_checked() {
    let Some(server) = server() else { return };
    if server.kind == "moto" {
        eprintln!("note: moto does not verify signatures; run with VGER_TEST_S3_SERVER=s3s for this check");
        return;
    }
    let opts = BackendOptions { secret_access_key: Some("wrong".into()), ..server.opts.clone() };
    let storage = open_url(&server.url("denied"), &opts, true).unwrap();
    let err = storage.put("config", b"x").unwrap_err();
    assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("secret_access_key"), "{err}");
}

#[test]
fn missing_bucket_is_a_clear_error() {
    let Some(server) = server() else { return };
    let storage =
        open_url(&server.url("x").replace(&server.bucket, "no-such-bucket-vger"), &server.opts, true).unwrap();
    let err = storage.get("config").unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    // moto says NoSuchBucket; s3s-fs says NoSuchKey.
    assert!(err.to_string().contains("bucket") || err.is_not_found(), "{err}");
}

/// Loopback throughput of 32 MiB puts and gets (run with --ignored --nocapture).
#[test]
#[ignore = "benchmark"]
fn throughput_32mib_objects() {
    let Some(server) = server() else { return };
    let f = fresh_on(&server);
    let objects: Vec<Vec<u8>> = (0..8).map(|i| pattern(i, 32 << 20)).collect();
    let total = objects.iter().map(Vec::len).sum::<usize>() as f64;
    let started = Instant::now();
    std::thread::scope(|s| {
        for (i, data) in objects.iter().enumerate() {
            let storage = &f.storage;
            s.spawn(move || storage.put(&format!("packs/{i:02}/p"), data).unwrap());
        }
    });
    let put = total / started.elapsed().as_secs_f64() / 1e6;
    let started = Instant::now();
    std::thread::scope(|s| {
        for i in 0..objects.len() {
            let storage = &f.storage;
            s.spawn(move || assert_eq!(storage.get(&format!("packs/{i:02}/p")).unwrap().len(), 32 << 20));
        }
    });
    let get = total / started.elapsed().as_secs_f64() / 1e6;
    println!("S3 ({}) 256 MiB in 32 MiB objects, 8 threads: put {put:.0} MB/s, get {get:.0} MB/s", server.kind);
}

/// The process-wide caps hold over S3 too: 4 threads moving 4 MiB objects
/// for about 5 s never exceed the cap by more than 15%. The lower bound is
/// loose here: moto shares two cores with the other tests of this binary,
/// and a server slower than the cap is not the limiter's fault (the exact
/// two-sided check runs on a local directory in tests/layers.rs).
#[test]
fn bandwidth_caps_hold_over_s3() {
    let Some(server) = server() else { return };
    const MIB: f64 = (1 << 20) as f64;
    let cap = 4u64 << 20;
    let opts =
        BackendOptions { upload_bytes_per_sec: Some(cap), download_bytes_per_sec: Some(cap), ..server.opts.clone() };
    let f = S3Fixture { storage: open_url(&server.url(&unique_prefix("bandwidth")), &opts, true).unwrap() };
    let data = pattern(3, 4 << 20);
    for upload in [true, false] {
        let moved = AtomicUsize::new(0);
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (storage, data, moved) = (&f.storage, &data, &moved);
                s.spawn(move || {
                    let key = format!("bw/{t}");
                    while started.elapsed().as_secs_f64() < 5.0 {
                        let n = if upload {
                            storage.put(&key, data).map(|()| data.len())
                        } else {
                            storage.get(&key).map(|d| d.len())
                        };
                        moved.fetch_add(n.unwrap(), Ordering::SeqCst);
                    }
                });
            }
        });
        let rate = moved.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64();
        let ratio = rate / cap as f64;
        let what = if upload { "upload" } else { "download" };
        eprintln!("S3 {what}: {:.2} MiB/s for a cap of 4 MiB/s", rate / MIB);
        assert!((0.5..=1.15).contains(&ratio), "{what}: achieved {:.2} MiB/s", rate / MIB);
    }
}
