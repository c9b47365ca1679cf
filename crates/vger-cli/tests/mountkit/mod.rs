//! Helpers for the `vger mount` tests: a repository with a small tree
//! backed up twice, `vger mount` as a real child process, and the outside
//! programs the tests drive (curl, rclone, Chromium), skipped with a note
//! when missing outside CI and a failure under CI.

#![allow(dead_code)] // Each mount test file uses a different part.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{random_bytes, run, vger_bin, Run, TestEnv, PASS};
use vger_server::VgerServer;

#[path = "../common/vger_server.rs"]
mod vger_server;

/// The name that must show as text, never run, in the web UI.
pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// Whether `program` can run; outside CI a missing one skips the test
/// (with a note), under CI it fails it: .ci/run installs them.
pub fn have(program: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but `{program}` is missing: .ci/run must install Debian's `{package}`"
        );
        eprintln!("note: skipping: `{program}` is not installed (apt-get install {package})");
    }
    found
}

/// A test tree: nested folders, a multi-chunk file, an empty file and
/// folder, a non-ASCII name, the hostile name and a symbolic link.
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("docs/reports/2026")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::create_dir_all(root.join("photos")).unwrap();
    fs::write(root.join("docs/readme.txt"), "hello from vger mount\nsecond line\n").unwrap();
    fs::write(root.join("docs/reports/2026/q3-report.txt"), "quarter three\n".repeat(200)).unwrap();
    fs::write(root.join("docs/reports/notes.md"), "# notes\n- one\n- two\n").unwrap();
    fs::write(root.join("big.bin"), random_bytes(5 << 20, 7)).unwrap();
    fs::write(root.join("empty.txt"), b"").unwrap();
    fs::write(root.join("photos/été à la plage.txt"), "sunny\n").unwrap();
    fs::write(root.join("photos").join(HOSTILE), "not a tag\n").unwrap();
    // A tiny valid PNG (1x1, red) for the image preview.
    let png = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1,
        8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde, 0, 0, 0, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf,
        0xc0, 0, 0, 0x03, 0x01, 0x01, 0, 0x18, 0xdd, 0x8d, 0xb0, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
        0x82,
    ];
    fs::write(root.join("photos/red.png"), png).unwrap();
    std::os::unix::fs::symlink("docs/readme.txt", root.join("link-to-readme")).unwrap();
}

/// A repository holding two snapshots of source `files`: the tree as
/// made, then with `docs/readme.txt` changed and `docs/added.txt` added.
pub struct Fixture {
    pub env: TestEnv,
    pub src: PathBuf,
    /// The `vger-server` a [`Fixture::slow`] repository lives on.
    server: Option<VgerServer>,
}

const SLOW_TOKEN: &str = "mount-cancel-token-0123456789abcdef";
/// Files of [`Fixture::slow`]'s source, and their size.
pub const SLOW_FILES: usize = 24;
const SLOW_FILE_BYTES: usize = 512 << 10;

impl Fixture {
    pub fn new() -> Self {
        let env = TestEnv::new();
        let src = env.path("src");
        make_tree(&src);
        env.config_with(&[("files", &src)], "");
        env.init();
        env.run(["backup", "--time", "2026-01-10T10:00:00Z"]).ok();
        fs::write(src.join("docs/readme.txt"), "hello from vger mount\nsecond line, changed\nthird line\n").unwrap();
        fs::write(src.join("docs/added.txt"), "new in the second snapshot\n").unwrap();
        env.run(["backup", "--time", "2026-02-20T10:00:00Z"]).ok();
        Self::of(env, src)
    }

    /// A fixture over a repository the caller made (in `env`'s config).
    pub fn of(env: TestEnv, src: PathBuf) -> Self {
        Fixture { env, src, server: None }
    }

    /// One snapshot of source `files` ([`SLOW_FILES`] files of 512 KiB in
    /// `data/`) in a repository on a `vger-server` started here, then read
    /// at 1 MiB/s (`limits.download_mib_per_sec`, as a user limits a slow
    /// link): restoring it takes 12 s or more, long enough to cancel. The
    /// server is the binary `cargo test --workspace` builds beside `vger`;
    /// without it this is None outside CI (with a note) and fails under CI.
    pub fn slow() -> Option<Self> {
        let binary = Path::new(vger_bin()).with_file_name("vger-server");
        if !binary.exists() {
            assert!(std::env::var_os("CI").is_none(), "CI is set but {} is missing", binary.display());
            eprintln!("note: skipping the cancel test: {} is not built (cargo build -p vger-server)", binary.display());
            return None;
        }
        let env = TestEnv::new();
        let src = env.path("src");
        fs::create_dir_all(src.join("data")).unwrap();
        for i in 0..SLOW_FILES {
            fs::write(src.join(format!("data/part-{i:02}.bin")), random_bytes(SLOW_FILE_BYTES, 100 + i as u64))
                .unwrap();
        }
        let server = VgerServer::start(&binary, &env.path("server-data"), SLOW_TOKEN);
        let addr = &server.addr;
        let repo = format!(
            "repositories:\n  - label: slow\n    url: \"http://{addr}/slow\"\n    access_token: \"{SLOW_TOKEN}\"\n    \
             allow_insecure_http: true\nsources:\n  - label: files\n    path: \"{}\"\n",
            src.display()
        );
        env.write_config(&repo);
        env.init();
        env.run(["backup"]).ok();
        env.write_config(&format!("{repo}limits:\n  download_mib_per_sec: 1\n"));
        Some(Fixture { env, src, server: Some(server) })
    }

    /// Starts `vger mount ARGS` (on a free loopback port unless ARGS give
    /// an address) and waits for its address.
    pub fn mount(&self, args: &[&str]) -> Mount {
        self.mount_env(args, &[])
    }

    pub fn mount_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Mount {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(self.env.config()).arg("mount");
        if !args.contains(&"--address") {
            cmd.args(["--address", "127.0.0.1:0"]);
        }
        cmd.args(args);
        cmd.env_remove("VGER_MOUNT_TOKEN").env("VGER_PASSPHRASE", PASS);
        self.env.private_user_dirs(&mut cmd);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let log = self.env.path("mount.log");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(fs::File::create(&log).unwrap()));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut printed = Vec::new();
        let mut url = None;
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let first = line.trim_start();
                    if first.starts_with("browser") {
                        url = Some(line.split_whitespace().last().unwrap().trim_end_matches('/').to_string());
                    }
                    // The rclone line is the last of the addresses.
                    let done = first.starts_with("rclone");
                    printed.push(line);
                    if let (true, Some(url)) = (done, url.clone()) {
                        return Mount { child, url, printed, lines: rx, log };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "vger mount printed no address: {printed:?}\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    )
                }
            }
        }
    }
}

/// A running `vger mount`; killed when dropped.
pub struct Mount {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    /// What it printed at start.
    pub printed: Vec<String>,
    pub lines: mpsc::Receiver<String>,
    pub log: PathBuf,
}

impl Mount {
    pub fn host_port(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn stop(&mut self) -> i32 {
        // SAFETY: kill on our own child's PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -s ARGS`, with the status code on the last line of stdout.
pub fn curl(args: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "60", "-w", "\n%{http_code}"]).args(args);
    let r: Run = run(cmd);
    assert_eq!(r.code, 0, "curl failed: {r:?}");
    let (body, code) = r.stdout.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// `curl -s -i ARGS`: status, headers (lower-cased names) and body bytes.
pub fn curl_full(args: &[&str]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let out = Command::new("curl").args(["-s", "-S", "--max-time", "60", "-i"]).args(args).output().unwrap();
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let raw = out.stdout;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
