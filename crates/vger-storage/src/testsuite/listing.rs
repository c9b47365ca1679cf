//! Checks of `list`: prefixes, sizes, deletions, many keys.

use super::{expect_listing, listed, object_key, ok, pack_key, pattern};
use crate::Storage;

pub fn list_nested_prefixes(storage: &dyn Storage) -> Result<(), String> {
    expect_listing(storage, "", &[])?;
    let (p0, p1, p2, p3) = (pack_key(0, 0), pack_key(0xab, 1), pack_key(0xab, 2), pack_key(0xac, 3));
    let (index, snapshot) = (object_key("index/", 1), object_key("snapshots/", 1));
    let objects = [
        ("config".to_owned(), 3),
        (object_key("keys/", 1), 10),
        (p0.clone(), 100),
        (p1.clone(), 200),
        (p2.clone(), 300),
        (p3.clone(), 400),
        (index.clone(), 50),
        (snapshot, 60),
    ];
    for (key, size) in &objects {
        ok(storage.put(key, &pattern(5, *size as usize)), key)?;
    }
    expect_listing(storage, "", &objects)?;
    expect_listing(storage, "packs/", &[(p0, 100), (p1.clone(), 200), (p2.clone(), 300), (p3.clone(), 400)])?;
    expect_listing(storage, "packs/ab/", &[(p1.clone(), 200), (p2.clone(), 300)])?;
    expect_listing(storage, "packs/a", &[(p1.clone(), 200), (p2, 300), (p3, 400)])?;
    expect_listing(storage, &p1, &[(p1.clone(), 200)])?;
    expect_listing(storage, "index", &[(index, 50)])?;
    expect_listing(storage, "conf", &[("config".to_owned(), 3)])?;
    expect_listing(storage, "locks/", &[])?;
    expect_listing(storage, "packs/ff/", &[])
}

pub fn list_after_delete(storage: &dyn Storage) -> Result<(), String> {
    let [a, b, c] = [0xa, 0xb, 0xc].map(|n| object_key("index/", n));
    for key in [&a, &b, &c] {
        ok(storage.put(key, b"seg"), key)?;
    }
    ok(storage.delete(&b), "delete")?;
    expect_listing(storage, "index/", &[(a.clone(), 3), (c.clone(), 3)])?;
    ok(storage.delete(&a), "delete")?;
    ok(storage.delete(&c), "delete")?;
    expect_listing(storage, "index/", &[])?;
    expect_listing(storage, "", &[])
}

pub fn many_keys(storage: &dyn Storage) -> Result<(), String> {
    const COUNT: usize = 1500;
    const THREADS: usize = 8;
    let key = |i: usize| pack_key((i % 7) as u8, i as u64);
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
    let got = listed(storage, "packs/")?;
    ensure!(got.len() == COUNT, "list packs/: {} keys, want {COUNT}", got.len());
    for i in 0..COUNT {
        ensure!(got.get(&key(i)) == Some(&((i % 50) as u64)), "key {} missing or wrong size", key(i));
    }
    let one_dir = listed(storage, "packs/03/")?;
    ensure!(one_dir.len() == (0..COUNT).filter(|i| i % 7 == 3).count(), "list packs/03/");
    Ok(())
}
