//! Unpredictable numbers for jitter and temporary names, without a
//! dependency: the standard library seeds `RandomState` from the OS.

use std::hash::{BuildHasher, Hasher};

/// A fresh random 64-bit number (not for cryptographic use).
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// A uniformly distributed number in `0..=max`.
pub(crate) fn random_up_to(max: u64) -> u64 {
    match max.checked_add(1) {
        Some(range) => random_u64() % range,
        None => random_u64(),
    }
}
