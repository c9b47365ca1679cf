//! Checks of single objects: writing, reading, ranges, deleting.

use super::{expect_data, expect_listing, object_key, ok, pack_key, pattern};
use crate::{Storage, StorageError};

pub fn round_trip(storage: &dyn Storage) -> Result<(), String> {
    let data = pattern(1, 10_000);
    let snapshot = object_key("snapshots/", 0xabc);
    ok(storage.put(&snapshot, &data), "put")?;
    expect_data(storage, &snapshot, &data)?;
    ok(storage.put("config", b"cfg"), "put config")?;
    expect_data(storage, "config", b"cfg")?;
    let empty = object_key("index/", 0);
    ok(storage.put(&empty, b""), "put empty object")?;
    expect_data(storage, &empty, b"")
}

pub fn overwrite(storage: &dyn Storage) -> Result<(), String> {
    let key = object_key("index/", 0xa);
    ok(storage.put(&key, &pattern(1, 5000)), "first put")?;
    let second = pattern(2, 300);
    ok(storage.put(&key, &second), "second put")?;
    expect_data(storage, &key, &second)?;
    ensure!(ok(storage.size(&key), "size")? == Some(300), "size after overwrite");
    expect_listing(storage, "", &[(key, 300)])
}

pub fn put_new_refuses_existing(storage: &dyn Storage) -> Result<(), String> {
    let (l1, l2) = (object_key("locks/", 1), object_key("locks/", 2));
    ok(storage.put_new(&l1, b"first"), "put_new of a new key")?;
    let again = storage.put_new(&l1, b"second");
    ensure!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "put_new over an existing key: got {again:?}, want AlreadyExists"
    );
    expect_data(storage, &l1, b"first")?;
    ok(storage.put(&l2, b"by put"), "put")?;
    let again = storage.put_new(&l2, b"x");
    ensure!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "put_new over a key written by put: got {again:?}"
    );
    expect_data(storage, &l2, b"by put")?;
    expect_listing(storage, "locks/", &[(l1, 5), (l2, 6)])?;
    let deeper = pack_key(0x7e, 3);
    ok(storage.put_new(&deeper, b"z"), "put_new in a new directory")?;
    expect_listing(storage, "packs/", &[(deeper, 1)])
}

pub fn absent_is_not_found(storage: &dyn Storage) -> Result<(), String> {
    let present = pack_key(0xab, 1);
    ok(storage.put(&present, b"x"), "put")?;
    for key in [object_key("snapshots/", 1), pack_key(0xab, 2), object_key("index/", 1), "config".to_owned()] {
        let got = storage.get(&key);
        ensure!(matches!(&got, Err(e) if e.is_not_found()), "get {key}: got {got:?}");
        let got = storage.get_range(&key, 0, 1);
        ensure!(matches!(&got, Err(e) if e.is_not_found()), "get_range {key}: got {got:?}");
        ensure!(ok(storage.size(&key), &key)?.is_none(), "size of absent {key} is not None");
    }
    // A "directory" that only exists as a prefix of other keys, or a path
    // through an object, is no object (vger-server refuses such keys
    // outright: they are not keys of a repository).
    for key in ["packs/ab".to_owned(), "packs".to_owned(), format!("{present}/below")] {
        let got = storage.get(&key);
        let absent = |e: &StorageError| e.is_not_found() || matches!(e, StorageError::InvalidKey { .. });
        ensure!(matches!(&got, Err(e) if absent(e)), "get {key}: got {got:?}");
        let size = storage.size(&key);
        ensure!(matches!(&size, Ok(None)) || matches!(&size, Err(e) if absent(e)), "size of {key}: {size:?}");
    }
    Ok(())
}

pub fn sizes(storage: &dyn Storage) -> Result<(), String> {
    for (n, len) in [(0, 0usize), (1, 1), (2, 4097)] {
        let key = object_key("snapshots/", n);
        let key = key.as_str();
        ok(storage.put(key, &pattern(3, len)), key)?;
        let size = ok(storage.size(key), key)?;
        ensure!(size == Some(len as u64), "size {key}: got {size:?}, want {len}");
    }
    Ok(())
}

pub fn ranges(storage: &dyn Storage) -> Result<(), String> {
    let data = pattern(4, 1000);
    let key = &pack_key(0, 1);
    ok(storage.put(key, &data), "put")?;
    let cases: [(u64, u64); 6] = [(0, 10), (0, 1000), (400, 123), (990, 10), (999, 1), (1000, 0)];
    for (offset, len) in cases {
        let got = ok(storage.get_range(key, offset, len), &format!("range {offset}+{len}"))?;
        let want = data.get(offset as usize..(offset + len) as usize).unwrap_or_default();
        ensure!(got == want, "get_range {offset}+{len}: wrong bytes ({} returned)", got.len());
    }
    // Into one reused buffer, holding more than each range before the call.
    let mut buf = vec![0xEE; 2000];
    for (offset, len) in cases {
        ok(storage.get_range_into(key, offset, len, &mut buf), &format!("range {offset}+{len} into"))?;
        let want = data.get(offset as usize..(offset + len) as usize).unwrap_or_default();
        ensure!(buf == want, "get_range_into {offset}+{len}: wrong bytes ({} returned)", buf.len());
    }
    for (offset, len) in [(995, 10), (1000, 1), (2000, 1), (1, u64::MAX), (u64::MAX, 2)] {
        let got = storage.get_range(key, offset, len);
        ensure!(
            matches!(got, Err(StorageError::RangeOutOfBounds { size: 1000, .. })),
            "get_range {offset}+{len} past the end: got {:?}, want RangeOutOfBounds",
            got.map(|d| d.len())
        );
        let got = storage.get_range_into(key, offset, len, &mut buf);
        ensure!(
            matches!(got, Err(StorageError::RangeOutOfBounds { size: 1000, .. })),
            "get_range_into {offset}+{len} past the end: got {got:?}, want RangeOutOfBounds"
        );
    }
    Ok(())
}

pub fn delete_is_idempotent(storage: &dyn Storage) -> Result<(), String> {
    let key = object_key("snapshots/", 5);
    ok(storage.put(&key, b"x"), "put")?;
    ok(storage.delete(&key), "delete")?;
    let got = storage.get(&key);
    ensure!(matches!(&got, Err(e) if e.is_not_found()), "get after delete: {got:?}");
    ok(storage.delete(&key), "second delete")?;
    ok(storage.delete(&object_key("index/", 9)), "delete of a key never written")?;
    ok(storage.put(&key, b"again"), "put after delete")?;
    expect_data(storage, &key, b"again")
}

pub fn large_object(storage: &dyn Storage) -> Result<(), String> {
    const LEN: usize = 40 << 20;
    let data = pattern(6, LEN);
    let key = pack_key(0xff, 1);
    ok(storage.put(&key, &data), "put 40 MiB")?;
    ensure!(ok(storage.size(&key), "size")? == Some(LEN as u64), "size of 40 MiB");
    expect_data(storage, &key, &data)?;
    let tail = ok(storage.get_range(&key, LEN as u64 - 4096, 4096), "tail")?;
    ensure!(data.get(LEN - 4096..) == Some(tail.as_slice()), "tail of 40 MiB object differs");
    Ok(())
}
