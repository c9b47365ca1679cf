//! Up to `connections` idle SFTP sessions kept for reuse. A call takes one
//! (or opens a new one), and gives it back only if it did not fail in a way
//! that may have broken it; a broken session is dropped and the next call
//! opens a fresh one. The connection-limit layer bounds how many are busy.

use std::sync::{Mutex, PoisonError};

use super::connection::{ConnectParams, Connection};
use crate::StorageError;

pub(super) struct Pool {
    params: ConnectParams,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl Pool {
    pub fn new(params: ConnectParams, keep: usize) -> Self {
        Pool { params, idle: Mutex::new(Vec::new()), keep: keep.max(1) }
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
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.keep {
                idle.push(connection);
            }
        }
        result
    }
}
