//! The retry, connection-limit and bandwidth layers, over a local
//! directory. The retry tests wrap it in a fault injector: a test double
//! for the retry logic, not a stand-in for a server (the real servers'
//! faults are in tests/sftp.rs).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vger_storage::layers::{Bandwidth, ConnectionLimit, RetryingStorage, ThrottledStorage};
use vger_storage::testsuite::pattern;
use vger_storage::{BackendOptions, LocalStorage, ObjectInfo, RetryPolicy, Storage, StorageError};

/// Fails the first `failures` calls with the error `make` builds, then
/// forwards. `put_new` can also be made to succeed and then report a
/// transient error, like a reply lost on the way back.
#[derive(Debug)]
struct FaultInjector {
    inner: LocalStorage,
    failures: AtomicUsize,
    calls: AtomicUsize,
    make: fn() -> StorageError,
    lose_put_new_reply: bool,
}

impl FaultInjector {
    fn new(dir: &std::path::Path, failures: usize, make: fn() -> StorageError) -> Self {
        FaultInjector {
            inner: LocalStorage::open(dir).unwrap(),
            failures: AtomicUsize::new(failures),
            calls: AtomicUsize::new(0),
            make,
            lose_put_new_reply: false,
        }
    }

    fn fault(&self) -> Result<(), StorageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match left {
            Ok(_) => Err((self.make)()),
            Err(_) => Ok(()),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Storage for FaultInjector {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.fault()?;
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        self.fault()?;
        self.inner.get_range(key, offset, len)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.fault()?;
        self.inner.put(key, data)
    }
    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        if self.lose_put_new_reply && self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.put_new(key, data)?;
            return Err(StorageError::Transient { detail: "connection reset after the request".into() });
        }
        self.fault()?;
        self.inner.put_new(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.fault()?;
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.fault()?;
        self.inner.list(prefix)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.fault()?;
        self.inner.size(key)
    }
    fn describe(&self) -> String {
        "fault injector".into()
    }
}

fn transient() -> StorageError {
    StorageError::Transient { detail: "HTTP 503 SlowDown".into() }
}

fn quick(max_retries: u32) -> RetryPolicy {
    RetryPolicy { max_retries, delay: Duration::from_millis(2), max_delay: Duration::from_millis(10) }
}

fn retrying(faults: &Arc<FaultInjector>, policy: RetryPolicy) -> RetryingStorage {
    RetryingStorage::new(Arc::clone(faults) as Arc<dyn Storage>, policy)
}

#[test]
fn transient_errors_are_retried_until_success() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new(dir.path(), 3, transient));
    let storage = retrying(&faults, quick(5));
    storage.put("config", b"x").unwrap();
    assert_eq!(faults.calls(), 4);
    assert_eq!(storage.get("config").unwrap(), b"x");
}

#[test]
fn retries_stop_at_the_limit_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new(dir.path(), 100, transient));
    let err = retrying(&faults, quick(4)).get("config").unwrap_err();
    assert_eq!(faults.calls(), 5, "one try and four retries");
    assert!(err.to_string().contains("gave up after 4 retries"), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
}

#[test]
fn permanent_errors_are_not_retried() {
    let denied = || StorageError::PermissionDenied { key: "config".into(), detail: "HTTP 403".into() };
    let missing = || StorageError::NotFound { key: "config".into() };
    for make in [denied as fn() -> StorageError, missing] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(FaultInjector::new(dir.path(), 1, make));
        let err = retrying(&faults, quick(5)).get("config").unwrap_err();
        assert_eq!(faults.calls(), 1, "{err:?}");
        assert!(!err.is_transient());
    }
}

#[test]
fn backoff_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new(dir.path(), 100, transient));
    let policy = RetryPolicy { max_retries: 6, delay: Duration::from_millis(20), max_delay: Duration::from_millis(50) };
    let started = Instant::now();
    let _ = retrying(&faults, policy).get("k");
    // At most 20 + 40 + 50 * 4 = 260 ms of waits, plus scheduling slack.
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
    assert_eq!(faults.calls(), 7);
}

#[test]
fn put_new_whose_reply_was_lost_succeeds_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut injector = FaultInjector::new(dir.path(), 0, transient);
    injector.lose_put_new_reply = true;
    let faults = Arc::new(injector);
    retrying(&faults, quick(3)).put_new("locks/l", b"mine").unwrap();
    // Someone else's object is still AlreadyExists.
    let other = Arc::new(FaultInjector { lose_put_new_reply: true, ..FaultInjector::new(dir.path(), 0, transient) });
    let err = retrying(&other, quick(3)).put_new("locks/l", b"theirs").unwrap_err();
    assert!(matches!(err, StorageError::AlreadyExists { .. }), "{err:?}");
}

/// Records the most calls it saw running at once.
#[derive(Debug, Default)]
struct Concurrency {
    now: Mutex<(usize, usize)>,
}

impl Storage for Concurrency {
    fn get(&self, _: &str) -> Result<Vec<u8>, StorageError> {
        {
            let mut n = self.now.lock().unwrap();
            n.0 += 1;
            n.1 = n.1.max(n.0);
        }
        std::thread::sleep(Duration::from_millis(10));
        self.now.lock().unwrap().0 -= 1;
        Ok(Vec::new())
    }
    fn get_range(&self, _: &str, _: u64, _: u64) -> Result<Vec<u8>, StorageError> {
        Ok(Vec::new())
    }
    fn put(&self, _: &str, _: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }
    fn put_new(&self, _: &str, _: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }
    fn delete(&self, _: &str) -> Result<(), StorageError> {
        Ok(())
    }
    fn list(&self, _: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(Vec::new())
    }
    fn size(&self, _: &str) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
    fn describe(&self) -> String {
        "concurrency probe".into()
    }
}

#[test]
fn connection_limit_bounds_calls_in_flight() {
    let probe = Arc::new(Concurrency::default());
    let limited = ConnectionLimit::new(Arc::clone(&probe) as Arc<dyn Storage>, 3);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..5 {
                    limited.get("k").unwrap();
                }
            });
        }
    });
    assert_eq!(probe.now.lock().unwrap().1, 3);
}

const MIB: u64 = 1 << 20;

/// Moves 4 MiB objects with `threads` threads for about `seconds` and
/// returns the achieved aggregate rate in bytes per second.
fn measure(storage: &dyn Storage, threads: usize, seconds: f64, upload: bool) -> f64 {
    let data = pattern(1, 4 * MIB as usize);
    if !upload {
        for t in 0..threads {
            storage.put(&format!("bw/{t}"), &data).unwrap();
        }
    }
    let moved = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (data, moved) = (&data, &moved);
            s.spawn(move || {
                let key = format!("bw/{t}");
                while started.elapsed().as_secs_f64() < seconds {
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
    moved.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64()
}

fn assert_within(rate: f64, cap: u64, what: &str) {
    let ratio = rate / cap as f64;
    eprintln!("{what}: {:.2} MiB/s for a cap of {} MiB/s ({:.1}%)", rate / MIB as f64, cap / MIB, ratio * 100.0);
    assert!((0.85..=1.15).contains(&ratio), "{what}: achieved {:.2} MiB/s, cap {} MiB/s", rate / MIB as f64, cap / MIB);
}

/// The caps are one budget for the repository: four connections
/// together stay within 15% of it, for uploads and downloads alike.
#[test]
fn bandwidth_caps_hold_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 8 * MIB;
    let opts = BackendOptions {
        upload_bytes_per_sec: Some(cap),
        download_bytes_per_sec: Some(cap),
        ..BackendOptions::default()
    };
    // The layers a remote repository gets (open_url leaves local disks unthrottled).
    let storage = vger_storage::layers::wrap(Arc::new(LocalStorage::open(dir.path()).unwrap()), &opts);
    assert_within(measure(storage.as_ref(), 4, 5.0, true), cap, "upload, 4 threads");
    assert_within(measure(storage.as_ref(), 4, 5.0, false), cap, "download, 4 threads");
}

#[test]
fn a_small_cap_is_shared_by_two_storages() {
    // Two layers on one budget, as two repositories opened by one process.
    let dir = tempfile::tempdir().unwrap();
    let budget = Bandwidth::new(4 * MIB);
    let local = || Arc::new(LocalStorage::open(dir.path()).unwrap()) as Arc<dyn Storage>;
    let a = ThrottledStorage::new(local(), Some(Arc::clone(&budget)), None);
    let b = ThrottledStorage::new(local(), Some(Arc::clone(&budget)), None);
    let moved = AtomicUsize::new(0);
    let data = pattern(2, 512 << 10);
    let started = Instant::now();
    std::thread::scope(|s| {
        for (t, storage) in [&a, &b, &a, &b].into_iter().enumerate() {
            let (data, moved) = (&data, &moved);
            s.spawn(move || {
                while started.elapsed() < Duration::from_secs(3) {
                    storage.put(&format!("k{t}"), data).unwrap();
                    moved.fetch_add(data.len(), Ordering::SeqCst);
                }
            });
        }
    });
    assert_within(
        moved.load(Ordering::SeqCst) as f64 / started.elapsed().as_secs_f64(),
        4 * MIB,
        "two storages, one budget",
    );
}
