//! Checks of single objects: writing, reading, ranges, deleting.

use super::{expect_data, expect_listing, ok, pattern};
use crate::{Storage, StorageError};

pub fn round_trip(storage: &dyn Storage) -> Result<(), String> {
    let data = pattern(1, 10_000);
    ok(storage.put("snapshots/abc", &data), "put")?;
    expect_data(storage, "snapshots/abc", &data)?;
    ok(storage.put("config", b"cfg"), "put config")?;
    expect_data(storage, "config", b"cfg")?;
    ok(storage.put("empty", b""), "put empty object")?;
    expect_data(storage, "empty", b"")
}

pub fn overwrite(storage: &dyn Storage) -> Result<(), String> {
    ok(storage.put("index/a", &pattern(1, 5000)), "first put")?;
    let second = pattern(2, 300);
    ok(storage.put("index/a", &second), "second put")?;
    expect_data(storage, "index/a", &second)?;
    ensure!(ok(storage.size("index/a"), "size")? == Some(300), "size after overwrite");
    expect_listing(storage, "", &[("index/a", 300)])
}

pub fn put_new_refuses_existing(storage: &dyn Storage) -> Result<(), String> {
    ok(storage.put_new("locks/l1", b"first"), "put_new of a new key")?;
    let again = storage.put_new("locks/l1", b"second");
    ensure!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "put_new over an existing key: got {again:?}, want AlreadyExists"
    );
    expect_data(storage, "locks/l1", b"first")?;
    ok(storage.put("locks/l2", b"by put"), "put")?;
    let again = storage.put_new("locks/l2", b"x");
    ensure!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "put_new over a key written by put: got {again:?}"
    );
    expect_data(storage, "locks/l2", b"by put")?;
    ok(storage.put_new("locks/deeper/l3", b"z"), "put_new in a new directory")?;
    expect_listing(storage, "locks/", &[("locks/l1", 5), ("locks/l2", 6), ("locks/deeper/l3", 1)])
}

pub fn absent_is_not_found(storage: &dyn Storage) -> Result<(), String> {
    ok(storage.put("packs/ab/present", b"x"), "put")?;
    for key in ["missing", "packs/ab/missing", "no/such/dir/key", "packs/ab/present/below"] {
        let got = storage.get(key);
        ensure!(matches!(&got, Err(e) if e.is_not_found()), "get {key}: got {got:?}");
        let got = storage.get_range(key, 0, 1);
        ensure!(matches!(&got, Err(e) if e.is_not_found()), "get_range {key}: got {got:?}");
        ensure!(ok(storage.size(key), key)?.is_none(), "size of absent {key} is not None");
    }
    // A "directory" that only exists as a prefix of other keys is no object.
    let got = storage.get("packs/ab");
    ensure!(matches!(&got, Err(e) if e.is_not_found()), "get of a prefix: got {got:?}");
    ensure!(ok(storage.size("packs"), "size of prefix")?.is_none(), "size of a prefix");
    Ok(())
}

pub fn sizes(storage: &dyn Storage) -> Result<(), String> {
    for (key, len) in [("s/zero", 0usize), ("s/one", 1), ("s/some", 4097)] {
        ok(storage.put(key, &pattern(3, len)), key)?;
        let size = ok(storage.size(key), key)?;
        ensure!(size == Some(len as u64), "size {key}: got {size:?}, want {len}");
    }
    Ok(())
}

pub fn ranges(storage: &dyn Storage) -> Result<(), String> {
    let data = pattern(4, 1000);
    ok(storage.put("packs/00/p", &data), "put")?;
    let cases: [(u64, u64); 6] = [(0, 10), (0, 1000), (400, 123), (990, 10), (999, 1), (1000, 0)];
    for (offset, len) in cases {
        let got = ok(storage.get_range("packs/00/p", offset, len), &format!("range {offset}+{len}"))?;
        let want = data.get(offset as usize..(offset + len) as usize).unwrap_or_default();
        ensure!(got == want, "get_range {offset}+{len}: wrong bytes ({} returned)", got.len());
    }
    // Into one reused buffer, holding more than each range before the call.
    let mut buf = vec![0xEE; 2000];
    for (offset, len) in cases {
        ok(storage.get_range_into("packs/00/p", offset, len, &mut buf), &format!("range {offset}+{len} into"))?;
        let want = data.get(offset as usize..(offset + len) as usize).unwrap_or_default();
        ensure!(buf == want, "get_range_into {offset}+{len}: wrong bytes ({} returned)", buf.len());
    }
    for (offset, len) in [(995, 10), (1000, 1), (2000, 1), (1, u64::MAX), (u64::MAX, 2)] {
        let got = storage.get_range("packs/00/p", offset, len);
        ensure!(
            matches!(got, Err(StorageError::RangeOutOfBounds { size: 1000, .. })),
            "get_range {offset}+{len} past the end: got {:?}, want RangeOutOfBounds",
            got.map(|d| d.len())
        );
        let got = storage.get_range_into("packs/00/p", offset, len, &mut buf);
        ensure!(
            matches!(got, Err(StorageError::RangeOutOfBounds { size: 1000, .. })),
            "get_range_into {offset}+{len} past the end: got {got:?}, want RangeOutOfBounds"
        );
    }
    Ok(())
}

pub fn delete_is_idempotent(storage: &dyn Storage) -> Result<(), String> {
    ok(storage.put("snapshots/s", b"x"), "put")?;
    ok(storage.delete("snapshots/s"), "delete")?;
    let got = storage.get("snapshots/s");
    ensure!(matches!(&got, Err(e) if e.is_not_found()), "get after delete: {got:?}");
    ok(storage.delete("snapshots/s"), "second delete")?;
    ok(storage.delete("never/written"), "delete of a key never written")?;
    ok(storage.put("snapshots/s", b"again"), "put after delete")?;
    expect_data(storage, "snapshots/s", b"again")
}

pub fn large_object(storage: &dyn Storage) -> Result<(), String> {
    const LEN: usize = 40 << 20;
    let data = pattern(6, LEN);
    ok(storage.put("packs/ff/large", &data), "put 40 MiB")?;
    ensure!(ok(storage.size("packs/ff/large"), "size")? == Some(LEN as u64), "size of 40 MiB");
    expect_data(storage, "packs/ff/large", &data)?;
    let tail = ok(storage.get_range("packs/ff/large", LEN as u64 - 4096, 4096), "tail")?;
    ensure!(data.get(LEN - 4096..) == Some(tail.as_slice()), "tail of 40 MiB object differs");
    Ok(())
}
