//! Up to `connections` idle SFTP sessions kept for reuse. A call takes one
//! (or opens a new one), and gives it back only if it did not fail in a way
//! that may have broken it; a broken session is dropped and the next call
//! opens a fresh one. The connection-limit layer bounds how many are busy.
//!
//! Opening a session takes about fifteen round trips (key exchange,
//! authentication, two SFTP channels): [`Pool::prewarm`] opens the others
//! in the background once the first works, so that on a link with latency
//! the first parallel uploads do not wait for them.

use std::sync::{Arc, Mutex, PoisonError};

use super::connection::{ConnectParams, Connection};
use crate::StorageError;

pub(super) struct Pool {
    params: ConnectParams,
    idle: Arc<Mutex<Vec<Connection>>>,
    keep: usize,
}

impl Pool {
    pub fn new(params: ConnectParams, keep: usize) -> Self {
        Pool { params, idle: Arc::new(Mutex::new(Vec::new())), keep: keep.max(1) }
    }

    /// Runs `op` on a pooled session. `Err(e)` with `e.is_transient()` is
    /// taken to mean the session may be broken: it is not reused.
    pub fn with<T>(&self, op: impl FnOnce(&Connection) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => Connection::open(&self.params)?,
        };
        let result = op(&connection);
        if !matches!(&result, Err(e) if e.is_transient()) {
            give_back(&self.idle, self.keep, connection);
        }
        result
    }

    /// Opens sessions up to the pool's size in background threads, all at
    /// once. A failure is ignored: the call that needs a session then opens
    /// its own and reports the error.
    pub fn prewarm(&self) {
        let idle_now = self.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
        for _ in idle_now..self.keep {
            let (params, idle, keep) = (self.params.clone(), Arc::clone(&self.idle), self.keep);
            let spawned = std::thread::Builder::new().name("sftp-connect".into()).spawn(move || {
                if let Ok(connection) = Connection::open(&params) {
                    give_back(&idle, keep, connection);
                }
            });
            if spawned.is_err() {
                return; // no threads to spare: sessions open on demand
            }
        }
    }
}

fn give_back(idle: &Mutex<Vec<Connection>>, keep: usize, connection: Connection) {
    let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
    if idle.len() < keep {
        idle.push(connection);
    }
}
