//! Server-side repack and pack verification on synthetic packs.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{Server, APPEND, FULL, READ};
use vger_protocol::RepackBlob;
use vger_storage::testsuite::pattern;
use vger_storage::{Storage, StorageError};

/// A pack with the real framing around `blobs` and `trailer`; returns its
/// bytes, hex id and each blob's offset.
fn make_pack(blobs: &[Vec<u8>], trailer: &[u8]) -> (Vec<u8>, String, Vec<u64>) {
    let mut bytes = b"VGERPACK".to_vec();
    bytes.push(1);
    bytes.extend_from_slice(&[0; 7]);
    let mut offsets = Vec::new();
    for blob in blobs {
        offsets.push(bytes.len() as u64);
        bytes.extend_from_slice(blob);
    }
    bytes.extend_from_slice(trailer);
    bytes.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"VGERPEND");
    let id = blake3::hash(&bytes).to_hex().to_string();
    (bytes, id, offsets)
}

fn key(id: &str) -> String {
    format!("packs/{}/{id}", &id[..2])
}

#[test]
fn repack_copies_ranges_and_verify_finds_damage() {
    let server = Server::start();
    let full = server.client("r", FULL);
    let blobs_a: Vec<Vec<u8>> = (0..3).map(|i| pattern(i, 1000 + i as usize * 10)).collect();
    let blobs_b: Vec<Vec<u8>> = (10..12).map(|i| pattern(i, 5000)).collect();
    let (pack_a, id_a, off_a) = make_pack(&blobs_a, b"trailer a");
    let (pack_b, id_b, off_b) = make_pack(&blobs_b, b"trailer b");
    full.put(&key(&id_a), &pack_a).unwrap();
    full.put(&key(&id_b), &pack_b).unwrap();

    // Keep blob 2 of A and blob 1 of B, then blob 0 of A.
    let plan = vec![
        RepackBlob { pack: id_a.clone(), offset: off_a[2], length: blobs_a[2].len() as u64 },
        RepackBlob { pack: id_b.clone(), offset: off_b[1], length: blobs_b[1].len() as u64 },
        RepackBlob { pack: id_a.clone(), offset: off_a[0], length: blobs_a[0].len() as u64 },
    ];
    let kept = [blobs_a[2].clone(), blobs_b[1].clone(), blobs_a[0].clone()];
    let (want, want_id, _) = make_pack(&kept, b"new sealed trailer");
    // Append is enough: repacking only adds a pack.
    let appender = server.client("r", APPEND);
    let result = appender.repack(&plan, b"new sealed trailer").unwrap();
    assert_eq!(result.id, want_id);
    assert_eq!(result.size, want.len() as u64);
    assert_eq!(full.get(&key(&want_id)).unwrap(), want);
    // Doing it again is harmless.
    assert_eq!(appender.repack(&plan, b"new sealed trailer").unwrap().id, want_id);

    // Bad plans.
    let outside = [RepackBlob { pack: id_a.clone(), offset: pack_a.len() as u64 - 20, length: 100 }];
    assert!(matches!(appender.repack(&outside, b"t"), Err(StorageError::Backend { .. })), "range past the end");
    let header = [RepackBlob { pack: id_a.clone(), offset: 0, length: 10 }];
    assert!(appender.repack(&header, b"t").is_err(), "range over the header");
    let missing = [RepackBlob { pack: "ee".repeat(32), offset: 16, length: 1 }];
    assert!(appender.repack(&missing, b"t").unwrap_err().is_not_found());
    let bad_id = [RepackBlob { pack: "../../config".into(), offset: 16, length: 1 }];
    assert!(appender.repack(&bad_id, b"t").is_err());
    assert!(appender.repack(&[], b"t").is_err());
    assert!(matches!(server.client("r", READ).repack(&plan, b"t"), Err(StorageError::PermissionDenied { .. })));

    // Verification: all three packs are fine...
    let results = server.client("r", READ).verify_packs(None).unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.ok), "{results:?}");
    // ...until one is damaged on the server's disk.
    let path = server.data_dir().join("r").join(key(&id_b));
    let mut damaged = pack_b.clone();
    damaged[100] ^= 1;
    std::fs::write(&path, &damaged).unwrap();
    full.put("packs/00/not-a-pack-name", b"xx").unwrap();
    let (_, truncated_id, _) = make_pack(&[vec![1, 2, 3]], b"t");
    full.put(&key(&truncated_id), b"VGERPACK").unwrap();
    let results = server.client("r", READ).verify_packs(None).unwrap();
    let bad: Vec<_> = results.iter().filter(|r| !r.ok).map(|r| r.key.clone()).collect();
    assert_eq!(results.len(), 5);
    assert_eq!(bad.len(), 3, "{results:?}");
    assert!(bad.contains(&key(&id_b)));
    let one = server.client("r", READ).verify_packs(Some(&[id_b.clone(), key(&id_a), "ff".repeat(32)])).unwrap();
    assert_eq!(one.len(), 3);
    assert!(!one[0].ok && one[0].problem.as_deref().unwrap().contains("BLAKE3"), "{one:?}");
    assert!(one[1].ok);
    assert_eq!((one[2].ok, one[2].size), (false, None));
}
