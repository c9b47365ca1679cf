//! Repository locks with leases (docs/format.md, section 11).
//!
//! Backups (and restores and checks) take a *shared* lock; prune, compact,
//! snapshot delete, repair and repository delete take an *exclusive* one.
//! A lock is an object under `locks/` that its holder rewrites every quarter
//! of the lease (the heartbeat). A lock whose heartbeat is older than the
//! lease, or whose holder is a dead process on this host, is stale and is
//! removed by whoever finds it.
//!
//! A holder whose heartbeat could not be written for most of a lease (a
//! laptop that slept) may have been judged stale, and maintenance may have
//! run meanwhile: [`RepoLock::check_alive`] then fails, and a backup calls
//! it before writing any index segment or snapshot, so it never commits
//! against a repository that changed under it. Our own lock is confirmed by
//! reading it back directly, never by a listing (object stores list late).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use vger_crypto::{Envelope, ObjectType};
use vger_format::id::{random_id, LOCKS_PREFIX};
use vger_format::object::{open_object, seal_object};
use vger_storage::{Storage, StorageError};

use crate::parallel::lock as mlock;
use crate::repository::{hostname, Repository};
use crate::{EngineError, Result};

/// Default lease; `VGER_LOCK_LEASE_SECS` overrides it (tests use seconds).
const DEFAULT_LEASE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// What a lock object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub version: u32,
    pub kind: LockKind,
    pub hostname: String,
    pub pid: u32,
    pub command: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last heartbeat.
    pub heartbeat: u64,
    pub lease_secs: u64,
}

impl LockRecord {
    /// Stale: its heartbeat is older than its lease, or it belongs to a
    /// process on this host that no longer exists.
    pub fn is_stale(&self, now: u64) -> bool {
        if now.saturating_sub(self.heartbeat) > self.lease_secs {
            return true;
        }
        self.hostname == hostname() && !process_alive(self.pid)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} lock held by `{}` (pid {} on {}) since {}",
            match self.kind {
                LockKind::Shared => "shared",
                LockKind::Exclusive => "exclusive",
            },
            self.command,
            self.pid,
            self.hostname,
            chrono::DateTime::from_timestamp(self.created as i64, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
        )
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn lease() -> Duration {
    std::env::var("VGER_LOCK_LEASE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s >= 2)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LEASE)
}

fn read_lock(storage: &dyn Storage, envelope: &Envelope, key: &str) -> Result<LockRecord> {
    let bytes = storage.get(key)?;
    Ok(open_object(envelope, ObjectType::Lock, key.as_bytes(), "lock", bytes)?)
}

fn write_lock(storage: &dyn Storage, envelope: &Envelope, key: &str, record: &LockRecord, new: bool) -> Result<()> {
    let bytes = seal_object(envelope, ObjectType::Lock, key.as_bytes(), "lock", record)?;
    if new {
        storage.put_new(key, &bytes)?;
    } else {
        storage.put(key, &bytes)?;
    }
    Ok(())
}

/// Every lock in the repository. Unreadable lock objects are returned as
/// `None` records (they may be half-written by a crashed holder).
pub fn list_locks(repo: &Repository) -> Result<Vec<(String, Option<LockRecord>)>> {
    let mut out = Vec::new();
    for obj in repo.storage().list(LOCKS_PREFIX)? {
        match read_lock(repo.storage().as_ref(), repo.envelope(), &obj.key) {
            Ok(r) => out.push((obj.key, Some(r))),
            Err(EngineError::Storage(StorageError::NotFound { .. })) => {}
            Err(_) => out.push((obj.key, None)),
        }
    }
    Ok(out)
}

/// Overwrites a lock object (tests simulate dead or stale holders with it).
#[doc(hidden)]
pub fn write_lock_for_tests(repo: &Repository, key: &str, record: &LockRecord) -> Result<()> {
    write_lock(repo.storage().as_ref(), repo.envelope(), key, record, false)
}

/// Removes every lock, stale or not (for a user who knows no holder is
/// left).
pub fn break_locks(repo: &Repository) -> Result<usize> {
    let locks = list_locks(repo)?;
    for (key, _) in &locks {
        repo.storage().delete(key)?;
    }
    Ok(locks.len())
}

struct Heartbeat {
    stop: Mutex<bool>,
    wake: Condvar,
    lapsed: AtomicBool,
    /// The heartbeat found our lock object gone (someone broke it): it
    /// never writes it again, and [`RepoLock::check_alive`] fails from
    /// then on, even if a later write or another client recreated it.
    removed: AtomicBool,
}

/// A held lock; released on drop.
pub struct RepoLock {
    storage: Arc<dyn Storage>,
    envelope: Arc<Envelope>,
    key: String,
    lease: Duration,
    heartbeat: Arc<Heartbeat>,
    last_ok: Arc<Mutex<SystemTime>>,
    thread: Option<JoinHandle<()>>,
    released: bool,
}

impl RepoLock {
    pub fn shared(repo: &Repository, command: &str) -> Result<Self> {
        Self::acquire(repo, LockKind::Shared, command)
    }

    pub fn exclusive(repo: &Repository, command: &str) -> Result<Self> {
        Self::acquire(repo, LockKind::Exclusive, command)
    }

    fn acquire(repo: &Repository, kind: LockKind, command: &str) -> Result<Self> {
        let lease = lease();
        let now = unix_now();
        let record = LockRecord {
            version: 1,
            kind,
            hostname: hostname(),
            pid: std::process::id(),
            command: command.to_string(),
            created: now,
            heartbeat: now,
            lease_secs: lease.as_secs(),
        };
        let key = format!("{LOCKS_PREFIX}{}", hex::encode(random_id()?));
        let storage = repo.storage().clone();
        let envelope = repo.envelope().clone();
        write_lock(storage.as_ref(), &envelope, &key, &record, true)?;
        let mut lock = RepoLock {
            storage,
            envelope,
            key,
            lease,
            heartbeat: Arc::new(Heartbeat {
                stop: Mutex::new(false),
                wake: Condvar::new(),
                lapsed: AtomicBool::new(false),
                removed: AtomicBool::new(false),
            }),
            last_ok: Arc::new(Mutex::new(SystemTime::now())),
            thread: None,
            released: false,
        };
        // Now look at everyone else's locks (ours is already visible to them).
        if let Err(e) = lock.check_conflicts(repo, kind) {
            lock.release_now();
            return Err(e);
        }
        tracing::info!(lock = %lock.key, ?kind, lease_secs = lease.as_secs(), "repository lock taken for `{command}`");
        lock.start_heartbeat(record);
        Ok(lock)
    }

    fn check_conflicts(&self, repo: &Repository, kind: LockKind) -> Result<()> {
        let now = unix_now();
        for (key, record) in list_locks(repo)? {
            if key == self.key {
                continue;
            }
            let Some(record) = record else {
                // Unreadable lock: a holder that crashed while writing it,
                // or garbage. Treat it as held so nothing is lost; break-lock clears it.
                return Err(EngineError::LockUnreadable { key });
            };
            if record.is_stale(now) {
                tracing::info!(lock = %key, "removing a stale lock: {}", record.describe());
                let _ = repo.storage().delete(&key);
                continue;
            }
            let conflict = kind == LockKind::Exclusive || record.kind == LockKind::Exclusive;
            if conflict {
                return Err(EngineError::Locked { holder: Box::new(record), wanted: kind });
            }
        }
        Ok(())
    }

    fn start_heartbeat(&mut self, mut record: LockRecord) {
        let (storage, envelope, key) = (self.storage.clone(), self.envelope.clone(), self.key.clone());
        let (hb, last_ok, lease) = (self.heartbeat.clone(), self.last_ok.clone(), self.lease);
        let every = lease / 4;
        self.thread = Some(std::thread::spawn(move || loop {
            {
                // `wait_timeout_while` checks the flag before sleeping, so a
                // stop requested before we got here is not missed.
                let stop = mlock(&hb.stop);
                let (stop, _) =
                    hb.wake.wait_timeout_while(stop, every, |stop| !*stop).unwrap_or_else(|p| p.into_inner());
                if *stop {
                    return;
                }
            }
            let since = SystemTime::now().duration_since(*mlock(&last_ok)).unwrap_or_default();
            if since > lease * 3 / 4 {
                // We were away long enough to be judged stale: never
                // pretend otherwise by refreshing the lock.
                hb.lapsed.store(true, Ordering::SeqCst);
                return;
            }
            // A plain write would bring a broken lock back to life, and the
            // maintenance that broke it may be running now: refresh only a
            // lock that is still there. (A break landing between this read
            // and the write below is caught by the next beat and by
            // `check_alive`, which a writer calls before it commits.)
            // Unreachable storage: the write below fails too and the lease
            // runs down as for any outage.
            if let Err(StorageError::NotFound { .. }) = storage.get(&key) {
                tracing::warn!(lock = %key, "our repository lock was removed by someone else; not renewing it");
                hb.removed.store(true, Ordering::SeqCst);
                return;
            }
            record.heartbeat = unix_now();
            if write_lock(storage.as_ref(), &envelope, &key, &record, false).is_ok() {
                *mlock(&last_ok) = SystemTime::now();
            }
        }));
    }

    /// Fails if the lease may have lapsed or our lock object is gone
    /// (someone broke it). Call before committing anything.
    pub fn check_alive(&self) -> Result<()> {
        let since = SystemTime::now().duration_since(*mlock(&self.last_ok)).unwrap_or_default();
        if self.heartbeat.lapsed.load(Ordering::SeqCst) || since > self.lease * 3 / 4 {
            return Err(EngineError::LockLapsed { seconds: since.as_secs(), lease_secs: self.lease.as_secs() });
        }
        if self.heartbeat.removed.load(Ordering::SeqCst) {
            return Err(EngineError::LockRemoved);
        }
        match self.storage.get(&self.key) {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound { .. }) => Err(EngineError::LockRemoved),
            Err(e) => Err(e.into()),
        }
    }

    fn release_now(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        *mlock(&self.heartbeat.stop) = true;
        self.heartbeat.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match self.storage.delete(&self.key) {
            Ok(()) => tracing::debug!(lock = %self.key, "repository lock released"),
            Err(e) => tracing::info!(lock = %self.key, "could not remove our lock (it expires with its lease): {e}"),
        }
    }

    pub fn release(mut self) {
        self.release_now();
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        self.release_now();
    }
}
