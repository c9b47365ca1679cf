//! The storage server goes away in the middle of a backup, and comes back.
//!
//! - S3: a private moto (scripts/servers/s3-start with its own state
//!   directory and port, not the shared test server) behind a TCP relay
//!   written here. moto keeps everything in memory, so killing it would
//!   lose the bucket: the relay plays the dead server instead. "Down" closes
//!   every open connection and stops listening (new connections are
//!   refused); "up" listens again on the same port. moto never sees a fault.
//! - SFTP: a private OpenSSH sshd (scripts/servers/sftp-start), really
//!   killed (scripts/servers/sftp-stop: listener and session processes) and
//!   started again on the same port with the same keys.
//!
//! Each cut comes once a given amount of pack data has gone out. Two cases
//! per backend: a short outage that the retry policy rides out, and one that
//! outlasts a small retry budget. Either way the backup must complete, or
//! fail with exit code 1 and a one-line error, no panic; then, with the
//! server back, the next backup completes, `check --verify-data` is clean
//! and the restore equals the source.
//!
//! Skipped with a note when moto or sshd is not installed, except under CI.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const BUCKET_DATA_MIB: usize = 96;

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/servers")
}

fn opt_dir() -> PathBuf {
    std::env::var_os("VGER_TEST_OPT").map_or_else(|| PathBuf::from("/opt/vger-test"), PathBuf::from)
}

/// `None` (after a note) when `what` is missing outside CI.
fn require(present: bool, what: &str) -> Option<()> {
    if present {
        return Some(());
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but {what} is missing: .ci/run installs it");
    eprintln!("note: skipping: {what} is missing");
    None
}

/// Runs a server script with a private state directory; returns the
/// variables it exported.
fn server_script(name: &str, state: &Path, env: &[(&str, String)]) -> HashMap<String, String> {
    let mut cmd = Command::new(scripts().join(name));
    cmd.env("VGER_TEST_SERVERS", state).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Stops the private servers (by the pid files their scripts wrote).
struct ServerGuard {
    state: PathBuf,
    stop: &'static str,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join(self.stop)).env("VGER_TEST_SERVERS", &self.state).output();
    }
}

/// A TCP relay from a local port to `target` that can play a dead server.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Bytes relayed towards the server.
    sent: Arc<AtomicU64>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            up: Arc::new(AtomicBool::new(true)),
            quit: Arc::new(AtomicBool::new(false)),
            open: Arc::default(),
            sent: Arc::default(),
        };
        let (up, quit, open, sent) = (relay.up.clone(), relay.quit.clone(), relay.open.clone(), relay.sent.clone());
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !quit.load(Ordering::SeqCst) {
                if !up.load(Ordering::SeqCst) {
                    listener = None; // refuse connections, as a dead host does
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = listener.get_or_insert_with(|| TcpListener::bind(("127.0.0.1", port)).unwrap());
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((client, _)) => relay_connection(client, target, &open, &sent),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("relay accept: {e}"),
                }
            }
        });
        relay
    }

    /// Breaks every open connection and refuses new ones.
    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        self.down();
    }
}

fn relay_connection(client: TcpStream, target: u16, open: &Arc<Mutex<Vec<TcpStream>>>, sent: &Arc<AtomicU64>) {
    client.set_nonblocking(false).unwrap();
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
    open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
    let pipe = |mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Some(c) = &count {
                            c.fetch_add(n as u64, Ordering::SeqCst);
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), Some(sent.clone()));
    pipe(server, client, None);
}

/// What the outage does to the storage path.
trait Outage {
    /// Bytes sent to the server so far (to place the cut inside the upload).
    fn sent(&self) -> u64;
    fn kill(&mut self);
    fn restart(&mut self);
}

struct RelayOutage(Relay);

impl Outage for RelayOutage {
    fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::SeqCst)
    }
    fn kill(&mut self) {
        self.0.down();
    }
    fn restart(&mut self) {
        self.0.up();
    }
}

struct SshdOutage {
    state: PathBuf,
    port: u16,
    data: PathBuf,
}

impl Outage for SshdOutage {
    fn sent(&self) -> u64 {
        // Bytes that reached the repository directory on the server's disk.
        files_under(&self.data).iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.len()).sum()
    }
    fn kill(&mut self) {
        server_script("sftp-stop", &self.state, &[]);
    }
    fn restart(&mut self) {
        server_script("sftp-start", &self.state, &[("SFTP_PORT", self.port.to_string())]);
    }
}

fn spawn_backup(env: &TestEnv) -> Child {
    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(env.config()).args(["-q", "backup"]);
    cmd.env("VGER_PASSPHRASE", PASS).current_dir(env.dir.path());
    env.private_user_dirs(&mut cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Backs up, cutting the server once `cut_after` bytes went out for
/// `outage`; then checks the outcome and that the repository recovers.
fn backup_through_outage(env: &TestEnv, src: &Path, server: &mut dyn Outage, outage: Duration, cut_after: u64) {
    let start = server.sent();
    let mut child = spawn_backup(env);
    let began = Instant::now();
    let mut cut = false;
    while child.try_wait().unwrap().is_none() {
        if !cut && server.sent() >= start + cut_after {
            server.kill();
            std::thread::sleep(outage);
            server.restart();
            cut = true;
            eprintln!("server down for {outage:?} after {:.1} s", began.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(began.elapsed() < Duration::from_secs(120), "the backup hangs");
    }
    assert!(cut, "the backup finished before the cut: give it more data");
    let out = child.wait_with_output().unwrap();
    let run = Run {
        cmd: "vger -q backup (server cut)".into(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let failed = run.code != 0;
    eprintln!("backup through the outage: exit {} {}", run.code, run.stderr.trim());
    if failed {
        run.one_line_error(&["error"]);
    } else {
        run.no_panic();
    }
    // With the server back: the next backup completes, the data is intact
    // and restores byte for byte.
    env.run(["-q", "backup"]).ok();
    env.run(["check", "--verify-data"]).ok();
    let dest = env.path(&format!("restored-{}", env.list_json().len()));
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    assert_diff_clean(src, &dest, &[]);
}

/// Incompressible files, several packs' worth.
fn source(env: &TestEnv) -> PathBuf {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..BUCKET_DATA_MIB / 8 {
        fs::write(src.join(format!("f{i:02}.bin")), random_bytes(8 << 20, i as u64 + 1)).unwrap();
    }
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    src
}

fn write_config(env: &TestEnv, repo: &str, src: &Path, retry: &str) {
    env.write_config(&format!(
        "repositories:\n  - label: remote\n{repo}    retry: {retry}\nsources:\n  - label: src\n    path: \"{}\"\n",
        src.display()
    ));
}

const RIDE_OUT: &str = "{ max_retries: 8, retry_delay_ms: 200, retry_max_delay_ms: 2000 }";
const GIVE_UP: &str = "{ max_retries: 1, retry_delay_ms: 50, retry_max_delay_ms: 50 }";

#[test]
fn s3_server_lost_mid_backup() {
    let moto = opt_dir().join("moto-venv/bin/moto_server");
    let Some(()) = require(moto.exists(), &format!("moto ({})", moto.display())) else { return };
    let env = TestEnv::new();
    let state = env.path("servers");
    let vars = server_script("s3-start", &state, &[("VGER_TEST_S3_SERVER", "moto".into())]);
    let _guard = ServerGuard { state, stop: "s3-stop" };
    let endpoint = &vars["VGER_TEST_S3_ENDPOINT"];
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(port);
    let src = source(&env);
    let repo = format!(
        "    url: \"s3+http://127.0.0.1:{}/{}/faults\"\n    access_key_id: \"{}\"\n    secret_access_key: \"{}\"\n    allow_insecure_http: true\n",
        relay.port, vars["VGER_TEST_S3_BUCKET"], vars["VGER_TEST_S3_ACCESS_KEY"], vars["VGER_TEST_S3_SECRET_KEY"]
    );
    write_config(&env, &repo, &src, RIDE_OUT);
    env.init();
    let mut server = RelayOutage(relay);
    backup_through_outage(&env, &src, &mut server, Duration::from_secs(2), 40 << 20);
    // A second round into the same repository, with an outage longer than
    // a small retry budget; every file changed so packs go out again.
    write_config(&env, &repo, &src, GIVE_UP);
    fs::write(src.join("f00.bin"), random_bytes(8 << 20, 100)).unwrap();
    for i in 1..BUCKET_DATA_MIB / 8 {
        fs::write(src.join(format!("f{i:02}.bin")), random_bytes(8 << 20, i as u64 + 200)).unwrap();
    }
    backup_through_outage(&env, &src, &mut server, Duration::from_secs(3), 40 << 20);
}

#[test]
fn sftp_server_killed_mid_backup() {
    let sshd = Path::new("/usr/sbin/sshd");
    let Some(()) = require(sshd.exists(), "OpenSSH sshd (openssh-server)") else { return };
    let env = TestEnv::new();
    let state = env.path("servers");
    let vars = server_script("sftp-start", &state, &[]);
    let _guard = ServerGuard { state: state.clone(), stop: "sftp-stop" };
    let url = &vars["VGER_TEST_SFTP_URL"];
    let port: u16 = url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap();
    let src = source(&env);
    let repo = format!(
        "    url: \"{url}/faults\"\n    sftp_key: \"{}\"\n    sftp_known_hosts: \"{}\"\n",
        vars["VGER_TEST_SFTP_KEY"], vars["VGER_TEST_SFTP_KNOWN_HOSTS"]
    );
    write_config(&env, &repo, &src, RIDE_OUT);
    env.init();
    let mut server = SshdOutage { state: state.clone(), port, data: state.join("sftp/data/faults") };
    backup_through_outage(&env, &src, &mut server, Duration::from_secs(2), 40 << 20);
    write_config(&env, &repo, &src, GIVE_UP);
    for i in 0..BUCKET_DATA_MIB / 8 {
        fs::write(src.join(format!("f{i:02}.bin")), random_bytes(8 << 20, i as u64 + 300)).unwrap();
    }
    backup_through_outage(&env, &src, &mut server, Duration::from_secs(3), 40 << 20);
}
