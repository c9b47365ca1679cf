//! Metadata objects (index segments, snapshots, pack trailers): msgpack with
//! named fields, compressed, then sealed in an envelope.

use serde::de::DeserializeOwned;
use serde::Serialize;
use vger_crypto::{Envelope, ObjectType, ENVELOPE_HEADER_LEN};

use crate::compress::{compress_into, decompress, Codec};
use crate::FormatError;

/// Largest metadata object we decompress (hostile data cannot make us
/// allocate more).
pub const METADATA_CAP: usize = 256 << 20;

pub fn to_msgpack<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, FormatError> {
    rmp_serde::to_vec_named(value).map_err(|e| FormatError::Encode { what: what.into(), detail: e.to_string() })
}

pub fn from_msgpack<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, FormatError> {
    rmp_serde::from_slice(bytes).map_err(|e| FormatError::corrupt(what, e))
}

/// Encodes, compresses (zstd level 3: metadata is small and compresses well)
/// and seals `value`.
pub fn seal_object<T: Serialize>(
    envelope: &Envelope,
    ty: ObjectType,
    identity: &[u8],
    what: &str,
    value: &T,
) -> Result<Vec<u8>, FormatError> {
    let raw = to_msgpack(what, value)?;
    let mut buf = vec![0u8; ENVELOPE_HEADER_LEN];
    compress_into(Codec::Zstd(3), &raw, &mut buf);
    envelope.seal_buffer(ty, identity, &mut buf).map_err(|e| FormatError::crypto(what, e))?;
    Ok(buf)
}

/// Opens, decompresses and decodes an object sealed by [`seal_object`].
pub fn open_object<T: DeserializeOwned>(
    envelope: &Envelope,
    ty: ObjectType,
    identity: &[u8],
    what: &str,
    sealed: Vec<u8>,
) -> Result<T, FormatError> {
    let raw = {
        let payload = envelope.open(ty, identity, sealed).map_err(|e| FormatError::crypto(what, e))?;
        // The compressed payload is freed before the decode: for a large
        // index segment, three copies at once would set the peak memory.
        decompress(&payload, METADATA_CAP)?
    };
    from_msgpack(what, &raw)
}

/// Refuses objects whose `version` field is newer than this build.
pub fn check_version(what: &str, found: u32, supported: u32) -> Result<(), FormatError> {
    if found > supported {
        return Err(FormatError::NewerVersion { what: what.into(), found, supported });
    }
    Ok(())
}

/// Refuses objects newer than this build or older than `oldest`, the
/// first version it still reads.
pub fn check_version_range(what: &str, found: u32, oldest: u32, supported: u32) -> Result<(), FormatError> {
    check_version(what, found, supported)?;
    if found < oldest {
        return Err(FormatError::OlderVersion { what: what.into(), found });
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    #[serde(default)]
    version: u32,
}

/// Reads only the `version` field of a msgpack map and refuses a newer one,
/// before the full decode can misread fields it does not know.
pub fn check_msgpack_version(what: &str, bytes: &[u8], supported: u32) -> Result<(), FormatError> {
    let v: VersionOnly = from_msgpack(what, bytes)?;
    check_version(what, v.version, supported)
}

/// [`check_msgpack_version`] that also refuses versions below `oldest`.
pub fn check_msgpack_version_range(what: &str, bytes: &[u8], oldest: u32, supported: u32) -> Result<(), FormatError> {
    let v: VersionOnly = from_msgpack(what, bytes)?;
    check_version_range(what, v.version, oldest, supported)
}
