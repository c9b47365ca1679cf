//! Single-thread throughput of each primitive on vger's backup hot path,
//! measured over the files of a real corpus (not a synthetic buffer), and
//! the CPU time each one would need to back that corpus up once.
//!
//! usage: vger-bench-primitives CORPUS_DIR [--passes N]
//!
//! For every regular file (sorted walk, symlinks skipped; a sparse file
//! counts only its allocated bytes, as a reader using SEEK_DATA would;
//! the corpus lives on tmpfs, where st_blocks is exact):
//!   walk     list every directory and `lstat` every entry (sorted)
//!   open     open + fstat + close of every file: the per-file system
//!            calls a backup cannot avoid (an empty file needs only the walk)
//!   read     read the whole file from the page cache into a buffer
//!   fastcdc  FastCDC 2020 over the buffer, 512 KiB / 2 MiB / 8 MiB
//!   blake3   keyed BLAKE3 of every chunk (vger's chunk ID)
//!   blake2b  BLAKE2b-512 of every chunk (comparison only)
//! and for every chunk not seen before in this pass (dedup by chunk ID):
//!   lz4      LZ4 block compression, the C library through lz4-sys as vger
//!            uses it (kept only if smaller, as vger does)
//!   aes      AES-256-GCM seal of what would be stored (ring)
//!   chacha   ChaCha20-Poly1305 seal of the same (comparison only)
//! Each pass times every primitive; the minimum over passes is printed as
//! one line of JSON for ../run to turn into a floor.
//!
//! Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall
//! time: on a shared machine a wall clock also counts the time the thread
//! waited for a core, which inflated the floor past vger's own CPU time
//! under load. The cost of reading the clock itself (a system call, about
//! a microsecond) is measured once and taken off every interval.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use blake2::{Blake2b512, Digest};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

/// A point in this thread's CPU time.
#[derive(Clone, Copy)]
struct Cpu(Duration);

impl Cpu {
    fn read() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    fn now() -> Self {
        Cpu(Self::read())
    }

    /// CPU time since `self`, less the cost of reading the clock twice.
    fn elapsed(&self) -> Duration {
        (Self::read() - self.0).saturating_sub(*Self::overhead())
    }

    /// What an empty interval measures: the median of many.
    fn overhead() -> &'static Duration {
        static OVERHEAD: OnceLock<Duration> = OnceLock::new();
        OVERHEAD.get_or_init(|| {
            let mut v: Vec<Duration> = (0..10_001)
                .map(|_| {
                    let s = Self::read();
                    Self::read() - s
                })
                .collect();
            v.sort();
            v[v.len() / 2]
        })
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let md = fs::symlink_metadata(e.path())?;
        if md.is_dir() {
            walk(&e.path(), out)?;
        } else if md.is_file() {
            let allocated = md.blocks() * 512;
            // Sparse: only the allocated bytes need reading, chunking and hashing.
            out.push((e.path(), if allocated + (64 << 10) < md.len() { allocated } else { md.len() }));
        }
    }
    Ok(())
}

#[derive(Default, Clone, Copy)]
struct Times {
    walk: Duration,
    open_close: Duration,
    read: Duration,
    fastcdc: Duration,
    blake3: Duration,
    blake2b: Duration,
    lz4: Duration,
    aes: Duration,
    chacha: Duration,
}

#[derive(Default, Clone, Copy)]
struct Bytes {
    files: u64,
    read: u64,
    chunks: u64,
    unique_chunks: u64,
    unique: u64,
    stored: u64,
}

fn pass(root: &Path) -> std::io::Result<(Times, Bytes)> {
    let mut t = Times::default();
    let mut b = Bytes::default();
    let s = Cpu::now();
    let mut files = Vec::new();
    walk(root, &mut files)?;
    t.walk = s.elapsed();

    let key = [7u8; 32];
    let aes = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &key).expect("key"));
    let chacha = LessSafeKey::new(UnboundKey::new(&aead::CHACHA20_POLY1305, &key).expect("key"));
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut sealbuf: Vec<u8> = Vec::new();
    let mut compressed: Vec<u8> = Vec::new();
    let mut counter = 0u64;

    for (path, want) in &files {
        b.files += 1;
        if *want == 0 {
            continue;
        }
        // open + fstat (is it still a regular file?)
        let s = Cpu::now();
        let mut f = File::open(path)?;
        let md = f.metadata()?;
        std::hint::black_box(&md);
        t.open_close += s.elapsed();
        // read
        let s = Cpu::now();
        buf.clear();
        buf.reserve(*want as usize);
        (&mut f).take(*want).read_to_end(&mut buf)?;
        t.read += s.elapsed();
        let s = Cpu::now();
        drop(f);
        t.open_close += s.elapsed();
        b.read += buf.len() as u64;
        if buf.is_empty() {
            continue;
        }

        // chunk
        let s = Cpu::now();
        let cuts: Vec<(usize, usize)> =
            fastcdc::v2020::FastCDC::new(&buf, 512 << 10, 2 << 20, 8 << 20).map(|c| (c.offset, c.length)).collect();
        t.fastcdc += s.elapsed();

        for (off, len) in cuts {
            let chunk = &buf[off..off + len];
            b.chunks += 1;
            let s = Cpu::now();
            let id = *blake3::keyed_hash(&key, chunk).as_bytes();
            t.blake3 += s.elapsed();

            let s = Cpu::now();
            let d = Blake2b512::digest(chunk);
            std::hint::black_box(&d);
            t.blake2b += s.elapsed();

            if !seen.insert(id) {
                continue;
            }
            b.unique_chunks += 1;
            b.unique += len as u64;

            let s = Cpu::now();
            let n = lz4_compress(chunk, &mut compressed);
            t.lz4 += s.elapsed();
            let stored: &[u8] = if n > 0 && n < chunk.len() { &compressed } else { chunk };
            b.stored += stored.len() as u64;

            for (alg, slot) in [(&aes, &mut t.aes), (&chacha, &mut t.chacha)] {
                sealbuf.clear();
                sealbuf.extend_from_slice(stored);
                counter += 1;
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&counter.to_le_bytes());
                let s = Cpu::now();
                alg.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&id), &mut sealbuf)
                    .expect("seal");
                *slot += s.elapsed();
            }
        }
    }
    Ok((t, b))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).expect("usage: vger-bench-primitives CORPUS_DIR [--passes N]"));
    let passes: usize = match args.get(2).map(String::as_str) {
        Some("--passes") => args.get(3).and_then(|s| s.parse().ok()).expect("--passes N"),
        _ => 3,
    };
    let mut best: Option<Times> = None;
    let mut bytes = Bytes::default();
    for _ in 0..passes {
        let (t, b) = pass(&root).expect("walking/reading the corpus");
        bytes = b;
        best = Some(match best {
            None => t,
            Some(m) => Times {
                walk: m.walk.min(t.walk),
                open_close: m.open_close.min(t.open_close),
                read: m.read.min(t.read),
                fastcdc: m.fastcdc.min(t.fastcdc),
                blake3: m.blake3.min(t.blake3),
                blake2b: m.blake2b.min(t.blake2b),
                lz4: m.lz4.min(t.lz4),
                aes: m.aes.min(t.aes),
                chacha: m.chacha.min(t.chacha),
            },
        });
    }
    let t = best.expect("at least one pass");
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "{{\"passes\":{passes},\"files\":{},\"bytes_read\":{},\"chunks\":{},\"unique_chunks\":{},\"bytes_unique\":{},\"bytes_stored\":{},\
\"seconds\":{{\"walk\":{:.4},\"open_close\":{:.4},\"read\":{:.4},\"fastcdc\":{:.4},\"blake3_keyed\":{:.4},\"blake2b_512\":{:.4},\"lz4\":{:.4},\"aes_256_gcm\":{:.4},\"chacha20_poly1305\":{:.4}}}}}",
        bytes.files,
        bytes.read,
        bytes.chunks,
        bytes.unique_chunks,
        bytes.unique,
        bytes.stored,
        secs(t.walk),
        secs(t.open_close),
        secs(t.read),
        secs(t.fastcdc),
        secs(t.blake3),
        secs(t.blake2b),
        secs(t.lz4),
        secs(t.aes),
        secs(t.chacha),
    );
}

/// LZ4 block of `data` into `out` (cleared; its capacity reused), as
/// vger's vger-format does; the compressed length, 0 when it failed.
fn lz4_compress(data: &[u8], out: &mut Vec<u8>) -> usize {
    use std::os::raw::{c_char, c_int};
    let Ok(len) = c_int::try_from(data.len()) else { return 0 };
    // SAFETY: pure function of its argument.
    let max = unsafe { lz4_sys::LZ4_compressBound(len) };
    out.clear();
    out.reserve(max.max(0) as usize);
    // SAFETY: `data` readable for `len` bytes, `out`'s spare capacity
    // writable for `max`; the library writes at most `max` and returns how
    // many, and only those become the vector's contents.
    let n = unsafe {
        lz4_sys::LZ4_compress_default(data.as_ptr() as *const c_char, out.as_mut_ptr() as *mut c_char, len, max)
    };
    let n = n.clamp(0, max) as usize;
    // SAFETY: the library initialised `n` bytes.
    unsafe { out.set_len(n) };
    n
}
