//! The behaviour every backend must have, as checks that run unchanged
//! against each one (local here; S3, SFTP and REST in their own crates).
//!
//! Each check takes an **empty** storage and returns `Err` with a
//! description of the first thing that went wrong. A backend's tests get one
//! `#[test]` per check with [`storage_test_suite!`](crate::storage_test_suite):
//!
//! ```ignore
//! fn fresh() -> MyFixture { /* an empty storage, e.g. a new bucket prefix */ }
//! vger_storage::storage_test_suite!(fresh);
//! ```

use std::collections::BTreeMap;

use crate::{ObjectInfo, Storage, StorageError};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

mod concurrency;
mod hostile_keys;
mod listing;
mod objects;

pub use concurrency::*;
pub use hostile_keys::*;
pub use listing::*;
pub use objects::*;

/// Something that owns an empty storage for the length of one check
/// (a temporary directory, a bucket prefix to clean up on drop, ...).
pub trait Fixture {
    fn storage(&self) -> &dyn Storage;
}

impl Fixture for Box<dyn Storage> {
    fn storage(&self) -> &dyn Storage {
        self.as_ref()
    }
}

/// One named check.
pub struct Check {
    pub name: &'static str,
    pub run: fn(&dyn Storage) -> Result<(), String>,
}

macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        &[$(Check { name: stringify!($check), run: $check }),*]
    };
}

/// Every check, in the order [`run_all`] runs them. Keep in step with
/// [`storage_test_suite!`](crate::storage_test_suite).
pub const CHECKS: &[Check] = checks![
    round_trip,
    overwrite,
    put_new_refuses_existing,
    absent_is_not_found,
    sizes,
    ranges,
    delete_is_idempotent,
    list_nested_prefixes,
    list_after_delete,
    invalid_keys_refused,
    large_object,
    many_keys,
    concurrent_puts_distinct_keys,
    concurrent_puts_same_key,
    concurrent_put_new_one_winner,
];

/// Runs every check, each on a fresh fixture; `Err` lists all failures.
pub fn run_all<F: Fixture>(make: &dyn Fn() -> F) -> Result<(), String> {
    let failures: Vec<String> = CHECKS
        .iter()
        .filter_map(|check| {
            let fixture = make();
            (check.run)(fixture.storage()).err().map(|e| format!("{}: {e}", check.name))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Expands to one `#[test]` per check, each on a fresh fixture from
/// `$make` (a function returning a [`Fixture`]).
#[macro_export]
macro_rules! storage_test_suite {
    ($make:expr) => {
        $crate::storage_test_suite!(@tests $make;
            round_trip, overwrite, put_new_refuses_existing, absent_is_not_found, sizes,
            ranges, delete_is_idempotent, list_nested_prefixes, list_after_delete,
            invalid_keys_refused, large_object, many_keys, concurrent_puts_distinct_keys,
            concurrent_puts_same_key, concurrent_put_new_one_winner);
    };
    (@tests $make:expr; $($check:ident),*) => {$(
        #[test]
        fn $check() {
            let fixture = $make();
            let result = $crate::testsuite::$check($crate::testsuite::Fixture::storage(&fixture));
            if let Err(message) = result {
                panic!("{} on {}: {}", stringify!($check),
                    $crate::testsuite::Fixture::storage(&fixture).describe(), message);
            }
        }
    )*};
}

/// The key of a repository object: `prefix` (`snapshots/`, `index/`,
/// `locks/`, `keys/`) and a 64-hex-digit id made from `n`. The checks use
/// only keys of vger's repository layout (`docs/format.md`), the only
/// keys vger-server stores.
pub fn object_key(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:064x}")
}

/// `packs/<xx>/<id>`: a pack key in directory `shard`, id made from `n`.
pub fn pack_key(shard: u8, n: u64) -> String {
    format!("packs/{shard:02x}/{shard:02x}{n:062x}")
}

/// Deterministic pseudo-random bytes (splitmix64), so that a mismatch
/// shows up anywhere in an object, not only at its ends.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Turns a storage error into the check's failure message.
fn ok<T>(result: Result<T, StorageError>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: unexpected error: {e}"))
}

fn expect_data(storage: &dyn Storage, key: &str, want: &[u8]) -> Result<(), String> {
    let got = ok(storage.get(key), &format!("get {key}"))?;
    ensure!(got == want, "get {key}: got {} bytes, want {} bytes (contents differ)", got.len(), want.len());
    Ok(())
}

fn listed(storage: &dyn Storage, prefix: &str) -> Result<BTreeMap<String, u64>, String> {
    let objects = ok(storage.list(prefix), &format!("list {prefix:?}"))?;
    let count = objects.len();
    let map: BTreeMap<String, u64> = objects.into_iter().map(|o: ObjectInfo| (o.key, o.size)).collect();
    ensure!(map.len() == count, "list {prefix:?} returned a key twice");
    Ok(map)
}

fn expect_listing(storage: &dyn Storage, prefix: &str, want: &[(String, u64)]) -> Result<(), String> {
    let got = listed(storage, prefix)?;
    let want: BTreeMap<String, u64> = want.iter().map(|(k, s)| (k.clone(), *s)).collect();
    ensure!(got == want, "list {prefix:?}: got {got:?}, want {want:?}");
    Ok(())
}
