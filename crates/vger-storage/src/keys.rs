//! The rules for storage keys, checked in this one place by every backend.
//!
//! Keys can come from hostile data (a listing of a tampered repository, a
//! malicious server), so this check is the first defence against path
//! traversal: a key that passes can be joined to a directory or a URL
//! prefix without escaping it.
//!
//! A key is `/`-separated components, each non-empty and made only of
//! `[A-Za-z0-9._-]`, at most [`MAX_KEY_LEN`] bytes in all. A component may
//! not start with `.`: that rules out `.` and `..` and reserves dot-names
//! for backend bookkeeping (the local backend's `.tmp-*` files), so that a
//! key can never collide with them.

use crate::StorageError;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Most objects one listing may return: 10 million objects is 300 TiB of
/// 32 MiB packs. A server that lists more is refused rather than allowed
/// to fill the client's memory.
pub const MAX_LISTED_OBJECTS: usize = 10_000_000;

/// The most bytes an object under `key` can hold in a vger repository
/// (docs/format.md), and so the most a read of it may receive: `config`,
/// key slots and locks are a few hundred bytes; index segments and
/// snapshots are metadata objects, compressed from at most 256 MiB; packs
/// are closed past their target size (at most 1 GiB) with one more chunk
/// (at most 16 MiB) and a trailer (metadata), and other keys (no vger
/// object, but the trait is generic) get the same cap.
pub fn max_object_size(key: &str) -> u64 {
    match key.split('/').next() {
        Some("config" | "keys" | "locks") => 1 << 20,
        Some("index" | "snapshots") => 272 << 20,
        _ => 3 << 29,
    }
}

/// Checks an object key such as `packs/ab/ab12...`.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(StorageError::invalid_key(key, "the key is empty"));
    }
    check_length(key)?;
    key.split('/').try_for_each(|part| check_component(key, part))
}

/// Checks a listing prefix: empty (everything), a directory ending with
/// `/` (`packs/`), or a key-like string whose last component may be partial
/// (`packs/a`).
pub fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_length(prefix)?;
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() {
        return Err(StorageError::invalid_key(prefix, "a prefix may not start with `/`"));
    }
    body.split('/').try_for_each(|part| check_component(prefix, part))
}

fn check_length(key: &str) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::invalid_key(key, "the key is longer than 512 bytes"));
    }
    Ok(())
}

fn check_component(key: &str, part: &str) -> Result<(), StorageError> {
    if part.is_empty() {
        return Err(StorageError::invalid_key(key, "empty path component (leading, trailing or doubled `/`)"));
    }
    if part.starts_with('.') {
        return Err(StorageError::invalid_key(
            key,
            "a path component may not start with `.` (this also refuses `.` and `..`)",
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !part.bytes().all(allowed) {
        return Err(StorageError::invalid_key(key, "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_repository_keys() {
        for key in ["config", "keys/0123abcd", "packs/ab/ab0123", "index/x", "locks/a.b_c-d"] {
            assert!(validate_key(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn refuses_hostile_keys() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for key in [
            "",
            "/abs",
            "a/",
            "a//b",
            ".",
            "..",
            "../x",
            "a/./b",
            "a/../b",
            "x/..",
            "%2e%2e",
            "a\\b",
            "a\0b",
            "a b",
            "é",
            ".tmp-1",
            "a/.hidden",
            &long,
        ] {
            assert!(matches!(validate_key(key), Err(StorageError::InvalidKey { .. })), "{key:?}");
        }
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn prefixes() {
        for prefix in ["", "packs/", "packs/a", "packs/ab/", "config"] {
            assert!(validate_prefix(prefix).is_ok(), "{prefix}");
        }
        for prefix in ["/", "/packs/", "packs//", "../", "a/../", "packs/.", "a\\b/"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix}");
        }
    }
}
