#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

/// A reader that returns at most `step` bytes per call, to exercise refills.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs of zeros (no cut point: chunks forced at `max_size`), each followed
/// by a random stretch: `(zeros, random)` lengths.
fn zero_runs(runs: &[(usize, usize)], seed: u64) -> Vec<u8> {
    let mut data = Vec::new();
    for (i, (zeros, random)) in runs.iter().enumerate() {
        data.resize(data.len() + zeros, 0);
        data.extend_from_slice(&pseudo_random(*random, seed ^ i as u64));
    }
    data
}

const SMALL: ChunkerParams = ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 16384 };

fn stream_lengths(data: &[u8], params: ChunkerParams, step: usize, buffer: usize) -> Vec<usize> {
    let chunker = Chunker::new(params).unwrap();
    let mut reader = ChunkReader::with_chunker(Trickle { data, step }, chunker, buffer);
    let mut out = Vec::new();
    while let Some(c) = reader.next_chunk().unwrap() {
        out.push(c.len());
    }
    out
}

proptest! {
    #[test]
    fn chunks_cover_input_without_gaps_and_respect_bounds(len in 0usize..200_000, seed in any::<u64>(), step in 1usize..70_000) {
        let data = pseudo_random(len, seed);
        let lengths = stream_lengths(&data, SMALL, step, 0);
        prop_assert_eq!(lengths.iter().sum::<usize>(), data.len());
        for (i, l) in lengths.iter().enumerate() {
            prop_assert!(*l <= SMALL.max_size as usize);
            if i + 1 < lengths.len() {
                prop_assert!(*l >= SMALL.min_size as usize);
            }
            prop_assert!(*l > 0);
        }
    }

    #[test]
    fn streaming_matches_whole_slice_chunking(len in 0usize..300_000, seed in any::<u64>(), step in 1usize..100_000, buffer in 0usize..100_000) {
        let data = pseudo_random(len, seed);
        let whole = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        let streamed = stream_lengths(&data, SMALL, step, buffer);
        prop_assert_eq!(whole, streamed);
    }

    /// Runs of zeros (no cut point: chunks forced at `max_size`) between
    /// random stretches, so cuts are found both early in short windows and
    /// only at the maximum.
    #[test]
    fn streaming_matches_whole_slice_chunking_with_zero_runs(
        runs in proptest::collection::vec((0usize..40_000, 0usize..40_000), 0..8),
        seed in any::<u64>(),
        step in 1usize..100_000,
        buffer in 0usize..100_000,
    ) {
        let data = zero_runs(&runs, seed);
        let whole = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        let streamed = stream_lengths(&data, SMALL, step, buffer);
        prop_assert_eq!(whole, streamed);
    }

    #[test]
    fn deterministic(len in 0usize..100_000, seed in any::<u64>()) {
        let data = pseudo_random(len, seed);
        let a = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        let b = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn insertion_near_start_keeps_later_chunks() {
    let data = pseudo_random(400_000, 3);
    let mut shifted = data[..1000].to_vec();
    shifted.extend_from_slice(b"inserted bytes");
    shifted.extend_from_slice(&data[1000..]);
    let chunker = Chunker::new(SMALL).unwrap();
    let boundaries = |d: &[u8]| -> Vec<Vec<u8>> {
        let mut pos = 0;
        chunker
            .chunk_lengths(d)
            .into_iter()
            .map(|l| {
                let c = d[pos..pos + l].to_vec();
                pos += l;
                c
            })
            .collect()
    };
    let a = boundaries(&data);
    let b = boundaries(&shifted);
    let shared = b.iter().filter(|c| a.contains(c)).count();
    assert!(shared * 10 >= a.len() * 8, "only {shared} of {} chunks survived an insertion", a.len());
}

/// Golden cut points: these numbers are part of the repository format. If
/// this test fails, deduplication against existing repositories breaks.
#[test]
fn golden_cut_points_default_params() {
    let data = pseudo_random(24 << 20, 42);
    let lengths = Chunker::new(ChunkerParams::DATA).unwrap().chunk_lengths(&data);
    assert_eq!(lengths.iter().sum::<usize>(), 24 << 20);
    let digest = blake3_like_fingerprint(&lengths);
    assert_eq!((lengths.len(), digest), GOLDEN_DATA);
}

#[test]
fn golden_cut_points_tree_params() {
    let data = pseudo_random(2 << 20, 7);
    let lengths = Chunker::new(ChunkerParams::TREE).unwrap().chunk_lengths(&data);
    assert_eq!((lengths.len(), blake3_like_fingerprint(&lengths)), GOLDEN_TREE);
}

fn blake3_like_fingerprint(lengths: &[usize]) -> u64 {
    // FNV-1a over the lengths: enough to pin the exact sequence.
    let mut h: u64 = 0xcbf29ce484222325;
    for l in lengths {
        for b in (*l as u64).to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

const GOLDEN_DATA: (usize, u64) = (13, 8251275445526287872);
const GOLDEN_TREE: (usize, u64) = (22, 1138151100311444686);

#[test]
fn invalid_params_are_refused() {
    assert!(Chunker::new(ChunkerParams { min_size: 4096, avg_size: 1024, max_size: 8192 }).is_err());
    assert!(Chunker::new(ChunkerParams { min_size: 4095, avg_size: 8192, max_size: 16384 }).is_err());
    assert!(Chunker::new(ChunkerParams { min_size: 4096, avg_size: 8192, max_size: 64 << 20 }).is_err());
}

proptest! {
    #[test]
    fn chunk_buffer_matches_whole_slice(len in 0usize..200_000, seed in any::<u64>(), step in 1usize..30_000) {
        let data = pseudo_random(len, seed);
        let whole = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        let mut buffer = ChunkBuffer::new(SMALL).unwrap();
        let mut got = Vec::new();
        for piece in data.chunks(step) {
            buffer.push::<()>(piece, |c| { got.push(c.len()); Ok(()) }).unwrap();
        }
        buffer.finish::<()>(|c| { got.push(c.len()); Ok(()) }).unwrap();
        prop_assert_eq!(whole, got);
    }
}

/// Chunks of `data` through [`OwnedChunkReader`], reading at most `step`
/// bytes per call; checks each buffer's room and spare capacity.
fn owned_chunks(data: &[u8], params: ChunkerParams, step: usize, room: usize) -> Vec<Vec<u8>> {
    owned_chunks_up_to(data, params, step, room, None)
}

fn owned_chunks_up_to(
    data: &[u8],
    params: ChunkerParams,
    step: usize,
    room: usize,
    limit: Option<u64>,
) -> Vec<Vec<u8>> {
    let chunker = Chunker::new(params).unwrap();
    let mut reader = OwnedChunkReader::new(append_with(Trickle { data, step }), chunker, room, 16, None);
    if let Some(limit) = limit {
        reader = reader.with_limit(limit);
    }
    let mut out = Vec::new();
    while let Some(buf) = reader.next_chunk().unwrap() {
        assert!(buf[..room].iter().all(|b| *b == 0), "the room is not zero");
        assert!(buf.capacity() >= buf.len() + 16, "no room for the tail");
        out.push(buf[room..].to_vec());
        // Half the buffers come back, as the backup hands back duplicates'.
        if out.len() % 2 == 0 {
            reader.recycle(buf);
        }
    }
    out
}

proptest! {
    /// The owned reader cuts exactly where whole-slice chunking does (the
    /// `fastcdc` crate's `cut`), however the stream arrives, and hands out
    /// every byte once, in order.
    #[test]
    fn owned_chunks_match_whole_slice_chunking(
        runs in proptest::collection::vec((0usize..40_000, 0usize..60_000), 0..8),
        seed in any::<u64>(),
        step in 1usize..100_000,
        room in 0usize..40,
    ) {
        let data = zero_runs(&runs, seed);
        let whole = Chunker::new(SMALL).unwrap().chunk_lengths(&data);
        let chunks = owned_chunks(&data, SMALL, step, room);
        prop_assert_eq!(whole, chunks.iter().map(Vec::len).collect::<Vec<_>>());
        prop_assert_eq!(chunks.concat(), data);
    }

    /// With a limit, the reader chunks exactly the first `limit` bytes (a
    /// file that grew after it was opened is stored as it was).
    #[test]
    fn owned_chunks_stop_at_the_limit(len in 0usize..120_000, seed in any::<u64>(), step in 1usize..50_000, cut in 0usize..130_000) {
        let data = pseudo_random(len, seed);
        let limit = cut.min(len);
        let whole = Chunker::new(SMALL).unwrap().chunk_lengths(&data[..limit]);
        let chunks = owned_chunks_up_to(&data, SMALL, step, 8, Some(limit as u64));
        prop_assert_eq!(whole, chunks.iter().map(Vec::len).collect::<Vec<_>>());
        prop_assert_eq!(chunks.concat(), &data[..limit]);
    }

    /// A window that grows in random steps, scanned with one resumed scan,
    /// gets the answer `next_cut` gives for each window from scratch.
    #[test]
    fn a_resumed_scan_answers_like_a_fresh_one(len in 0usize..40_000, seed in any::<u64>(), steps in proptest::collection::vec(1usize..5_000, 1..40)) {
        let data = pseudo_random(len, seed);
        let chunker = Chunker::new(SMALL).unwrap();
        let mut scan = chunker.scan();
        let mut end = 0;
        for step in steps {
            end = (end + step).min(data.len());
            for at_end in [false, true] {
                let mut probe = scan;
                prop_assert_eq!(chunker.resume_cut(&mut probe, &data[..end], at_end), chunker.next_cut(&data[..end], at_end));
            }
            if chunker.resume_cut(&mut scan, &data[..end], false).is_some() {
                break;
            }
        }
    }
}

/// The golden cut points hold through the owned reader too.
#[test]
fn golden_cut_points_through_the_owned_reader() {
    let data = pseudo_random(24 << 20, 42);
    let lengths: Vec<usize> = owned_chunks(&data, ChunkerParams::DATA, 1 << 20, 17).iter().map(Vec::len).collect();
    assert_eq!((lengths.len(), blake3_like_fingerprint(&lengths)), GOLDEN_DATA);
    let data = pseudo_random(2 << 20, 7);
    let lengths: Vec<usize> = owned_chunks(&data, ChunkerParams::TREE, 4096, 0).iter().map(Vec::len).collect();
    assert_eq!((lengths.len(), blake3_like_fingerprint(&lengths)), GOLDEN_TREE);
}

/// Not a test of behaviour: the resumable scan must be no slower than the
/// `fastcdc` crate's. `cargo test --release -p vger-chunker -- --ignored
/// --nocapture scan_speed`.
#[test]
#[ignore]
fn scan_speed() {
    let data = pseudo_random(512 << 20, 1);
    let chunker = Chunker::new(ChunkerParams::DATA).unwrap();
    for round in 0..3 {
        let t = std::time::Instant::now();
        let whole = chunker.chunk_lengths(&data);
        let crate_time = t.elapsed();
        let t = std::time::Instant::now();
        let (mut pos, mut resumed) = (0, Vec::new());
        while pos < data.len() {
            let mut scan = chunker.scan();
            let len = chunker.resume_cut(&mut scan, &data[pos..], true).unwrap();
            resumed.push(len);
            pos += len;
        }
        let own_time = t.elapsed();
        assert_eq!(whole, resumed);
        println!("round {round}: crate {crate_time:?}, resumable {own_time:?}");
    }
}
