//! Reads one file of a snapshot through the engine's lazy API
//! (`SnapshotTree::stat` and `ChunkSource::open`, the `Read + Seek` reader
//! the mount and the GUI use), for bench/scale's `openfile` part:
//!
//! ```text
//! VGER_PASSPHRASE=... read_file REPO SNAPSHOT PATH seq
//! VGER_PASSPHRASE=... read_file REPO SNAPSHOT PATH random COUNT [BLOCK]
//! ```
//!
//! `seq` reads the file from start to end in 1 MiB reads; `random` makes
//! COUNT reads of BLOCK bytes (default 4096) at pseudo-random offsets
//! (a fixed seed). Prints one JSON line: bytes read, seconds from the
//! repository's opening to the last byte, and the process's peak RSS.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Instant;

use vger_engine::chunk_cache::ChunkCache;
use vger_engine::file_reader::ChunkSource;
use vger_engine::index::ChunkIndex;
use vger_engine::repository::Repository;
use vger_engine::snapshots;
use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};
use vger_storage::{open_url, BackendOptions};

type Failure = Box<dyn std::error::Error>;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo_url, snapshot, path, mode, rest @ ..] = args.as_slice() else {
        return Err("usage: read_file REPO SNAPSHOT PATH seq | random COUNT [BLOCK]".into());
    };
    let started = Instant::now();
    let storage = open_url(repo_url, &BackendOptions::default(), false)?;
    let passphrase = std::env::var("VGER_PASSPHRASE").unwrap_or_default().into_bytes();
    let repo = Arc::new(Repository::open(storage, &|| Ok(passphrase.clone()))?);
    let snap = snapshots::find(&repo, snapshot)?;
    let index = Arc::new(ChunkIndex::load(&repo)?);
    let tree = SnapshotTree::open(&TreeStore::new(&repo, index.clone(), DEFAULT_CACHE_BYTES), &snap);
    let entry = tree.stat(path.as_bytes())?.ok_or_else(|| format!("{path}: not in snapshot {snapshot}"))?;
    let source = ChunkSource::new(repo, index, Arc::new(ChunkCache::default()));
    let mut reader = source.open(entry.chunks.clone(), entry.size)?;
    let mut total = 0u64;
    match (mode.as_str(), rest) {
        ("seq", []) => {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        ("random", [count, block @ ..]) => {
            let count: u64 = count.parse()?;
            let block: usize = block.first().map_or(Ok(4096), |b| b.parse())?;
            let mut buf = vec![0u8; block];
            let span = entry.size.saturating_sub(block as u64).max(1);
            // xorshift64: a fixed, dependency-free sequence of offsets.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..count {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                reader.seek(SeekFrom::Start(x % span))?;
                let mut got = 0;
                while got < block {
                    let n = reader.read(&mut buf[got..])?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                total += got as u64;
            }
        }
        _ => return Err(format!("unknown mode `{mode}` (seq, or random COUNT [BLOCK])").into()),
    }
    println!(
        "{{\"bytes\": {total}, \"seconds\": {:.4}, \"peak_rss_kib\": {}}}",
        started.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}
