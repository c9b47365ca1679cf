//! A `vger-server` started for a test: on a free port of this machine,
//! serving `data_dir` with one full-access token, killed when dropped.
//! vger-cli's tests and vger-gui's end-to-end test include this file by
//! path (`#[path] mod vger_server;`): a test sees only its own package's
//! helpers, and this one needs nothing but std.

#![allow(dead_code)] // Each test uses a different part.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct VgerServer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl VgerServer {
    /// The `vger-server` binary beside `vger` (which `cargo test
    /// --workspace` builds; a test only gets `CARGO_BIN_EXE_*` of its own
    /// package), if it is there.
    pub fn binary_beside(vger: &Path) -> Option<PathBuf> {
        let path = vger.with_file_name("vger-server");
        path.exists().then_some(path)
    }

    pub fn start(binary: &Path, data_dir: &Path, token: &str) -> VgerServer {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut child = Command::new(binary)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("VGER_SERVER_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().unwrap();
        // Owned from here on, so a panic below still kills it.
        let mut server = VgerServer { child, addr: String::new() };
        let mut lines = BufReader::new(stderr).lines();
        server.addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| Some(l.split("listening on ").nth(1)?.split_whitespace().next()?.to_owned()))
            .unwrap_or_else(|| panic!("vger-server did not say where it listens"));
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        server
    }
}

impl Drop for VgerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
