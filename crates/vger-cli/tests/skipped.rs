//! A file the user running vger cannot read is skipped with a warning that
//! names it; the snapshot is still written, counts the error, and the run
//! exits with code 3. Root can read everything, so the backup runs as
//! `nobody` (65534) through `setpriv`.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{run, walk, TestEnv, PASS};

const NOBODY: u32 = 65534;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `chown -R` to nobody.
fn give_to_nobody(root: &Path) {
    std::os::unix::fs::chown(root, Some(NOBODY), Some(NOBODY)).unwrap();
    for (rel, _) in walk(root) {
        std::os::unix::fs::lchown(root.join(rel), Some(NOBODY), Some(NOBODY)).unwrap();
    }
}

#[test]
fn unreadable_file_is_skipped_with_exit_code_3() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root (as CI does) to switch to an unprivileged user");
    let env = TestEnv::new();
    chmod(env.dir.path(), 0o777);
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("readable.txt"), b"anyone may read this\n").unwrap();
    fs::write(src.join("sub/also-readable.txt"), b"and this\n").unwrap();
    fs::write(src.join("secret.txt"), b"root only\n").unwrap();
    chmod(&src.join("secret.txt"), 0o000);
    env.config_with(&[("mixed", &src)], "");
    chmod(&env.config(), 0o644);
    env.init();
    give_to_nobody(&env.repo());

    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--reset-env", "env"])
        .arg(format!("VGER_PASSPHRASE={PASS}"))
        .arg("HOME=/tmp")
        .arg(common::vger_bin())
        .arg("--config")
        .arg(env.config())
        .arg("backup");
    let out = run(cmd).no_panic();
    assert_eq!(out.code, 3, "a skipped file must give exit code 3: {out:?}");
    let warning = out.stderr.lines().find(|l| l.contains("secret.txt")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(warning.contains("warning"), "{warning}");
    assert!(!out.stderr.contains("readable.txt"), "{out:?}");

    let list = env.list_json();
    assert_eq!(list.len(), 1, "the snapshot must be written despite the skipped file");
    assert_eq!(list[0]["errors"], 1, "{}", list[0]);

    let dest = env.path("dest");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    assert_eq!(fs::read(dest.join("readable.txt")).unwrap(), b"anyone may read this\n");
    assert_eq!(fs::read(dest.join("sub/also-readable.txt")).unwrap(), b"and this\n");
    assert!(!dest.join("secret.txt").exists(), "a skipped file was restored");
}
