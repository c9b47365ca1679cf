//! Checks of `list`: prefixes, sizes, deletions, many keys.

use super::{expect_listing, listed, ok, pattern};
use crate::Storage;

pub fn list_nested_prefixes(storage: &dyn Storage) -> Result<(), String> {
    expect_listing(storage, "", &[])?;
    let objects = [
        ("config", 3),
        ("keys/k1", 10),
        ("packs/00/p0", 100),
        ("packs/ab/p1", 200),
        ("packs/ab/p2", 300),
        ("packs/ac/p3", 400),
        ("index/i1", 50),
        ("snapshots/s1", 60),
    ];
    for (key, size) in objects {
        ok(storage.put(key, &pattern(5, size as usize)), key)?;
    }
    expect_listing(storage, "", &objects)?;
    expect_listing(
        storage,
        "packs/",
        &[("packs/00/p0", 100), ("packs/ab/p1", 200), ("packs/ab/p2", 300), ("packs/ac/p3", 400)],
    )?;
    expect_listing(storage, "packs/ab/", &[("packs/ab/p1", 200), ("packs/ab/p2", 300)])?;
    expect_listing(storage, "packs/a", &[("packs/ab/p1", 200), ("packs/ab/p2", 300), ("packs/ac/p3", 400)])?;
    expect_listing(storage, "packs/ab/p1", &[("packs/ab/p1", 200)])?;
    expect_listing(storage, "index", &[("index/i1", 50)])?;
    expect_listing(storage, "conf", &[("config", 3)])?;
    expect_listing(storage, "locks/", &[])?;
    expect_listing(storage, "packs/ff/", &[])
}

pub fn list_after_delete(storage: &dyn Storage) -> Result<(), String> {
    for key in ["index/a", "index/b", "index/c"] {
        ok(storage.put(key, b"seg"), key)?;
    }
    ok(storage.delete("index/b"), "delete")?;
    expect_listing(storage, "index/", &[("index/a", 3), ("index/c", 3)])?;
    ok(storage.delete("index/a"), "delete")?;
    ok(storage.delete("index/c"), "delete")?;
    expect_listing(storage, "index/", &[])?;
    expect_listing(storage, "", &[])
}

pub fn many_keys(storage: &dyn Storage) -> Result<(), String> {
    const COUNT: usize = 1500;
    const THREADS: usize = 8;
    let key = |i: usize| format!("many/{:02x}/{i:05}", i % 7);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || -> Result<(), String> {
                    for i in (t..COUNT).step_by(THREADS) {
                        ok(storage.put(&key(i), &pattern(i as u64, i % 50)), &key(i))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "writer thread panicked".to_owned())?)
    })?;
    let got = listed(storage, "many/")?;
    ensure!(got.len() == COUNT, "list many/: {} keys, want {COUNT}", got.len());
    for i in 0..COUNT {
        ensure!(got.get(&key(i)) == Some(&((i % 50) as u64)), "key {} missing or wrong size", key(i));
    }
    let one_dir = listed(storage, "many/03/")?;
    ensure!(one_dir.len() == (0..COUNT).filter(|i| i % 7 == 3).count(), "list many/03/");
    Ok(())
}
