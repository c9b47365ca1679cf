use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

use crate::aead::NONCE_LEN;
use crate::CryptoError;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Random)
}

/// Nonces drawn per request to the operating system. A backup seals one
/// object per new chunk, and a tree of small files makes tens of
/// thousands of them: one system call per nonce showed in its profile.
const POOL_NONCES: usize = 256;

/// Random bytes from the operating system, handed out as nonces, each
/// byte once. The nonces are exactly as random as before (straight from
/// the OS CSPRNG, 96 bits each), only fetched in bulk. The pool is per
/// thread, so no lock is taken; a process that forked without `exec`
/// would share the rest of its pool with its child (vger never does so:
/// it runs commands through `exec`).
struct NoncePool {
    bytes: [u8; POOL_NONCES * NONCE_LEN],
    used: usize,
}

thread_local! {
    static NONCES: RefCell<NoncePool> =
        const { RefCell::new(NoncePool { bytes: [0; POOL_NONCES * NONCE_LEN], used: POOL_NONCES * NONCE_LEN }) };
}

/// A fresh random nonce.
pub(crate) fn random_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    NONCES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used + NONCE_LEN > pool.bytes.len() {
            random_bytes(&mut pool.bytes)?;
            pool.used = 0;
        }
        let at = pool.used;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&pool.bytes[at..at + NONCE_LEN]);
        // Overwritten so that no copy of a nonce handed out stays behind
        // to be handed out again by mistake.
        pool.bytes[at..at + NONCE_LEN].fill(0);
        pool.used = at + NONCE_LEN;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use super::*;

    /// Nonces across several refills of the pool, and from two threads,
    /// are all different (96 random bits: a repeat means a bug).
    #[test]
    fn nonces_do_not_repeat() {
        let draw = || (0..3 * POOL_NONCES + 7).map(|_| random_nonce().unwrap()).collect::<Vec<_>>();
        let other = std::thread::spawn(draw).join().unwrap();
        let mut all = draw();
        all.extend(other);
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(!all.contains(&[0u8; NONCE_LEN]));
    }
}
