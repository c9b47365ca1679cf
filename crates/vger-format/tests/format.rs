#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vger_crypto::{Algorithm, Envelope, MasterKey, ObjectType};
use vger_format::compress::{compress, decompress, decompress_ref, Codec};
use vger_format::entry::{ChunkRef, Entry, EntryKind, Xattr};
use vger_format::id::{ChunkId, PackId};
use vger_format::pack::{parse_pack, PackBuilder, PackLayout};
use vger_format::repo_config::{ChunkerSizes, RepoConfig};
use vger_format::tree::{encode_entry, encode_leaf_v2, encode_node, TreeEntry, TreeNode};
use vger_format::FormatError;

fn codecs() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::None), Just(Codec::Lz4), (1i32..=9).prop_map(Codec::Zstd)]
}

proptest! {
    #[test]
    fn compression_round_trip(codec in codecs(), data in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..20_000)) {
        let packed = compress(codec, &data);
        prop_assert_eq!(decompress(&packed, data.len()).unwrap(), data);
    }

    /// One scratch buffer through payloads of every size, as a restore
    /// worker uses it: what it held before never leaks into the result.
    #[test]
    fn decompressing_into_a_reused_scratch(codec in codecs(), sizes in proptest::collection::vec(0usize..50_000, 1..6)) {
        let mut scratch = vec![0xAB; 60_000];
        for (n, len) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|i| ((i / 7 + n) % 251) as u8).collect();
            let packed = compress(codec, &data);
            prop_assert_eq!(decompress_ref(&packed, len, &mut scratch).unwrap(), &data[..]);
        }
    }

    #[test]
    fn output_cap_is_enforced(codec in codecs(), len in 1usize..50_000) {
        let data = vec![0u8; len];
        let packed = compress(codec, &data);
        let too_large = matches!(decompress(&packed, len - 1), Err(FormatError::TooLarge { .. }));
        prop_assert!(too_large);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decompress(&data, 1 << 20);
        let _ = TreeNode::decode(&ChunkId([0; 32]), &data);
    }
}

#[test]
fn lying_length_header_cannot_inflate() {
    // A zstd bomb: 64 MiB of zeros, header claims 100 bytes.
    let mut packed = compress(Codec::Zstd(3), &vec![0u8; 64 << 20]);
    packed[1..5].copy_from_slice(&100u32.to_le_bytes());
    assert!(decompress(&packed, 1 << 20).is_err());
    let mut packed = compress(Codec::Lz4, &vec![0u8; 8 << 20]);
    packed[1..5].copy_from_slice(&100u32.to_le_bytes());
    assert!(decompress(&packed, 1 << 20).is_err());
}

#[test]
fn incompressible_data_is_stored_plain() {
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let data: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let packed = compress(Codec::Lz4, &data);
    assert_eq!(packed[0], 0);
}

fn sample_entry(i: u8) -> Entry {
    let mut e = Entry::new(vec![b'd', b'/', 0xff, i], EntryKind::File);
    e.mode = 0o4755;
    e.mtime = -12_345_678_901;
    e.size = 10;
    e.chunks = vec![ChunkRef(ChunkId([i; 32]), 10)];
    e.xattrs = vec![Xattr(b"user.a".to_vec(), vec![0, 1, 2])];
    e.target = Some(vec![0x80, b'x']);
    e
}

#[test]
fn entries_round_trip_in_a_tree_object() {
    let entries: Vec<TreeEntry> = (1..6).map(|i| TreeEntry::from_entry(sample_entry(i), None)).collect();
    let (mut names, mut meta) = (Vec::new(), Vec::new());
    for e in &entries {
        encode_entry(e, &mut names, &mut meta).unwrap();
    }
    let node = TreeNode::decode(&ChunkId([0; 32]), &encode_node(0, entries.len(), &names, &meta)).unwrap();
    assert_eq!(node, TreeNode::Leaf(entries.clone()));
    // Format 2 leaves (entries as named-field maps) still read the same.
    let node = TreeNode::decode(&ChunkId([0; 32]), &encode_leaf_v2(&entries).unwrap()).unwrap();
    assert_eq!(node, TreeNode::Leaf(entries.clone()));
    assert_eq!(entries[0].to_entry(b"d"), sample_entry(1), "the name joined to its directory is the path");
}

#[test]
fn hostile_paths_are_refused() {
    for p in [&b""[..], b"/etc/passwd", b"../x", b"a/../../x", b"a//b", b"./a", b"a/.", b"a\0b"] {
        assert!(Entry::new(p.to_vec(), EntryKind::File).validate_path().is_err(), "{p:?}");
    }
    assert!(Entry::new(b"a/b..c/.d".to_vec(), EntryKind::File).validate_path().is_ok());
}

#[test]
fn unknown_fields_are_ignored() {
    #[derive(serde::Serialize)]
    struct Future<'a> {
        #[serde(with = "serde_bytes")]
        name: &'a [u8],
        kind: &'a str,
        some_new_field: u64,
    }
    // A format 2 leaf: {"level": 0, "entries": [entry]}.
    let mut v2 = b"\x82\xa5level\x00\xa7entries\x91".to_vec();
    rmp_serde::encode::write_named(&mut v2, &Future { name: b"x", kind: "file", some_new_field: 7 }).unwrap();
    let node = TreeNode::decode(&ChunkId([0; 32]), &v2).unwrap();
    assert_eq!((node.level(), node.first()), (0, Some(&b"x"[..])));
    // A format 3 leaf with a field of the node no reader knows yet.
    let (mut names, mut meta) = (Vec::new(), Vec::new());
    encode_entry(&TreeEntry::from_entry(Entry::new(b"y".to_vec(), EntryKind::File), None), &mut names, &mut meta)
        .unwrap();
    let mut v3 = encode_node(0, 1, &names, &meta);
    v3[0] += 1; // one more field in the map
    v3.extend_from_slice(b"\xa3new\x92\x01\x02");
    let node = TreeNode::decode(&ChunkId([0; 32]), &v3).unwrap();
    assert_eq!((node.level(), node.first()), (0, Some(&b"y"[..])));
}

#[test]
fn pack_round_trip_and_tamper() {
    let key = MasterKey::generate().unwrap();
    let env = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
    let mut b = PackBuilder::with_capacity(1024);
    for i in 0..3u8 {
        let sealed = env.seal(ObjectType::DataChunk, &[i; 32], &[i; 100]).unwrap();
        b.add(ChunkId([i; 32]), ObjectType::DataChunk, 100, &sealed);
    }
    let pack = b.finish(&env).unwrap();
    let blobs = parse_pack(&env, &pack.id, &pack.bytes).unwrap();
    assert_eq!(blobs, pack.entry.blobs);
    let mut bad = pack.bytes.clone();
    bad[40] ^= 1;
    assert!(parse_pack(&env, &pack.id, &bad).is_err());
    assert!(parse_pack(&env, &PackId([0; 32]), &pack.bytes).is_err());
}

/// A pack streamed piece by piece (as the backup writes to local storage)
/// has the layout of the pack built in memory, and its id is its hash.
#[test]
fn streamed_pack_layout_equals_the_built_pack() {
    let key = MasterKey::generate().unwrap();
    let env = Envelope::new(Algorithm::Chacha20Poly1305, &key).unwrap();
    let sealed: Vec<Vec<u8>> =
        (0..5u8).map(|i| env.seal(ObjectType::DataChunk, &[i; 32], &vec![i; 1000 * i as usize]).unwrap()).collect();
    let mut built = PackBuilder::with_capacity(0);
    let (mut layout, header) = PackLayout::start();
    let mut streamed = header.to_vec();
    for (i, s) in sealed.iter().enumerate() {
        built.add(ChunkId([i as u8; 32]), ObjectType::DataChunk, 1000 * i as u32, s);
        layout.add(ChunkId([i as u8; 32]), ObjectType::DataChunk, 1000 * i as u32, s);
        streamed.extend_from_slice(s);
    }
    assert_eq!(layout.len(), built.len() as u64);
    let (tail, entry) = layout.finish(&env).unwrap();
    streamed.extend_from_slice(&tail);
    let built = built.finish(&env).unwrap();
    assert_eq!(entry.size, streamed.len() as u64);
    assert_eq!(entry.blobs, built.entry.blobs);
    // Trailers are sealed with fresh nonces, so compare structure, then the
    // streamed bytes on their own.
    assert_eq!(parse_pack(&env, &entry.id, &streamed).unwrap(), entry.blobs);
}

#[test]
fn config_newer_version_is_refused_and_mac_checked() {
    let cfg = RepoConfig {
        version: 2,
        id: vec![1; 32],
        created: "now".into(),
        encryption: "aes256gcm".into(),
        chunker: ChunkerSizes { min_size: 1, avg_size: 2, max_size: 4 },
        compression: "lz4".into(),
        pack_target_size: 1,
    };
    let key = MasterKey::generate().unwrap();
    let bytes = cfg.encode(|b| key.config_mac(b)).unwrap();
    let (back, mac) = RepoConfig::decode_unverified(&bytes).unwrap();
    assert_eq!(back, cfg);
    mac.verify(|b| key.config_mac(b)).unwrap();
    let other = MasterKey::generate().unwrap();
    assert!(mac.verify(|b| other.config_mac(b)).is_err());

    let newer = RepoConfig { version: vger_format::FORMAT_VERSION + 1, ..cfg.clone() };
    let bytes = newer.encode(|b| key.config_mac(b)).unwrap();
    let err = RepoConfig::decode_unverified(&bytes).unwrap_err();
    assert!(err.to_string().contains("newer vger"), "{err}");

    let older = RepoConfig { version: 1, ..cfg };
    let bytes = older.encode(|b| key.config_mac(b)).unwrap();
    let err = RepoConfig::decode_unverified(&bytes).unwrap_err();
    assert!(err.to_string().contains("no longer reads") && err.to_string().contains("new repository"), "{err}");
}

/// A trailer naming a blob at an offset near 2^64 must be refused: the
/// bounds test added offset and length unchecked, which wrapped in a
/// release build (and let the blob through) and panicked in a debug one.
#[test]
fn trailer_blob_offset_near_the_top_of_u64_is_refused() {
    use vger_format::index::BlobEntry;
    use vger_format::pack::{open_trailer, seal_trailer};
    let env = Envelope::new(Algorithm::Aes256Gcm, &MasterKey::from_bytes([3; 96])).unwrap();
    for offset in [u64::MAX - 4, u64::MAX] {
        let blob = BlobEntry { id: ChunkId([1; 32]), blob_type: 1, offset, length: 16, raw_length: 1 };
        let sealed = seal_trailer(&env, vec![blob]).unwrap();
        let err = open_trailer(&env, sealed, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("outside the pack"), "{err}");
    }
}

/// `max_overhead` bounds what an honest pack holds beside its blobs, with
/// random ids (which do not compress) and the largest offsets and lengths.
#[test]
fn pack_overhead_stays_within_its_bound() {
    let key = MasterKey::generate().unwrap();
    let env = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
    for n in [0usize, 1, 2, 17, 1000, 20_000] {
        let blobs: Vec<vger_format::index::BlobEntry> = (0..n)
            .map(|i| vger_format::index::BlobEntry {
                id: ChunkId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                blob_type: ObjectType::TreeChunk as u8,
                offset: u64::MAX - i as u64,
                length: u32::MAX,
                raw_length: u32::MAX,
            })
            .collect();
        let trailer = vger_format::pack::seal_trailer(&env, blobs).unwrap();
        let overhead = (vger_format::pack::PACK_HEADER_LEN + vger_format::pack::PACK_FOOTER_LEN + trailer.len()) as u64;
        let bound = vger_format::pack::max_overhead(n);
        assert!(overhead <= bound, "{n} blobs: {overhead} > {bound}");
        eprintln!("{n} blobs: overhead {overhead}, bound {bound}");
    }
}
