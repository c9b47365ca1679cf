//! Per-chunk compression with a codec tag and a hard output cap
//! (docs/format.md, "Compressed payloads").

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::FormatError;

pub const CODEC_HEADER_LEN: usize = 5;

/// A compression codec and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    None,
    #[default]
    Lz4,
    /// zstd at level 1..=22.
    Zstd(i32),
}

impl Codec {
    fn tag(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Lz4 => 1,
            Codec::Zstd(_) => 2,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Lz4 => f.write_str("lz4"),
            Codec::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

/// The level `zstd` without a number stands for.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The least zstd level tree objects are written with. Measured over 10
/// snapshots of 100,000 files with 2% of them changed, spread over every
/// folder (bench/scale's find history): the repository grew 55.6 MiB with
/// lz4 trees, 45.7 MiB with zstd 3 and 43.9 MiB with zstd 9 (level 3 kept:
/// the 4% more that level 9 saves was not weighed against its CPU time).
pub const TREE_ZSTD_LEVEL: i32 = 3;

impl Codec {
    /// The codec for tree objects when file data uses `self`.
    ///
    /// A folder's object is names, times, modes and 32-byte chunk IDs, a
    /// few KiB at most; a backup writes one per changed folder, so the
    /// trees of snapshots whose changes are spread over every folder add up
    /// to as much as all earlier snapshots' trees. zstd's entropy coding
    /// shrinks such small records far more than lz4, and the CPU it costs
    /// is small beside the file data's (a tree object per folder against
    /// megabytes of chunks). `none` stays `none`: whoever chose it asked
    /// for no compression at all.
    pub fn for_trees(self) -> Codec {
        match self {
            Codec::None => Codec::None,
            Codec::Lz4 => Codec::Zstd(TREE_ZSTD_LEVEL),
            Codec::Zstd(level) => Codec::Zstd(level.max(TREE_ZSTD_LEVEL)),
        }
    }
}

/// `none`, `lz4`, `zstd` (level 3) or `zstd:N` with N from 1 to 22: the
/// `compression` setting of `vger.yaml` and of a repository's config.
impl FromStr for Codec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hint =
            || format!("unknown compression `{text}`; use `lz4`, `none`, `zstd` or `zstd:N` with N from 1 to 22");
        match text.trim() {
            "none" => Ok(Codec::None),
            "lz4" => Ok(Codec::Lz4),
            "zstd" => Ok(Codec::Zstd(DEFAULT_ZSTD_LEVEL)),
            other => {
                let level = other.strip_prefix("zstd:").ok_or_else(hint)?;
                let level: i32 = level.trim().parse().map_err(|_| hint())?;
                if (1..=22).contains(&level) {
                    Ok(Codec::Zstd(level))
                } else {
                    Err(format!("zstd level {level} is out of range; use 1 to 22 (3 is the default)"))
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Codec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Codec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The most [`compress_into`] appends for `len` bytes of data: reserve it
/// up front so that compressing never moves the buffer.
pub fn max_compressed_len(codec: Codec, len: usize) -> usize {
    let bound = match codec {
        Codec::None => len,
        Codec::Lz4 => lz4::bound(len),
        Codec::Zstd(_) => zstd::zstd_safe::compress_bound(len),
    };
    CODEC_HEADER_LEN + bound.max(len)
}

/// Appends the codec header and the compressed `data` to `out`. Stores the
/// data uncompressed when compression does not make it smaller.
pub fn compress_into(codec: Codec, data: &[u8], out: &mut Vec<u8>) {
    let header_at = out.len();
    out.push(0);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let payload_at = out.len();
    let codec = if looks_incompressible(data) { Codec::None } else { codec };
    let compressed = match codec {
        Codec::None => false,
        Codec::Lz4 => matches!(lz4::compress_append(data, out), Some(n) if n < data.len()),
        Codec::Zstd(level) => {
            let max = zstd::zstd_safe::compress_bound(data.len());
            out.resize(payload_at + max, 0);
            match zstd_compress(data, &mut out[payload_at..], level) {
                Ok(n) if n < data.len() => {
                    out.truncate(payload_at + n);
                    true
                }
                _ => false,
            }
        }
    };
    if compressed {
        out[header_at] = codec.tag();
    } else {
        out.truncate(payload_at);
        out.extend_from_slice(data);
    }
}

/// Whether [`compress_into`] stores `data` as it is without trying to
/// compress it: with no codec, or when it looks incompressible. The caller
/// can then seal the data where it lies, behind [`plain_header`].
pub fn stores_plain(codec: Codec, data: &[u8]) -> bool {
    codec == Codec::None || looks_incompressible(data)
}

/// The codec header [`compress_into`] writes before `len` bytes stored as
/// they are.
pub fn plain_header(len: usize) -> [u8; CODEC_HEADER_LEN] {
    let mut header = [0u8; CODEC_HEADER_LEN];
    header[0] = Codec::None.tag();
    header[1..].copy_from_slice(&(len as u32).to_le_bytes());
    header
}

thread_local! {
    // Where `looks_incompressible` compresses its samples, kept per thread.
    static SAMPLE_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    // One zstd context of each kind per thread, reused: creating one per
    // call allocated (and the kernel zeroed) about 100 KiB for every tree
    // object read, 11% + 18% of an unchanged backup's CPU samples on a
    // tree of 4,000 folders.
    static ZSTD_COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn zstd_compress(data: &[u8], out: &mut [u8], level: i32) -> std::io::Result<usize> {
    ZSTD_COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.take() {
            Some((at, compressor)) if at == level => compressor,
            _ => zstd::bulk::Compressor::new(level)?,
        };
        let (_, compressor) = slot.insert((level, compressor));
        compressor.compress_to_buffer(data, out)
    })
}

/// Decompresses a zstd body of exactly `len` bytes into a new buffer of
/// that capacity (nothing is zeroed first).
fn zstd_decompress(body: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    ZSTD_DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = match slot.take() {
            Some(decompressor) => decompressor,
            None => zstd::bulk::Decompressor::new()?,
        };
        slot.insert(decompressor).decompress(body, len)
    })
}

/// Large chunks whose samples of 64 KiB at the start, the middle and the
/// end all fail to shrink by 3% with lz4 (random or already compressed
/// data: media, archives) are stored as they are. Compressing them anyway
/// was measured at about a third of the CPU time of a backup of a typical
/// mixed tree, for nothing. The start alone is not enough: chunks of
/// shared libraries and archives often begin with a compressed section and
/// go on with text or code; judged by their start, the real corpus of
/// bench/run stored 4.3 MB (0.4%) more.
fn looks_incompressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 64 << 10;
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let middle = data.len() / 2 - SAMPLE / 2;
    SAMPLE_SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        [0, middle, data.len() - SAMPLE].iter().all(|&at| {
            scratch.clear();
            match lz4::compress_append(&data[at..at + SAMPLE], &mut scratch) {
                Some(n) => n * 100 >= SAMPLE * 97,
                None => false,
            }
        })
    })
}

/// LZ4 blocks through the reference C library (lz4-sys). Measured against
/// lz4_flex 0.14 (without `safe-encode`) on 600 MiB of /usr/share, file by
/// file: compression at the same speed (370-445 MB/s each, noisy machine)
/// and 0.2% smaller; decompression 1.3-1.75x faster (2.3-2.6 against
/// 1.5-1.9 GB/s). Its pointer interface also writes into a vector's spare
/// capacity: no zero-filling of the output first (a fresh backup's
/// profile had 2.5% of its samples in memset, not split by caller).
mod lz4 {
    use std::os::raw::{c_char, c_int};

    use crate::FormatError;

    /// The most a block of `len` bytes compresses to (`len` itself when
    /// the library cannot take it: [`compress_append`] then declines).
    pub(super) fn bound(len: usize) -> usize {
        match c_int::try_from(len) {
            // SAFETY: a pure function of its argument.
            Ok(n) => usize::try_from(unsafe { lz4_sys::LZ4_compressBound(n) }).unwrap_or(0).max(len),
            Err(_) => len,
        }
    }

    /// Appends the LZ4 block of `data` to `out`; its length, or `None`
    /// when the library declines (an input over 2 GiB: stored as it is).
    pub(super) fn compress_append(data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let src_len = c_int::try_from(data.len()).ok()?;
        let max = bound(data.len());
        let dst_cap = c_int::try_from(max).ok()?;
        out.reserve(max);
        let at = out.len();
        // SAFETY: `data` is readable for `src_len` bytes and the spare
        // capacity of `out` writable for `max` (reserved above); the library
        // writes at most `dst_cap` bytes there and returns how many (0 on
        // failure), and only those become part of the vector.
        let n = unsafe {
            let dst = out.as_mut_ptr().add(at) as *mut c_char;
            lz4_sys::LZ4_compress_default(data.as_ptr() as *const c_char, dst, src_len, dst_cap)
        };
        let n = usize::try_from(n).ok().filter(|n| *n > 0 && *n <= max)?;
        // SAFETY: the library initialised these `n` bytes (checked <= max).
        unsafe { out.set_len(at + n) };
        Some(n)
    }

    /// Appends the decompressed block `body` to `out`: exactly `len` bytes
    /// or an error, whatever the block holds (the library never writes
    /// past `len` nor reads past `body`).
    pub(super) fn decompress_append(body: &[u8], len: usize, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let too_large = || FormatError::corrupt("lz4 payload", "too large for one block");
        let src_len = c_int::try_from(body.len()).map_err(|_| too_large())?;
        let dst_cap = c_int::try_from(len).map_err(|_| too_large())?;
        out.reserve(len);
        let at = out.len();
        // SAFETY: `body` is readable for `src_len` bytes, the spare capacity
        // of `out` writable for `len` (reserved above). LZ4_decompress_safe
        // is the variant made for untrusted input: it stays within both
        // buffers and returns the bytes written, or a negative number.
        let n = unsafe {
            let dst = out.as_mut_ptr().add(at) as *mut c_char;
            lz4_sys::LZ4_decompress_safe(body.as_ptr() as *const c_char, dst, src_len, dst_cap)
        };
        match usize::try_from(n) {
            Ok(n) if n == len => {
                // SAFETY: the library initialised exactly `len` bytes.
                unsafe { out.set_len(at + n) };
                Ok(())
            }
            Ok(n) => Err(FormatError::corrupt("lz4 payload", format!("decompressed to {n} bytes, header says {len}"))),
            Err(_) => Err(FormatError::corrupt("lz4 payload", "malformed block")),
        }
    }
}

/// The codec header and compressed data as a new vector.
pub fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CODEC_HEADER_LEN + data.len() / 2);
    compress_into(codec, data, &mut out);
    out
}

/// The uncompressed length a payload claims, checked against `cap`.
pub fn uncompressed_len(payload: &[u8], cap: usize) -> Result<usize, FormatError> {
    if payload.len() < CODEC_HEADER_LEN {
        return Err(FormatError::corrupt("compressed payload", "shorter than its header"));
    }
    let len = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]) as usize;
    if len > cap {
        return Err(FormatError::TooLarge { size: len as u64, cap: cap as u64 });
    }
    Ok(len)
}

/// The plaintext of a payload made by [`compress_into`] without copying a
/// stored (uncompressed) body: borrowed from `payload` then, otherwise
/// decompressed into `scratch` (reused across calls). Never produces more
/// than `cap` bytes, whatever the input claims.
pub fn decompress_ref<'a>(payload: &'a [u8], cap: usize, scratch: &'a mut Vec<u8>) -> Result<&'a [u8], FormatError> {
    let len = uncompressed_len(payload, cap)?;
    let body = &payload[CODEC_HEADER_LEN..];
    let out: &[u8] = match payload[0] {
        0 => body,
        1 => {
            scratch.clear();
            lz4::decompress_append(body, len, scratch)?;
            &scratch[..]
        }
        _ => {
            *scratch = decompress(payload, cap)?;
            scratch
        }
    };
    if out.len() != len {
        return Err(FormatError::corrupt(
            "compressed payload",
            format!("decompressed to {} bytes, header says {len}", out.len()),
        ));
    }
    Ok(out)
}

/// Decompresses a payload made by [`compress_into`]. Never produces more
/// than `cap` bytes, whatever the input claims.
pub fn decompress(payload: &[u8], cap: usize) -> Result<Vec<u8>, FormatError> {
    let len = uncompressed_len(payload, cap)?;
    let body = &payload[CODEC_HEADER_LEN..];
    let out = match payload[0] {
        0 => body.to_vec(),
        1 => {
            let mut out = Vec::new();
            lz4::decompress_append(body, len, &mut out)?;
            out
        }
        2 => zstd_decompress(body, len).map_err(|e| FormatError::corrupt("zstd payload", e))?,
        other => return Err(FormatError::corrupt("compressed payload", format!("unknown codec tag {other}"))),
    };
    if out.len() != len {
        return Err(FormatError::corrupt(
            "compressed payload",
            format!("decompressed to {} bytes, header says {len}", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Codec;

    /// A chunk that starts with random bytes and goes on with text is
    /// compressed; one of random bytes throughout is stored as it is.
    #[test]
    fn judges_a_chunk_by_more_than_its_start() {
        let mut noise = vec![0u8; 512 << 10];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert!(super::looks_incompressible(&noise));
        let mut mixed = noise[..128 << 10].to_vec();
        mixed.extend(b"plain text compresses well. ".iter().cycle().take(384 << 10));
        assert!(!super::looks_incompressible(&mixed));
        assert!(super::compress(Codec::Lz4, &mixed).len() < mixed.len() / 2);
        assert_eq!(super::compress(Codec::Lz4, &noise).len(), super::CODEC_HEADER_LEN + noise.len());
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!("lz4".parse::<Codec>().unwrap(), Codec::Lz4);
        assert_eq!("none".parse::<Codec>().unwrap(), Codec::None);
        assert_eq!("zstd".parse::<Codec>().unwrap(), Codec::Zstd(3));
        assert_eq!(" zstd:19 ".parse::<Codec>().unwrap(), Codec::Zstd(19));
        assert_eq!(Codec::Zstd(7).to_string(), "zstd:7");
        assert_eq!(Codec::default().to_string(), "lz4");
        assert!("zstd:0".parse::<Codec>().is_err());
        assert!("zstd:23".parse::<Codec>().is_err());
        assert!("zstd:x".parse::<Codec>().is_err());
        assert!("gzip".parse::<Codec>().is_err());
    }

    /// LZ4 round trips through both readers; a payload appended after
    /// other bytes and a reused scratch buffer hold exactly the data.
    #[test]
    fn lz4_round_trips_into_reused_buffers() {
        let text: Vec<u8> =
            b"the quick brown fox jumps over the lazy dog; ".iter().cycle().take(300_000).copied().collect();
        let mut out = b"prefix".to_vec();
        super::compress_into(Codec::Lz4, &text, &mut out);
        assert_eq!(out[6], Codec::Lz4.tag());
        assert!(out.len() < text.len() / 4);
        let payload = &out[6..];
        assert_eq!(super::decompress(payload, 1 << 20).unwrap(), text);
        let mut scratch = vec![7u8; 1 << 20];
        assert_eq!(super::decompress_ref(payload, 1 << 20, &mut scratch).unwrap(), &text[..]);
        let small = super::compress(Codec::Lz4, b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(super::decompress_ref(&small, 1 << 20, &mut scratch).unwrap(), &[b'a'; 52][..]);
    }

    /// Damaged or hostile LZ4 payloads are errors, never a panic or more
    /// output than the header claims.
    #[test]
    fn hostile_lz4_payloads_are_refused() {
        let text: Vec<u8> = b"0123456789abcdef".iter().cycle().take(100_000).copied().collect();
        let good = super::compress(Codec::Lz4, &text);
        let mut scratch = Vec::new();
        // Cut short: right after the header, one byte in, halfway, one byte short.
        for cut in [super::CODEC_HEADER_LEN, super::CODEC_HEADER_LEN + 1, good.len() / 2, good.len() - 1] {
            assert!(super::decompress(&good[..cut], 1 << 20).is_err(), "cut at {cut}");
            assert!(super::decompress_ref(&good[..cut], 1 << 20, &mut scratch).is_err(), "cut at {cut}");
        }
        // A header that claims less or more than the block holds.
        for claim in [text.len() as u32 - 1, text.len() as u32 + 1, 0] {
            let mut bad = good.clone();
            bad[1..5].copy_from_slice(&claim.to_le_bytes());
            assert!(super::decompress(&bad, 1 << 20).is_err(), "claim {claim}");
            assert!(super::decompress_ref(&bad, 1 << 20, &mut scratch).is_err(), "claim {claim}");
        }
        // A claim past the cap is refused before anything is allocated.
        assert!(super::decompress(&good, 1000).is_err());
        // Garbage bodies of every byte value.
        for fill in 0..=255u8 {
            let mut bad = vec![Codec::Lz4.tag()];
            bad.extend_from_slice(&4096u32.to_le_bytes());
            bad.extend(std::iter::repeat_n(fill, 64));
            assert!(super::decompress(&bad, 1 << 20).is_err(), "fill {fill}");
        }
    }
}
