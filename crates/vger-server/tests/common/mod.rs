//! Starts a real `vger-server` process for a test and talks to it.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

pub mod cli;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vger_storage::{BackendOptions, RestStorage};

pub const FULL: &str = "full-token-0123456789abcdef";
pub const APPEND: &str = "append-token-0123456789abc";
pub const READ: &str = "read-token-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789abcd";
/// An `append` token limited to repository `other`.
pub const OTHER_REPO: &str = "other-repo-token-012345678";

#[allow(unused_imports)]
pub use vger_storage::testsuite::pack_key;

/// The key of a repository object under `prefix` (`snapshots`, `index`,
/// `locks`, `keys`) with an id made from `n`.
pub fn key(prefix: &str, n: u64) -> String {
    vger_storage::testsuite::object_key(&format!("{prefix}/"), n)
}

pub fn default_tokens() -> String {
    format!(
        "- name: full\n  token: {FULL}\n  permissions: full\n\
         - name: append\n  token: {APPEND}\n  permissions: append\n\
         - name: read\n  token: {READ}\n  permissions: read\n\
         - name: admin\n  token: {ADMIN}\n  permissions: admin\n\
         - name: other\n  token: {OTHER_REPO}\n  permissions: append\n  repos: [other]\n"
    )
}

pub struct Server {
    child: Child,
    pub addr: String,
    /// Holds `data/` (the data dir) and `tokens.yaml`; the parent lets tests
    /// check that nothing escapes the data dir.
    pub root: TempDir,
    pub log: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
pub struct Options {
    pub tokens: Option<String>,
    pub env_token: Option<String>,
    pub args: Vec<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Options { tokens: Some(default_tokens()), ..Options::default() })
    }

    pub fn start_with(options: Options) -> Server {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vger-server"));
        command.arg("--data-dir").arg(&data).args(["--listen", "127.0.0.1:0"]).args(&options.args);
        command.env_remove("VGER_SERVER_TOKEN");
        if let Some(tokens) = &options.tokens {
            let file = root.path().join("tokens.yaml");
            std::fs::write(&file, tokens).unwrap();
            command.arg("--tokens").arg(&file);
        }
        if let Some(token) = &options.env_token {
            command.env("VGER_SERVER_TOKEN", token);
        }
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("vger-server did not start: {:?}", log.lock().unwrap());
            }
        };
        let server = Server { child, addr, root, log };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(reply) = self.try_raw(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") {
                if reply.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vger-server never became healthy");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn tokens_file(&self) -> PathBuf {
        self.root.path().join("tokens.yaml")
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{repo}", self.addr)
    }

    pub fn client(&self, repo: &str, token: &str) -> RestStorage {
        RestStorage::new(&self.url(repo), Some(token.to_owned()), &options()).unwrap()
    }

    pub fn hup(&self) {
        // SAFETY: kill(2) with our own child's pid and a valid signal.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0);
    }

    pub fn try_raw(&self, request: &[u8]) -> std::io::Result<RawReply> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.write_all(request)?;
        let mut data = Vec::new();
        stream.read_to_end(&mut data)?;
        Ok(RawReply::parse(&data))
    }

    /// Sends a request as raw bytes (nothing normalised) with
    /// `Connection: close` and reads the whole reply.
    pub fn raw(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawReply {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "PUT" || method == "POST" || !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.try_raw(&bytes).unwrap()
    }

    /// PUT with the right hash header.
    pub fn put(&self, repo: &str, key: &str, token: &str, body: &[u8], extra: &[(&str, &str)]) -> RawReply {
        let hash = blake3::hash(body).to_hex().to_string();
        let mut headers = vec![("x-vger-blake3", hash.as_str())];
        headers.extend_from_slice(extra);
        self.raw("PUT", &format!("/{repo}/{key}"), Some(token), &headers, body)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Every file below the data dir, relative, including temporary files.
    pub fn files(&self) -> Vec<String> {
        all_files(&self.data_dir())
    }

    /// Peak resident memory of the server (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<String> {
    let rest = line.split("listening on ").nth(1)?;
    Some(rest.split(|c: char| c.is_whitespace() || c == '"').next()?.to_owned())
}

pub fn options() -> BackendOptions {
    BackendOptions { allow_insecure_http: true, ..BackendOptions::default() }
}

pub fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawReply {
    fn parse(data: &[u8]) -> RawReply {
        let split = data.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(data.len());
        let head = String::from_utf8_lossy(&data[..split]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut body = data[split..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        RawReply { status, head, body }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim().to_ascii_lowercase() == name).then(|| v.trim().to_owned())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}
