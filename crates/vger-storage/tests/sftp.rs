//! SftpStorage against OpenSSH's sshd (`scripts/servers/sftp-start`): the
//! shared backend suite through every layer, host key checking, key
//! authentication, and a server killed and restarted mid-upload.
//!
//! Needs VGER_TEST_SFTP_URL, _KEY, _KNOWN_HOSTS. Without them the tests are
//! skipped with a note, except under CI, where they fail.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vger_storage::testsuite::{pattern, Fixture};
use vger_storage::{open_url, BackendOptions, RetryPolicy, Storage, StorageError};

struct Server {
    url: String,
    opts: BackendOptions,
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The configured server; `None` (after a note) to skip; panics under CI.
fn server() -> Option<Server> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(url) = var("VGER_TEST_SFTP_URL") else {
        if in_ci() {
            panic!("CI is set but VGER_TEST_SFTP_URL is not: start sshd with scripts/servers/sftp-start");
        }
        eprintln!("note: skipping SFTP tests: VGER_TEST_SFTP_URL not set (see scripts/servers/sftp-start)");
        return None;
    };
    let opts = BackendOptions {
        sftp_key: var("VGER_TEST_SFTP_KEY").map(PathBuf::from),
        sftp_known_hosts: var("VGER_TEST_SFTP_KNOWN_HOSTS").map(PathBuf::from),
        connections: 8,
        ..BackendOptions::default()
    };
    Some(Server { url: url.trim_end_matches('/').to_owned(), opts })
}

fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{what}-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

struct SftpFixture {
    storage: Arc<dyn Storage>,
}

impl Fixture for SftpFixture {
    fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }
}

impl Drop for SftpFixture {
    fn drop(&mut self) {
        if let Ok(objects) = self.storage.list("") {
            for object in objects {
                let _ = self.storage.delete(&object.key);
            }
        }
    }
}

fn fresh() -> SftpFixture {
    let server = server().unwrap();
    let storage = open_url(&format!("{}/{}", server.url, unique("suite")), &server.opts, true).unwrap();
    SftpFixture { storage }
}

// `return` in the block leaves the generated #[test] fn: the skip.
vger_storage::storage_test_suite!({
    if server().is_none() {
        return;
    }
    fresh
});

#[test]
fn unknown_host_key_is_refused_with_a_hint() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let opts = BackendOptions { sftp_known_hosts: Some(empty), ..server.opts.clone() };
    let err = open_url(&server.url, &opts, false).unwrap_err().to_string();
    assert!(err.contains("is not in") && err.contains("ssh-keyscan -p"), "{err}");
}

#[test]
fn changed_host_key_is_refused() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("other");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(&key).status().unwrap();
    assert!(made.success());
    let known = std::fs::read_to_string(server.opts.sftp_known_hosts.as_ref().unwrap()).unwrap();
    let host = known.split_whitespace().next().unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let other: Vec<&str> = public.split_whitespace().take(2).collect();
    let forged = dir.path().join("known_hosts");
    std::fs::write(&forged, format!("{host} {} {}\n", other[0], other[1])).unwrap();
    let opts = BackendOptions { sftp_known_hosts: Some(forged), ..server.opts.clone() };
    let err = open_url(&server.url, &opts, false).unwrap_err().to_string();
    assert!(err.contains("CHANGED") && err.contains("ssh-keygen -R"), "{err}");
}

#[test]
fn wrong_client_key_is_refused_at_once() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(&key).status().unwrap();
    assert!(made.success());
    let opts = BackendOptions { sftp_key: Some(key), ..server.opts.clone() };
    let started = Instant::now();
    let err = open_url(&server.url, &opts, false).unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "an auth failure must not be retried");
}

#[test]
fn missing_directory_needs_create() {
    let Some(server) = server() else { return };
    let url = format!("{}/{}/repo", server.url, unique("missing"));
    let err = open_url(&url, &server.opts, false).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let storage = open_url(&url, &server.opts, true).unwrap();
    storage.put("config", b"x").unwrap();
    storage.delete("config").unwrap();
}

/// Loopback throughput of 32 MiB puts and gets (run with --ignored --nocapture).
#[test]
#[ignore = "benchmark"]
fn throughput_32mib_objects() {
    let Some(server) = server() else { return };
    let f =
        SftpFixture { storage: open_url(&format!("{}/{}", server.url, unique("bench")), &server.opts, true).unwrap() };
    let objects: Vec<Vec<u8>> = (0..8).map(|i| pattern(i, 32 << 20)).collect();
    for threads in [1usize, 4] {
        let total = objects.iter().map(Vec::len).sum::<usize>() as f64;
        let started = Instant::now();
        std::thread::scope(|s| {
            for chunk in objects.chunks(objects.len() / threads).enumerate() {
                let storage = &f.storage;
                s.spawn(move || {
                    for (j, data) in chunk.1.iter().enumerate() {
                        storage.put(&format!("packs/{:02}/p{j}", chunk.0), data).unwrap();
                    }
                });
            }
        });
        let put = total / started.elapsed().as_secs_f64() / 1e6;
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                let storage = &f.storage;
                let per = objects.len() / threads;
                s.spawn(move || {
                    for j in 0..per {
                        assert_eq!(storage.get(&format!("packs/{t:02}/p{j}")).unwrap().len(), 32 << 20);
                    }
                });
            }
        });
        let get = total / started.elapsed().as_secs_f64() / 1e6;
        println!("SFTP 256 MiB in 32 MiB objects, {threads} threads: put {put:.0} MB/s, get {get:.0} MB/s");
    }
}

/// A private sshd from the same scripts, in its own state directory, so
/// that killing it does not disturb the other tests.
struct PrivateServer {
    state: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/servers")
}

impl PrivateServer {
    fn start(port: Option<&str>, state: Option<tempfile::TempDir>) -> Self {
        let state = state.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let mut command = Command::new(scripts().join("sftp-start"));
        command.env("VGER_TEST_SERVERS", state.path());
        if let Some(port) = port {
            command.env("SFTP_PORT", port);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "sftp-start: {}", String::from_utf8_lossy(&out.stderr));
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        PrivateServer { state, env }
    }

    /// Kills the listener and every session process (`sftp-stop`).
    fn kill(self) -> tempfile::TempDir {
        let out =
            Command::new(scripts().join("sftp-stop")).env("VGER_TEST_SERVERS", self.state.path()).output().unwrap();
        assert!(out.status.success());
        self.state
    }

    fn port(&self) -> String {
        let url = &self.env["VGER_TEST_SFTP_URL"];
        url.rsplit_once(':').unwrap().1.split('/').next().unwrap().to_owned()
    }
}

#[test]
fn server_killed_and_restarted_mid_upload() {
    if server().is_none() || !Path::new("/usr/sbin/sshd").exists() {
        assert!(!in_ci(), "CI must run the restart test: install openssh-server");
        return;
    }
    let first = PrivateServer::start(None, None);
    let port = first.port();
    let opts = BackendOptions {
        sftp_key: Some(PathBuf::from(&first.env["VGER_TEST_SFTP_KEY"])),
        sftp_known_hosts: Some(PathBuf::from(&first.env["VGER_TEST_SFTP_KNOWN_HOSTS"])),
        connections: 4,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy { max_retries: 8, delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) },
        ..BackendOptions::default()
    };
    let url = first.env["VGER_TEST_SFTP_URL"].clone();
    let storage = open_url(&url, &opts, true).unwrap();
    let key = |t: usize, i: usize| format!("packs/{t:02x}/obj{i:03}");
    let data = |t: usize, i: usize| pattern((t * 1000 + i) as u64, 256 << 10);
    let done = AtomicUsize::new(0);
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (storage, done) = (&storage, &done);
                s.spawn(move || {
                    (0..60)
                        .map(|i| {
                            let result = storage.put(&key(t, i), &data(t, i));
                            done.fetch_add(1, Ordering::SeqCst);
                            (i, result)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        while done.load(Ordering::SeqCst) < 40 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let state = first.kill();
        std::thread::sleep(Duration::from_millis(700));
        let second = PrivateServer::start(Some(&port), Some(state));
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results, second)
    });
    let (results, second) = results;
    let mut failed = 0;
    for (t, outcomes) in results.iter().enumerate() {
        for (i, outcome) in outcomes {
            match outcome {
                // Whatever completed is there, whole.
                Ok(()) => assert!(storage.get(&key(t, *i)).unwrap() == data(t, *i), "{}", key(t, *i)),
                // A failure is a clear, final one, not a hang or garbage.
                Err(e) => {
                    failed += 1;
                    assert!(e.is_transient() && e.to_string().contains("gave up"), "{e:?}");
                }
            }
        }
    }
    eprintln!("restart: {failed} of 240 uploads failed after retries");
    // The storage works again, and no temporary file shows.
    storage.put("after/restart", b"ok").unwrap();
    assert_eq!(storage.get("after/restart").unwrap(), b"ok");
    let listed = storage.list("").unwrap();
    assert!(listed.iter().all(|o| !o.key.contains(".tmp")));
    assert_eq!(listed.len(), 240 - failed + 1);
    assert!(matches!(storage.put_new("after/restart", b"x"), Err(StorageError::AlreadyExists { .. })));
    second.kill();
}
