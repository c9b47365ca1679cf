//! The S3 and vger-server clients against a hostile HTTP server: a small
//! real TCP server in this test that answers with endless bodies, a
//! `Content-Length` of gigabytes, a listing line that never ends, more
//! listing lines than asked for, and error text full of terminal escape
//! sequences. Every reply is refused once past what the protocol allows,
//! quickly and with a clean one-line error; nothing hangs or fills memory.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vger_storage::rest::RestStorage;
use vger_storage::s3::{S3Location, S3Storage};
use vger_storage::{BackendOptions, Storage, StorageError};

/// How the server answers one request, given its request line.
type Script = dyn Fn(&str, &mut TcpStream) + Send + Sync;

/// Serves `script` on a loopback port, one thread per connection, until
/// the test process ends; returns `127.0.0.1:PORT`.
fn hostile_server(script: Arc<Script>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let script = script.clone();
            std::thread::spawn(move || serve(stream, &*script));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // The rest of the head; these tests send no request bodies.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        script(request_line.trim_end(), &mut stream);
    }
}

/// A chunked body that never ends (until the client hangs up).
fn endless(stream: &mut TcpStream, head: &str, piece: &[u8]) {
    let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\n{head}Transfer-Encoding: chunked\r\n\r\n").as_bytes());
    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
    chunk.extend_from_slice(piece);
    chunk.extend_from_slice(b"\r\n");
    while stream.write_all(&chunk).is_ok() {}
}

fn reply(stream: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

const ESCAPES: &[u8] = b"\x1b]0;owned\x07\x1b[2J\x1b[31mdisk on fire\r\nsecond line\x9b\xc2\x9b";

fn rest(addr: &str) -> RestStorage {
    let opts = BackendOptions { timeout: Duration::from_secs(10), ..BackendOptions::default() };
    RestStorage::new(&format!("http://{addr}/repo"), Some("token-0123456789abcdef".into()), &opts).unwrap()
}

fn s3(addr: &str) -> S3Storage {
    let opts = BackendOptions {
        access_key_id: Some("key".into()),
        secret_access_key: Some("secret".into()),
        timeout: Duration::from_secs(10),
        ..BackendOptions::default()
    };
    let location = S3Location {
        endpoint: format!("http://{addr}").parse().unwrap(),
        bucket: "bucket".into(),
        prefix: String::new(),
    };
    S3Storage::new(&location, &opts).unwrap()
}

/// A refusal: a permanent error (no retry would help), on one line with
/// no control character, within a few seconds.
#[track_caller]
fn refused<T: std::fmt::Debug>(started: Instant, result: Result<T, StorageError>, needle: &str) -> String {
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains(needle), "{text}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    text
}

#[test]
fn endless_and_oversized_bodies_are_refused() {
    let addr = hostile_server(Arc::new(|request: &str, stream: &mut TcpStream| {
        if request.contains("/packs/") {
            // Announces 10 GiB; a pack is at most 1.5 GiB.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n");
            while stream.write_all(&[0u8; 65536]).is_ok() {}
        } else {
            endless(stream, "", &[0x55; 65536]);
        }
    }));
    for (name, storage) in [("rest", Box::new(rest(&addr)) as Box<dyn Storage>), ("s3", Box::new(s3(&addr)))] {
        let t = Instant::now();
        // A `config` object is a few hundred bytes: the reply stops at 1 MiB.
        let text = refused(t, storage.get("config"), "refused");
        assert!(text.contains("1048576"), "{name}: {text}");
        let t = Instant::now();
        refused(t, storage.get(&format!("packs/ab/{}", "ab".repeat(32))), "10737418240");
    }
}

#[test]
fn an_endless_listing_line_and_extra_lines_are_refused() {
    let addr = hostile_server(Arc::new(|request: &str, stream: &mut TcpStream| {
        if request.contains("verify-packs") {
            let line = b"{\"key\":\"packs/ab/x\",\"ok\":true}\n";
            endless(stream, "", line);
        } else {
            endless(stream, "", &[b'a'; 65536]);
        }
    }));
    let storage = rest(&addr);
    let t = Instant::now();
    refused(t, storage.list("packs/"), "longer than");
    let t = Instant::now();
    let one = vec![format!("packs/ab/{}", "ab".repeat(32))];
    refused(t, storage.verify_packs(Some(&one)), "more than 2 lines");
}

#[test]
fn an_s3_listing_page_past_its_size_is_refused() {
    let addr = hostile_server(Arc::new(|_: &str, stream: &mut TcpStream| {
        let mut xml = b"<?xml version=\"1.0\"?><ListBucketResult>".to_vec();
        xml.extend(std::iter::repeat_n(b' ', 1 << 16));
        endless(stream, "Content-Type: application/xml\r\n", &xml);
    }));
    let t = Instant::now();
    refused(t, s3(&addr).list("index/"), "refused");
}

#[test]
fn error_text_from_the_server_reaches_messages_without_control_characters() {
    let addr = hostile_server(Arc::new(|request: &str, stream: &mut TcpStream| {
        if request.starts_with("GET /repo/") {
            reply(stream, "400 Bad Request", ESCAPES);
        } else {
            let mut xml = b"<Error><Code>Evil\x1b[5m</Code><Message>".to_vec();
            xml.extend_from_slice(ESCAPES);
            xml.extend_from_slice(b"</Message></Error>");
            reply(stream, "400 Bad Request", &xml);
        }
    }));
    for storage in [Box::new(rest(&addr)) as Box<dyn Storage>, Box::new(s3(&addr))] {
        let t = Instant::now();
        let text = refused(t, storage.get("snapshots/ab"), "disk on fire");
        assert!(text.contains("second line"), "{text}");
        assert!(!text.contains("\u{9b}"), "{text:?}");
    }
}
