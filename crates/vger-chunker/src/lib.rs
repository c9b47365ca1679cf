//! Content-defined chunking for vger: FastCDC (the 2020 variant, from the
//! `fastcdc` crate pinned at 5.0.0) applied to a stream read in large blocks.
//!
//! Cut points are part of the repository format: the same bytes must give the
//! same chunks in every version, or deduplication against old backups stops.
//! [`ChunkReader`] therefore accepts a cut only when the chunker found it
//! before the end of the bytes it was shown, or saw `max_size` bytes past the
//! chunk start, or the end of the stream. FastCDC's scan decides at each byte
//! from the bytes before it alone, so a longer window would stop at the same
//! byte; the output is identical to chunking the whole stream as one slice
//! (a property test checks this).
//!
//! ```
//! use vger_chunker::{ChunkReader, ChunkerParams};
//! let data = vec![7u8; 100_000];
//! let params = ChunkerParams { min_size: 4096, avg_size: 16384, max_size: 65536 };
//! let mut reader = ChunkReader::new(&data[..], params).unwrap();
//! let mut total = 0;
//! while let Some(chunk) = reader.next_chunk().unwrap() {
//!     total += chunk.len();
//! }
//! assert_eq!(total, data.len());
//! ```

use std::io::{self, Read};
use std::sync::OnceLock;

use fastcdc::v2020::{cut, get_gear_with_seed, select_masks, Normalization};
use thiserror::Error;

/// Minimum, average and maximum chunk size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl ChunkerParams {
    /// File data: 512 KiB / 2 MiB / 8 MiB.
    pub const DATA: ChunkerParams = ChunkerParams { min_size: 512 << 10, avg_size: 2 << 20, max_size: 8 << 20 };
    /// Snapshot metadata streams: 16 / 64 / 256 KiB.
    pub const TREE: ChunkerParams = ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 };
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChunkerError {
    #[error("chunker sizes must satisfy 64 B <= min <= avg <= max <= 16 MiB, avg >= 256 B and max >= 1 KiB, and all be even; got min {min}, avg {avg}, max {max}")]
    InvalidParams { min: u32, avg: u32, max: u32 },
}

/// Finds cut points. Cheap to clone; holds only the parameters and masks.
#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    pub fn new(p: ChunkerParams) -> Result<Self, ChunkerError> {
        let bad = || ChunkerError::InvalidParams { min: p.min_size, avg: p.avg_size, max: p.max_size };
        let (min, avg, max) = (p.min_size as usize, p.avg_size as usize, p.max_size as usize);
        let even = min % 2 == 0 && avg % 2 == 0 && max % 2 == 0;
        let ordered = min <= avg && avg <= max;
        let in_range = (fastcdc::v2020::MINIMUM_MIN..=fastcdc::v2020::MINIMUM_MAX).contains(&min)
            && (fastcdc::v2020::AVERAGE_MIN..=fastcdc::v2020::AVERAGE_MAX).contains(&avg)
            && (fastcdc::v2020::MAXIMUM_MIN..=fastcdc::v2020::MAXIMUM_MAX).contains(&max);
        if !(even && ordered && in_range) {
            return Err(bad());
        }
        let (mask_s, mask_l) = select_masks(avg, Normalization::Level1);
        Ok(Self { min, avg, max, mask_s, mask_l })
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length of the next chunk at the start of `window`, or `None` when more
    /// data is needed to decide (no cut point in a window shorter than
    /// `max_size`, and not at the end of the stream). An empty window gives
    /// `None`.
    ///
    /// A cut found before the end of a short window is final: the scan
    /// tests each position from the bytes before it (the mask switches at
    /// `avg_size` from the chunk start, whatever the window's length), so
    /// more bytes would not move it. Waiting for `max_size` bytes instead
    /// made [`ChunkReader`] refill whenever fewer were left, moving up to
    /// `max_size` bytes each time, and need a buffer of two maximum chunks.
    /// The price: the bytes after the last cut in the buffer are scanned
    /// again after the refill.
    pub fn next_cut(&self, window: &[u8], at_end: bool) -> Option<usize> {
        if window.is_empty() {
            return None;
        }
        let (_, len) =
            cut(window, self.min, self.avg, self.max, self.mask_s, self.mask_l, self.mask_s << 1, self.mask_l << 1);
        let len = len.max(1).min(window.len());
        // `cut` returns the whole window (at most `max_size`) when it found
        // no cut point in it.
        (len < window.len() || window.len() >= self.max || at_end).then_some(len)
    }

    /// A scan for [`Chunker::resume_cut`] at the start of a chunk.
    pub fn scan(&self) -> Scan {
        Scan { pair: self.min / 2, hash: 0 }
    }

    /// [`Chunker::next_cut`] for a window that begins at a chunk's start and
    /// only grows from call to call with the same `scan`: the bytes shown
    /// before are not scanned again. Returns what `next_cut` would for the
    /// same window; start a new [`Chunker::scan`] after each cut.
    ///
    /// The loop is FastCDC 2020's as the `fastcdc` crate runs it (two bytes
    /// per round, the gear hash shifted left once per byte, the strict mask
    /// for pairs before `avg_size / 2`, then the relaxed one). Whether a
    /// pair is a cut depends only on the bytes up to it, so the scan can stop
    /// at the end of the bytes read so far and go on when more come. The
    /// tests hold it to the crate's `cut` on the same data.
    pub fn resume_cut(&self, scan: &mut Scan, window: &[u8], at_end: bool) -> Option<usize> {
        let n = window.len();
        if n == 0 {
            return None;
        }
        if n <= self.min {
            return at_end.then_some(n);
        }
        let remaining = n.min(self.max);
        // A pair is tested once both of its bytes are in the window; the
        // last byte of an odd final window never is.
        let src = &window[..remaining];
        let limit = remaining / 2;
        let (gear, gear_ls) = gear_tables();
        let (mask_s, mask_l) = (self.mask_s, self.mask_l);
        let (mask_s_ls, mask_l_ls) = (mask_s << 1, mask_l << 1);
        let (mut pair, mut hash) = (scan.pair, scan.hash);
        let strict_until = (self.avg / 2).min(limit);
        let found = 'scan: {
            while pair < strict_until {
                let a = pair * 2;
                hash = (hash << 2).wrapping_add(gear_ls[usize::from(src[a])]);
                if hash & mask_s_ls == 0 {
                    break 'scan Some(a);
                }
                hash = hash.wrapping_add(gear[usize::from(src[a + 1])]);
                if hash & mask_s == 0 {
                    break 'scan Some(a + 1);
                }
                pair += 1;
            }
            while pair < limit {
                let a = pair * 2;
                hash = (hash << 2).wrapping_add(gear_ls[usize::from(src[a])]);
                if hash & mask_l_ls == 0 {
                    break 'scan Some(a);
                }
                hash = hash.wrapping_add(gear[usize::from(src[a + 1])]);
                if hash & mask_l == 0 {
                    break 'scan Some(a + 1);
                }
                pair += 1;
            }
            None
        };
        *scan = Scan { pair, hash };
        match found {
            Some(len) => Some(len.max(1)),
            None => (at_end || n >= self.max).then_some(remaining),
        }
    }

    /// Chunk boundaries of a whole in-memory slice (used for metadata
    /// streams, which are built in memory, and by tests).
    pub fn chunk_lengths(&self, data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(len) = self.next_cut(&data[pos..], true) {
            out.push(len);
            pos += len;
        }
        out
    }
}

/// Where a [`Chunker::resume_cut`] scan stopped: the next pair of bytes to
/// test and the gear hash so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pair: usize,
    hash: u64,
}

/// FastCDC 2020's gear tables as the `fastcdc` crate has them (seed 0), and
/// the same shifted left by one.
fn gear_tables() -> &'static ([u64; 256], [u64; 256]) {
    static TABLES: OnceLock<([u64; 256], [u64; 256])> = OnceLock::new();
    TABLES.get_or_init(|| {
        let (gear, gear_ls) = get_gear_with_seed(0);
        let (mut a, mut b) = ([0u64; 256], [0u64; 256]);
        a.iter_mut().zip(gear.iter()).for_each(|(d, s)| *d = *s);
        b.iter_mut().zip(gear_ls.iter()).for_each(|(d, s)| *d = *s);
        (a, b)
    })
}

/// The smallest buffer [`ChunkReader`] uses: one maximum chunk and a
/// quarter. A refill happens only when the window holds no cut point and is
/// shorter than `max_size`, so it moves less than `max_size` bytes and reads
/// at least a quarter of one. Measured against two maximum chunks (16 MiB
/// for file data) on fresh backups, alternating (1fe33b5 against d15b80d,
/// which also moved the walk): CPU 5.66 -> 5.58 s and peak RSS 110 -> 103
/// MiB on 1.8 GiB of system files, 5.58 -> 5.52 s and 94 -> 85 MiB on the
/// 2 GiB synthetic corpus (medians of 4-5 runs).
fn buffer_for(chunker: &Chunker) -> usize {
    chunker.max + chunker.max / 4
}

/// Reads a stream in large blocks and hands out its chunks in order.
pub struct ChunkReader<R: Read> {
    source: R,
    chunker: Chunker,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    at_end: bool,
    /// How far the current chunk has been scanned.
    scan: Scan,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(source: R, params: ChunkerParams) -> Result<Self, ChunkerError> {
        let chunker = Chunker::new(params)?;
        let cap = buffer_for(&chunker).max(1 << 20);
        Ok(Self::with_chunker(source, chunker, cap))
    }

    pub fn with_chunker(source: R, chunker: Chunker, buffer_size: usize) -> Self {
        Self::with_buffer(source, chunker, Vec::new(), buffer_size)
    }

    /// Reuses `buf` (from [`ChunkReader::into_buffer`] of the previous
    /// file): zeroing a fresh 16 MiB buffer for every file was measured at
    /// nearly half the CPU time of a backup of many small files.
    pub fn with_buffer(source: R, chunker: Chunker, mut buf: Vec<u8>, buffer_size: usize) -> Self {
        let cap = buffer_size.max(buffer_for(&chunker));
        if buf.is_empty() {
            // Zeroed by the allocator (fresh pages): memory is only touched
            // as far as reads fill it, which keeps small files cheap.
            buf = vec![0; cap];
        } else if buf.len() < cap {
            buf.resize(cap, 0);
        }
        let scan = chunker.scan();
        Self { source, chunker, buf, start: 0, end: 0, at_end: false, scan }
    }

    /// Gives the buffer back for the next file.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(len) = self.chunker.resume_cut(&mut self.scan, window, self.at_end) {
                self.scan = self.chunker.scan();
                let chunk_start = self.start;
                self.start += len;
                return Ok(Some(&self.buf[chunk_start..chunk_start + len]));
            }
            if self.at_end {
                return Ok(None);
            }
            self.refill()?;
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < self.buf.len() {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.at_end = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gives back the source (for example to inspect its state after EOF).
    pub fn into_inner(self) -> R {
        self.source
    }
}

/// Push-style chunking of a stream built in memory (the snapshot tree): bytes
/// go in with [`ChunkBuffer::push`], finished chunks come out. Cut points are
/// the same as chunking the whole stream at once.
/// How much [`OwnedChunkReader`] reads at a time once a chunk holds its
/// minimum size: the bytes read past a cut point, half of this on average,
/// are what it copies.
pub const OWNED_READ_STEP: usize = 256 << 10;

/// Reads a stream chunk by chunk into buffers the caller keeps. Each
/// chunk's bytes are read straight into a buffer of its own, behind `room`
/// bytes the caller may use (headers, say), and only the bytes read past
/// its cut point are copied, to the start of the next chunk's buffer:
/// [`ChunkReader`] hands out slices of one shared buffer, which a caller
/// that keeps the chunk must copy whole.
///
/// `read(buf, n)` appends at most `n` bytes to `buf` (it has the capacity)
/// and returns how many; 0 means the stream ended. [`append_with`] makes
/// one from any [`Read`]; a file can be read into the spare capacity
/// without zeroing it first.
pub struct OwnedChunkReader<F> {
    read: F,
    chunker: Chunker,
    room: usize,
    tail_room: usize,
    /// `room` bytes, then the current chunk's bytes read so far (and any
    /// past its cut point, once found).
    buf: Vec<u8>,
    scan: Scan,
    at_end: bool,
    /// A buffer handed back ([`OwnedChunkReader::recycle`]) for the next chunk.
    spare: Option<Vec<u8>>,
    /// How many more bytes may be read, if the stream was given a length.
    left: Option<u64>,
}

impl<F: FnMut(&mut Vec<u8>, usize) -> io::Result<usize>> OwnedChunkReader<F> {
    /// Chunks come with `room` zero bytes before them and capacity for
    /// `tail_room` more after them. `spare`, if large enough, holds the
    /// first (see [`OwnedChunkReader::into_spare`]).
    pub fn new(read: F, chunker: Chunker, room: usize, tail_room: usize, spare: Option<Vec<u8>>) -> Self {
        let scan = chunker.scan();
        let mut reader =
            Self { read, chunker, room, tail_room, buf: Vec::new(), scan, at_end: false, spare, left: None };
        reader.buf = reader.fresh(0);
        reader
    }

    /// Reads at most `limit` bytes of the stream (a file's size when it was
    /// opened, say): no chunk's buffer is larger than what is left of that.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.left = Some(limit);
        let buf = std::mem::take(&mut self.buf);
        self.recycle(buf);
        self.buf = self.fresh(0);
        self
    }

    /// A buffer for one chunk, with room for most chunks: the minimum and
    /// the average size and a step. A chunk that goes on past that has its
    /// buffer grown once, to the most it can need (`max_size` and a step).
    /// Buffers of the largest size for every chunk kept far more memory in
    /// use: peak RSS of a fresh backup of bench/run's synthetic corpus 121
    /// MiB against 76 with one shared buffer and copies (the allocator keeps
    /// the pages of a freed buffer, and a later buffer in the same place
    /// reads into more of them); with this capacity 86 MiB (real corpus:
    /// 109 against 102; starting at the minimum and half the average size
    /// measured the same). A recycled buffer is taken if it is large enough.
    /// With a limit, a buffer is no larger than the `carried` bytes (read
    /// past the last cut) and what is left to read.
    fn fresh(&mut self, carried: usize) -> Vec<u8> {
        let usual = self.usual_capacity();
        let capacity = match self.left {
            Some(left) => {
                let most = (carried as u64).saturating_add(left).saturating_add((self.room + self.tail_room) as u64);
                usize::try_from(most).map_or(usual, |most| most.min(usual))
            }
            None => usual,
        };
        let mut buf = match self.spare.take() {
            Some(mut buf) if buf.capacity() >= capacity => {
                buf.clear();
                buf
            }
            _ => Vec::with_capacity(capacity),
        };
        buf.resize(self.room, 0);
        buf
    }

    /// The capacity of a buffer that was not grown (see `fresh`).
    fn usual_capacity(&self) -> usize {
        self.room + (self.chunker.min + self.chunker.avg).min(self.chunker.max) + OWNED_READ_STEP + self.tail_room
    }

    /// Takes back a chunk's buffer the caller has no use for (a chunk the
    /// repository already holds), to read a later chunk into. A grown one
    /// is freed instead: kept, it would keep its pages in use.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() == self.usual_capacity() {
            self.spare = Some(buf);
        }
    }

    /// A buffer for a later reader to use (the stream need not have ended).
    pub fn into_spare(mut self) -> Option<Vec<u8>> {
        let buf = std::mem::take(&mut self.buf);
        self.recycle(buf);
        self.spare.take()
    }

    /// The next chunk, `room` bytes into the buffer; `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let window = &self.buf[self.room..];
            if let Some(len) = self.chunker.resume_cut(&mut self.scan, window, self.at_end) {
                self.scan = self.chunker.scan();
                let mut next = self.fresh(self.buf.len() - self.room - len);
                next.extend_from_slice(&self.buf[self.room + len..]);
                self.buf.truncate(self.room + len);
                return Ok(Some(std::mem::replace(&mut self.buf, next)));
            }
            if self.at_end {
                return Ok(None);
            }
            // No cut point yet, so less than `max_size` is held: read up
            // to the minimum size and a step, or one more step.
            let held = self.buf.len() - self.room;
            let want =
                if held < self.chunker.min { self.chunker.min - held + OWNED_READ_STEP } else { OWNED_READ_STEP };
            let want = self.left.map_or(want, |left| usize::try_from(left).map_or(want, |left| left.min(want)));
            if self.buf.capacity() < self.buf.len() + want + self.tail_room {
                let most = self.room + self.chunker.max + OWNED_READ_STEP + self.tail_room;
                self.buf.reserve_exact(most.saturating_sub(self.buf.len()));
            }
            let got = if want == 0 { 0 } else { (self.read)(&mut self.buf, want)? };
            if got == 0 {
                self.at_end = true;
            }
            if let Some(left) = &mut self.left {
                *left = left.saturating_sub(got as u64);
            }
        }
    }
}

/// An appending reader for [`OwnedChunkReader`] over any [`Read`]: it zeroes
/// the bytes it reads into first (a file can skip that; see the engine's
/// use).
pub fn append_with<R: Read>(mut source: R) -> impl FnMut(&mut Vec<u8>, usize) -> io::Result<usize> {
    move |buf, n| {
        let start = buf.len();
        buf.resize(start + n, 0);
        let got = loop {
            match source.read(&mut buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        buf.truncate(start + *got.as_ref().unwrap_or(&0));
        got
    }
}

#[derive(Debug)]
pub struct ChunkBuffer {
    chunker: Chunker,
    buf: Vec<u8>,
}

impl ChunkBuffer {
    pub fn new(params: ChunkerParams) -> Result<Self, ChunkerError> {
        Ok(Self { chunker: Chunker::new(params)?, buf: Vec::new() })
    }

    /// Bytes waiting for a cut.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes and calls `emit` for every chunk that is now final.
    pub fn push<E>(&mut self, data: &[u8], emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.buf.extend_from_slice(data);
        // Only cut once several maximum chunks are buffered: fewer moves.
        if self.buf.len() >= 4 * self.chunker.max_size() {
            self.drain(false, emit)?;
        }
        Ok(())
    }

    /// Emits everything that is left, ending the stream.
    pub fn finish<E>(mut self, emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.drain(true, emit)
    }

    fn drain<E>(&mut self, at_end: bool, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut pos = 0;
        while let Some(len) = self.chunker.next_cut(&self.buf[pos..], at_end) {
            emit(&self.buf[pos..pos + len])?;
            pos += len;
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
