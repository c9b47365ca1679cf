//! Runs the `vger` client against a test server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `vger` binary built beside `vger-server` by `cargo test --workspace`.
pub fn vger_bin() -> Option<PathBuf> {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_vger-server"));
    let vger = server.with_file_name("vger");
    if vger.exists() {
        return Some(vger);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {} is missing: run `cargo test --workspace`", vger.display());
    }
    eprintln!("note: skipping: {} not built (run `cargo build -p vger-cli`)", vger.display());
    None
}

/// A vger configuration with one repository, `http://{addr}/laptop`,
/// reached with `token`, and one source `docs` at `src`.
pub fn config(dir: &Path, addr: &str, token: &str, src: &Path) -> PathBuf {
    let path = dir.join(format!("vger-{}.yaml", &token[..4]));
    std::fs::write(
        &path,
        format!(
            "repositories:\n  - label: server\n    url: http://{addr}/laptop\n    access_token: {token}\n    allow_insecure_http: true\nsources:\n  - label: docs\n    path: \"{}\"\nretention:\n  keep_last: 2\n",
            src.display()
        ),
    )
    .unwrap();
    path
}

pub fn vger(bin: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("VGER_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap()
}

/// Asserts success and returns the output.
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// Stdout and stderr of a run, as text.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
