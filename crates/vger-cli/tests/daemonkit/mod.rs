//! Helpers for the daemon tests: `vger daemon` as a real child process
//! (its output in a log file), plain HTTP requests to its status server,
//! signals, and a local webhook that records notifications.

#![allow(dead_code)] // Each daemon test file uses a different part.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{vger_bin, TestEnv, PASS};

pub const SIGHUP: i32 = libc::SIGHUP;
pub const SIGINT: i32 = libc::SIGINT;
pub const SIGTERM: i32 = libc::SIGTERM;
pub const SIGUSR1: i32 = libc::SIGUSR1;

/// A running `vger daemon`.
pub struct Daemon {
    pub child: Child,
    pub log_path: PathBuf,
    exit_code: Option<i32>,
}

/// Starts `vger --config vger.yaml daemon ARGS` in `env` with the test
/// passphrase, its lock in `env/run` and its output in `env/NAME.log`.
pub fn spawn(env: &TestEnv, name: &str, args: &[&str]) -> Daemon {
    spawn_env(env, name, args, &[("VGER_PASSPHRASE", PASS)])
}

pub fn spawn_env(env: &TestEnv, name: &str, args: &[&str], vars: &[(&str, &str)]) -> Daemon {
    let log_path = env.path(&format!("{name}.log"));
    let log = fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(vger_bin());
    cmd.arg("--config").arg(env.config()).arg("daemon").args(args);
    for var in ["VGER_PASSPHRASE", "VGER_NEW_PASSPHRASE", "VGER_CONFIG"] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_RUNTIME_DIR", env.path("run"));
    env.private_user_dirs(&mut cmd);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Daemon { child, log_path, exit_code: None }
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; returns the log.
    #[track_caller]
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited ({status}) before logging {needle:?}:\n{log}");
            }
            if Instant::now() > deadline {
                panic!("no {needle:?} in the daemon log after {timeout:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The status server's port, from the "status page at" line.
    #[track_caller]
    pub fn port(&mut self) -> u16 {
        let log = self.wait_log("status page at http://", Duration::from_secs(20));
        let rest = log.split("status page at http://").nth(1).unwrap();
        let addr = rest.split('/').next().unwrap();
        addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn get(&mut self, path: &str) -> (u16, String) {
        let port = self.port();
        http_get(port, path)
    }

    #[track_caller]
    pub fn status(&mut self) -> serde_json::Value {
        let (code, body) = self.get("/api/status.json");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("status.json is not JSON ({e}): {body}"))
    }

    /// Polls the status until `pred` holds; returns it.
    #[track_caller]
    pub fn wait_status(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if pred(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}; status:\n{status:#}\nlog:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Waits for the process to end; its exit code, or 128 + the signal that killed it.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                self.exit_code = Some(code);
                return code;
            }
            if Instant::now() > deadline {
                panic!("the daemon did not exit within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exit_code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` over HTTP/1.0; the status code and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_string())
}

/// A repository of `status.json` by label.
#[track_caller]
pub fn repo<'a>(status: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    status["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == label)
        .unwrap_or_else(|| panic!("no repository {label} in {status:#}"))
}

pub fn cycles(status: &serde_json::Value, label: &str) -> u64 {
    repo(status, label)["cycles"].as_u64().unwrap_or(0)
}

/// The value of a metric line `name{labels} value` (labels as written, e.g. `repository="local"`).
pub fn metric(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// A folder with a few small files to back up.
pub fn make_source(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("a.txt"), format!("hello from {name}\n")).unwrap();
    fs::write(dir.join("sub/b.bin"), crate::common::random_bytes(200_000, 7)).unwrap();
    dir
}

/// `vger init` of the repository labelled `label`.
#[track_caller]
pub fn init(env: &TestEnv, label: &str) {
    env.run(["-R", label, "init"]).ok();
}

/// The number of snapshots `vger list` shows for `label`.
#[track_caller]
pub fn snapshot_count(env: &TestEnv, label: &str) -> usize {
    let v = env.run(["--json", "-R", label, "list"]).ok().json();
    v.as_array().unwrap().len()
}

/// Overwrites the config, keeping a copy of the text for the log of a failed test.
pub fn write_config(env: &TestEnv, yaml: &str) {
    fs::write(env.config(), yaml).unwrap();
}

/// A YAML repository entry.
pub fn repo_yaml(label: &str, url: &Path, extra: &str) -> String {
    format!("  - label: {label}\n    url: \"{}\"\n{extra}", url.display())
}

/// One request a [`Webhook`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: String,
}

/// A local HTTP listener that answers 200 to everything and records it.
pub struct Webhook {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(r) = read_request(stream) {
                    seen.lock().unwrap().push(r);
                }
            }
        });
        Webhook { port, requests }
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the requests received so far.
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; received: {got:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_request(mut stream: TcpStream) -> Option<Recorded> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Recorded {
        method,
        path,
        content_type: header("content-type").unwrap_or_default(),
        body: String::from_utf8_lossy(&data[head_end..]).to_string(),
    })
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
