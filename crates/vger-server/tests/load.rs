//! A load figure: 16 parallel clients against one server on loopback.
//! Ignored by default; `scripts/load-server` runs it in release mode.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, FULL};
use vger_storage::testsuite::pattern;
use vger_storage::Storage;

const CLIENTS: usize = 16;
/// Each client does at least this many operations per phase, so that a
/// read phase finds the objects its write phase made.
const MIN_ITERATIONS: usize = 32;

/// Runs `op(client, thread, i)` on every client thread until `duration`
/// has passed (at least [`MIN_ITERATIONS`], at most 100k each); returns
/// (iterations, seconds).
fn phase(server: &Server, duration: Duration, op: impl Fn(&dyn Storage, usize, usize) + Sync) -> (u64, f64) {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..CLIENTS {
            let (op, done, server) = (&op, &done, server);
            scope.spawn(move || {
                let client = server.client("load", FULL);
                let mut i = 0;
                while (start.elapsed() < duration || i < MIN_ITERATIONS) && i < 100_000 {
                    op(&client, t, i);
                    i += 1;
                }
                done.fetch_add(i as u64, Ordering::Relaxed);
            });
        }
    });
    (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

#[test]
#[ignore = "load figure; run scripts/load-server"]
fn load_figures() {
    let seconds = std::env::var("LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let duration = Duration::from_secs(seconds);
    let server = Server::start();
    let small = pattern(1, 4096);
    let (n, secs) = phase(&server, duration, |c, t, i| {
        let key = common::key("index", ((t as u64) << 32) | i as u64);
        c.put_new(&key, &small).unwrap();
        assert_eq!(c.get(&key).unwrap().len(), 4096);
        c.size(&key).unwrap();
    });
    let small_rps = (n * 3) as f64 / secs;
    println!("small objects (4 KiB PUT+GET+HEAD): {:.0} requests/s ({} objects in {secs:.1} s)", small_rps, n);

    let (n, secs) = phase(&server, duration, |c, t, i| {
        let key = common::key("index", ((t as u64) << 32) | (i % MIN_ITERATIONS) as u64);
        assert_eq!(c.get(&key).unwrap().len(), 4096);
    });
    println!("small objects (4 KiB GET only): {:.0} requests/s", n as f64 / secs);

    let big = pattern(2, 8 << 20);
    let (n, secs) = phase(&server, duration, |c, t, i| {
        c.put(&common::pack_key(t as u8, (i % 4) as u64), &big).unwrap();
    });
    let up = (n as f64 * 8.0) / secs;
    println!("large objects (8 MiB PUT, fsync each): {up:.0} MiB/s ({n} uploads)");
    let (n, secs) = phase(&server, duration, |c, t, i| {
        assert_eq!(c.get(&common::pack_key(t as u8, (i % 4) as u64)).unwrap().len(), 8 << 20);
    });
    let down = (n as f64 * 8.0) / secs;
    println!("large objects (8 MiB GET): {down:.0} MiB/s ({n} downloads)");
    let listed = server.client("load", FULL).list("").unwrap().len();
    let start = Instant::now();
    server.client("load", FULL).list("").unwrap();
    println!("listing {listed} keys: {:.0} ms", start.elapsed().as_secs_f64() * 1000.0);
    match server.peak_rss_kib() {
        Some(kib) => println!("server peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("server peak RSS: unknown (no /proc)"),
    }
}
