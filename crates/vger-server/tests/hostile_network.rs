//! Hostile network clients (issue 17, item 8), against the real
//! `vger-server` process: while 500 idle connections, 50 slow-loris
//! clients (headers a byte at a time, or a body at a trickle with a valid
//! token) and one address opening 200 connections keep coming back, a
//! normal `vger backup` finishes and restores byte for byte. The server
//! cuts the slow clients off on its own and refuses what passes the cap of
//! one address.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cli::{config, ok, text, vger, vger_bin};
use common::*;
use vger_storage::testsuite::pattern;

/// A connection from a chosen loopback address (127.0.0.0/8 is all ours),
/// so each attacker counts as its own client address.
fn connect_from(runtime: &tokio::runtime::Runtime, source: Ipv4Addr, server: SocketAddr) -> Option<TcpStream> {
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::new(source.into(), 0)).ok()?;
        socket.connect(server).await.ok()
    })?;
    let stream = stream.into_std().ok()?;
    stream.set_nonblocking(false).ok()?;
    Some(stream)
}

/// Whether the server has closed `stream` (read returns end or an error).
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 512];
    stream.set_nonblocking(true).unwrap();
    let gone = match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false, // an error reply; the close follows
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    gone
}

/// The attackers: each thread keeps its connections open, reconnecting
/// whatever the server closes, until `stop`.
struct Crowd {
    stop: Arc<AtomicBool>,
    /// Connections the server closed (timeouts) or refused (caps).
    closed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Crowd {
    fn new() -> Crowd {
        Crowd { stop: Arc::default(), closed: Arc::default(), threads: Vec::new() }
    }

    /// `count` connections from `source`, each opened with `start` and fed
    /// one `step` every `every`.
    fn add(
        &mut self,
        source: Ipv4Addr,
        server: SocketAddr,
        count: usize,
        start: String,
        step: &'static [u8],
        every: Duration,
    ) {
        let (stop, closed) = (self.stop.clone(), self.closed.clone());
        self.threads.push(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
            let open = |_| {
                let mut stream = connect_from(&runtime, source, server)?;
                stream.write_all(start.as_bytes()).ok()?;
                Some(stream)
            };
            let mut streams: Vec<Option<TcpStream>> = (0..count).map(open).collect();
            while !stop.load(Ordering::Relaxed) {
                for slot in streams.iter_mut() {
                    let alive = match slot {
                        Some(stream) => !is_closed(stream) && (step.is_empty() || stream.write_all(step).is_ok()),
                        None => false,
                    };
                    if !alive {
                        closed.fetch_add(1, Ordering::Relaxed);
                        *slot = open(0);
                    }
                }
                std::thread::sleep(every);
            }
        }));
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
        self.closed.load(Ordering::Relaxed)
    }
}

fn metric(server: &Server, name: &str) -> u64 {
    let text = server.raw("GET", "/metrics", Some(ADMIN), &[], b"").text();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn idle_and_slow_clients_do_not_stop_a_backup() {
    let Some(bin) = vger_bin() else { return };
    let server = Server::start_with(Options {
        tokens: Some(default_tokens()),
        args: vec!["--header-timeout".into(), "5".into()],
        ..Options::default()
    });
    let addr: SocketAddr = server.addr.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big.bin"), pattern(7, 6 << 20)).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("small-{i}.txt")), format!("file {i}\n")).unwrap();
    }
    let full = config(dir.path(), &server.addr, FULL, &src);
    let laptop = config(dir.path(), &server.addr, APPEND, &src);
    ok(vger(&bin, &full, &["init"]));

    let mut crowd = Crowd::new();
    // 500 idle connections from ten addresses.
    for a in 0..10u8 {
        crowd.add(Ipv4Addr::new(127, 0, 1, a + 1), addr, 50, String::new(), b"", Duration::from_millis(200));
    }
    // 25 slow-loris clients sending their headers a few bytes a second...
    let slow_head = format!("PUT /laptop/{} HTTP/1.1\r\nHost: x\r\n", pack_key(1, 1));
    crowd.add(Ipv4Addr::new(127, 0, 2, 1), addr, 25, slow_head, b"X: y\r\n", Duration::from_secs(1));
    // ...and 25 with a valid token sending a body at a trickle.
    let slow_body = format!(
        "PUT /laptop/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {APPEND}\r\nx-vger-blake3: {}\r\n\
         Content-Length: 1048576\r\n\r\n",
        pack_key(2, 2),
        "00".repeat(32)
    );
    crowd.add(Ipv4Addr::new(127, 0, 2, 2), addr, 25, slow_body, b"z", Duration::from_secs(1));
    // One address asking for far more connections than it may hold.
    crowd.add(Ipv4Addr::new(127, 0, 3, 1), addr, 200, String::new(), b"", Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(2));

    let started = Instant::now();
    let out = vger(&bin, &laptop, &["backup"]);
    let took = started.elapsed();
    assert!(out.status.success(), "the backup failed under attack: {}", text(&out));
    assert!(took < Duration::from_secs(120), "the backup took {took:?}");
    // Past the body grace period: the trickling bodies are cut off too.
    std::thread::sleep(Duration::from_secs(25));
    let refused = metric(&server, "vger_server_refused_connections_total");
    let closed = crowd.stop();

    let restore = dir.path().join("restored");
    ok(vger(&bin, &full, &["restore", "latest", restore.to_str().unwrap()]));
    assert_eq!(std::fs::read(restore.join("big.bin")).unwrap(), pattern(7, 6 << 20));
    assert_eq!(std::fs::read(restore.join("small-199.txt")).unwrap(), b"file 199\n");
    ok(vger(&bin, &full, &["check", "--verify-data"]));
    // 136 of the greedy address's 200 were over its cap, again and again.
    assert!(refused >= 136, "refused {refused}");
    // Idle and slow connections were closed by the server's timeouts:
    // each of the 550 at least once in 30 s.
    assert!(closed >= 550 + 136, "only {closed} connections were closed or refused");
    assert!(server.files().iter().all(|f| !f.contains(".tmp-")), "{:?}", server.files());
    println!("backup under attack: {took:?}; {refused} connections refused, {closed} closed or refused");
}
