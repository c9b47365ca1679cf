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
    // A stray file whose name is no pack id (the server refuses to store one).
    assert!(full.put("packs/00/not-a-pack-name", b"xx").is_err());
    std::fs::create_dir_all(server.data_dir().join("r/packs/00")).unwrap();
    std::fs::write(server.data_dir().join("r/packs/00/not-a-pack-name"), b"xx").unwrap();
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

/// A client with an append token tries to make one request cost the
/// server a lot: the same pack a thousand times, more packs than a
/// request may name, bodies past any real plan, overlapping ranges.
#[test]
fn verify_and_repack_requests_are_bounded() {
    let server = Server::start();
    let full = server.client("r", FULL);
    let (pack, id, offsets) = make_pack(&[pattern(1, 4000), pattern(2, 4000)], b"trailer");
    full.put(&key(&id), &pack).unwrap();
    let post = |query: &str, body: &str| {
        server.raw(
            "POST",
            &format!("/r/?{query}"),
            Some(APPEND),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };

    // One pack named 5,000 times is verified once.
    let names: Vec<String> = (0..5000).map(|_| format!("\"{}\"", key(&id))).collect();
    let reply = post("verify-packs", &format!("{{\"packs\":[{}]}}", names.join(",")));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let lines: Vec<serde_json::Value> = reply.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["count"], 1);
    // More packs than one request may name.
    let names: Vec<String> = (0..=vger_protocol::MAX_VERIFY_PACKS)
        .map(|i| format!("\"{}\"", "ab".repeat(31) + &format!("{:02x}", i % 256)))
        .collect();
    let reply = post("verify-packs", &format!("{{\"packs\":[{}]}}", names.join(",")));
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("at most"), "{}", reply.text());
    // A body announced larger than any valid request: refused before it is read.
    let request = format!(
        "POST /r/?repack HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {APPEND}\r\n\
         Content-Length: {}\r\n\r\n",
        1u64 << 30
    );
    let started = std::time::Instant::now();
    let reply = server.try_raw(request.as_bytes()).unwrap();
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // No length at all: a JSON request must announce one.
    let request = format!(
        "POST /r/?verify-packs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {APPEND}\r\n\
         Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    );
    assert_eq!(server.try_raw(request.as_bytes()).unwrap().status, 411);

    // Repack plans that copy one range twice, or too many ranges.
    let appender = server.client("r", APPEND);
    let twice = [
        RepackBlob { pack: id.clone(), offset: offsets[0], length: 4000 },
        RepackBlob { pack: id.clone(), offset: offsets[0], length: 4000 },
    ];
    let err = appender.repack(&twice, b"t").unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    let overlapping = [
        RepackBlob { pack: id.clone(), offset: offsets[0], length: 4000 },
        RepackBlob { pack: id.clone(), offset: offsets[0] + 10, length: 10 },
    ];
    assert!(appender.repack(&overlapping, b"t").is_err());
    let many: Vec<RepackBlob> = (0..=vger_protocol::MAX_REPACK_BLOBS as u64)
        .map(|i| RepackBlob { pack: id.clone(), offset: 16 + i, length: 1 })
        .collect();
    let err = appender.repack(&many, b"t").unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    // Nothing was built by any of them.
    assert_eq!(full.list("packs/").unwrap().len(), 1);
}
