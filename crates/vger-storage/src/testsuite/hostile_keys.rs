//! Checks that keys from hostile data never reach a backend.

use super::expect_listing;
use crate::{Storage, StorageError};

/// Keys that must never reach a backend: traversal, absolute paths, odd
/// separators, encodings and control bytes.
pub fn hostile_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "",
        "/",
        "/abs",
        "/etc/passwd",
        "../x",
        "..",
        ".",
        "a//b",
        "a/./b",
        "a/../b",
        "a/..",
        "a/",
        "%2e%2e",
        "%2e%2e/x",
        "a\\b",
        "..\\x",
        "a\0b",
        "a\nb",
        "a b",
        "a:b",
        "caf\u{e9}",
        ".tmp-x",
        "packs/.hidden",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    keys.push("a".repeat(513));
    keys.push("a/".repeat(300) + "a");
    keys
}

pub fn invalid_keys_refused(storage: &dyn Storage) -> Result<(), String> {
    let invalid = |r: Result<(), StorageError>| matches!(r, Err(StorageError::InvalidKey { .. }));
    for key in hostile_keys() {
        let k = key.as_str();
        ensure!(invalid(storage.put(k, b"x")), "put {k:?} was not refused as InvalidKey");
        ensure!(invalid(storage.put_new(k, b"x")), "put_new {k:?} not refused");
        ensure!(invalid(storage.get(k).map(drop)), "get {k:?} not refused");
        ensure!(invalid(storage.get_range(k, 0, 1).map(drop)), "get_range {k:?} not refused");
        ensure!(invalid(storage.size(k).map(drop)), "size {k:?} not refused");
        ensure!(invalid(storage.delete(k)), "delete {k:?} not refused");
    }
    for prefix in ["/", "/abs/", "../", "a/../", "a//", "%2e%2e/", "a\\b/", "a\0/"] {
        ensure!(invalid(storage.list(prefix).map(drop)), "list {prefix:?} not refused");
    }
    ensure!(invalid(storage.list(&"a".repeat(513)).map(drop)), "list of a long prefix");
    expect_listing(storage, "", &[])
}
