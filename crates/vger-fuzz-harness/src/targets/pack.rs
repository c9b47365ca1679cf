//! Targets for packs: the trailer on its own, and a whole pack read the
//! ways the engine reads one (whole in memory, by ranged reads of its
//! footer and trailer, then every blob it lists through the index).

use vger_crypto::ObjectType;
use vger_engine::blob::BlobReader;
use vger_engine::index::ChunkIndex;
use vger_format::id::{PackId, SegmentId};
use vger_format::index::{BlobEntry, IndexSegment, PackEntry, INDEX_SEGMENT_VERSION};
use vger_format::pack::{
    check_pack_header, open_trailer, parse_pack, trailer_range, PACK_END_MAGIC, PACK_FOOTER_LEN, PACK_HEADER_LEN,
};

use super::{refused, Input};
use crate::fixture::{fixture, Fixture};
use crate::Outcome;

const TRAILER_IDENTITY: &[u8] = b"pack-trailer";

/// Every blob must lie between the header and the trailer.
fn assert_inside(blobs: &[BlobEntry], trailer_offset: u64) {
    for b in blobs {
        let end = b.offset.checked_add(u64::from(b.length));
        assert!(
            b.offset >= PACK_HEADER_LEN as u64 && end.is_some_and(|end| end <= trailer_offset),
            "a blob at {} +{} was let through with the trailer at {trailer_offset}",
            b.offset,
            b.length
        );
    }
}

/// Stored: a whole pack, of which the footer and the trailer are read.
/// Plaintext: `[trailer offset u32][trailer plaintext]`, sealed here.
pub(crate) fn pack_trailer(data: &[u8]) -> Outcome {
    let f = fixture();
    let (sealed, offset) = match Input::read(data) {
        Input::Stored(pack) => {
            let footer = pack.get(pack.len().saturating_sub(PACK_FOOTER_LEN)..).unwrap_or_default();
            let (offset, len) = trailer_range(footer, pack.len() as u64).map_err(refused)?;
            let start = usize::try_from(offset).map_err(refused)?;
            let end = usize::try_from(offset + len).map_err(refused)?;
            (pack.get(start..end).ok_or("trailer range outside the bytes")?.to_vec(), offset)
        }
        Input::Plaintext(rest) => {
            let (offset, plaintext) = rest.split_at_checked(4).ok_or("too short")?;
            let offset = u64::from(u32::from_le_bytes(offset.try_into().map_err(refused)?));
            (f.seal(ObjectType::PackTrailer, TRAILER_IDENTITY, plaintext), offset)
        }
    };
    let blobs = open_trailer(f.repo.envelope(), sealed, offset).map_err(refused)?;
    assert_inside(&blobs, offset);
    Ok(())
}

/// Stored: a pack file. Plaintext: `[trailer length u32][trailer
/// plaintext][pack up to the trailer]`, framed here with the sealed
/// trailer and the footer. The pack is parsed whole, planted in the
/// fixture and read back as `check --repair` adopts one (ranged reads of
/// the footer and trailer), and every blob it lists is read through an
/// index naming it, as a restore reads chunks.
pub(crate) fn pack(data: &[u8]) -> Outcome {
    let f = fixture();
    let bytes = match Input::read(data) {
        Input::Stored(pack) => pack.to_vec(),
        Input::Plaintext(rest) => {
            let (len, rest) = rest.split_at_checked(4).ok_or("too short")?;
            let len = u32::from_le_bytes(len.try_into().map_err(refused)?) as usize;
            let (plaintext, body) = rest.split_at(len.min(rest.len()));
            let sealed = f.seal(ObjectType::PackTrailer, TRAILER_IDENTITY, plaintext);
            let mut pack = body.to_vec();
            pack.extend_from_slice(&sealed);
            pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
            pack.extend_from_slice(PACK_END_MAGIC);
            pack
        }
    };
    let id = PackId(*blake3::hash(&bytes).as_bytes());
    let parsed = parse_pack(f.repo.envelope(), &id, &bytes);
    let _planted = f.plant(&id.storage_key(), &bytes);
    let adopted = vger_engine::packs::pack_entry(&f.repo, id, bytes.len() as u64, 0);
    // The ranged read does not fetch the 16 header bytes (nothing in them
    // is used, and every blob is authenticated on its own); only the whole
    // parse refuses a bad header.
    let parsed = match (parsed, check_pack_header(&bytes), &adopted) {
        (Err(_), Err(_), Ok(entry)) => Ok(entry.blobs.clone()),
        (parsed, _, _) => parsed,
    };
    let entry = match (parsed, adopted) {
        (Ok(blobs), Ok(entry)) => {
            assert_eq!(blobs, entry.blobs, "the pack parsed whole and by ranges lists different blobs");
            entry
        }
        (Err(e), Err(_)) => return Err(refused(e)),
        (a, b) => panic!("parse_pack gave {a:?}, the ranged read {b:?}"),
    };
    read_blobs(&f, entry)
}

/// Reads every blob of `entry` through an index that names the pack.
fn read_blobs(f: &Fixture, entry: PackEntry) -> Outcome {
    let blobs = entry.blobs.clone();
    let segment = IndexSegment { version: INDEX_SEGMENT_VERSION, packs: vec![entry], supersedes: Vec::new() };
    let index = ChunkIndex::from_segments(&[(SegmentId([0; 32]), segment)]);
    let reader = BlobReader::new(&f.repo, &index);
    let mut first_error = None;
    for b in &blobs {
        let ty = ObjectType::from_tag(b.blob_type).unwrap_or(ObjectType::DataChunk);
        match reader.read(&b.id, ty, &|| "a fuzzed pack".into()) {
            Ok(plain) => assert!(plain.len() <= reader.cap(ty)),
            Err(e) => first_error = first_error.or(Some(refused(e))),
        }
    }
    first_error.map_or(Ok(()), Err)
}
