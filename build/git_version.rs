// The build script of every vger binary (`include!`d by
// crates/vger-cli/build.rs and crates/vger-server/build.rs): names the git
// commit the binary is built from in `--version` (VGER_LONG_VERSION).
// Outside a git checkout (a tarball, `cargo install` from a copied tree) or
// without git the commit reads "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let describe = match &commit {
        // No "modified" mark: this script reruns only when HEAD moves, so
        // it could not tell edits made after the first build.
        Some(hash) => format!("{version} (commit {hash})"),
        None => format!("{version} (commit unknown)"),
    };
    println!("cargo:rustc-env=VGER_LONG_VERSION={describe}");
    // Rebuild when the checked-out commit moves (HEAD, its branch, packed refs).
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build/git_version.rs");
}
