//! What a storage host without the key, or another user of this machine,
//! can try against a client: replacing an encrypted repository's `config`
//! with an unencrypted one (and hiding its index and snapshots, so the
//! next backup would upload everything anew in plain text), reading the
//! client's state files and config, or planting a symlink where the client
//! writes its state.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn backed_up() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/secret.txt"), b"the plans\n").unwrap();
    fs::write(src.join("big.bin"), random_bytes(3 << 20, 1)).unwrap();
    env.config_with(&[("docs", &src)], "");
    env.init();
    env.run(["backup"]).ok();
    (env, src)
}

/// The host's forgery: the `config` of an unencrypted repository it made
/// itself, in place of the real one; `index/` and `snapshots/` hidden.
fn swap_in_unencrypted_config(env: &TestEnv) {
    let other = TestEnv::new();
    other.config_with(&[], "encryption:\n  mode: none\n");
    other.init();
    fs::copy(other.repo().join("config"), env.repo().join("config")).unwrap();
    for dir in ["index", "snapshots"] {
        fs::rename(env.repo().join(dir), env.path(&format!("hidden-{dir}"))).unwrap();
    }
}

/// A better forgery: the real config with `encryption: none`, the real
/// repository id kept, checksummed as unencrypted configs are (no key
/// needed).
fn forge_unencrypted_config_with_the_real_id(env: &TestEnv) {
    use vger_format::repo_config::RepoConfig;
    let (mut config, _) = RepoConfig::decode_unverified(&fs::read(env.repo().join("config")).unwrap()).unwrap();
    config.encryption = "none".into();
    let bytes = config.encode(|body| *blake3::keyed_hash(&[0u8; 32], body).as_bytes()).unwrap();
    fs::write(env.repo().join("config"), bytes).unwrap();
}

#[test]
fn a_config_swapped_for_an_unencrypted_one_is_refused_and_nothing_is_written() {
    let (env, src) = backed_up();
    let real_config = fs::read(env.repo().join("config")).unwrap();
    swap_in_unencrypted_config(&env);
    let before = fingerprint(&env.repo());
    env.run(["backup"]).one_line_error(&["is not encrypted", "mode: none", "replaced"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));

    // With the real id, this client's memory of the repository refuses it
    // even when the config says `mode: none` (copied from another machine).
    fs::write(env.repo().join("config"), &real_config).unwrap();
    forge_unencrypted_config_with_the_real_id(&env);
    let before = fingerprint(&env.repo());
    for extra in ["", "encryption:\n  mode: none\n"] {
        env.config_with(&[("docs", &src)], extra);
        let run =
            env.run(["backup"]).one_line_error(&["encryption as `none`", "this client saw", "replaced or altered"]);
        let memory = env.path(".xdg-state/vger/repositories");
        assert!(run.stderr.contains(&memory.display().to_string()), "names the file to delete: {}", run.stderr);
        assert_unchanged(&before, &fingerprint(&env.repo()));
    }
}

#[test]
fn a_repository_made_without_encryption_opens_when_the_config_says_so() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"plain\n").unwrap();
    env.config_with(&[("docs", &src)], "encryption:\n  mode: none\n");
    env.init();
    env.run(["backup"]).ok();
    // The same repository, with the `mode: none` line gone from the config.
    env.config_with(&[("docs", &src)], "");
    env.run(["list"]).one_line_error(&["is not encrypted", "mode: none"]);
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn state_files_are_private_and_a_planted_symlink_is_not_followed() {
    let (env, _src) = backed_up();
    let state = env.path(".xdg-state/vger");
    let mut checked = 0;
    for (rel, md) in walk(&state) {
        let path = state.join(&rel);
        let want = if md.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 2, "the settings memory and its folder at least");
    assert_eq!(mode(&state), 0o700);

    // Another local user (or a bug) plants a symlink where the next
    // state file will be written: it is replaced, never written through.
    let victim = env.path("victim.txt");
    fs::write(&victim, b"precious").unwrap();
    let memory = state.join("repositories");
    let file = fs::read_dir(&memory).unwrap().flatten().next().unwrap().path();
    let saved = fs::read(&file).unwrap();
    fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    // The memory cannot be read through a symlink: a clear error.
    env.run(["list"]).one_line_error(&["unreadable", &file.display().to_string()]);
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    fs::remove_file(&file).unwrap();
    fs::write(&file, saved).unwrap();
    env.run(["list"]).ok();
}

#[test]
fn a_config_holding_secrets_that_others_can_read_gets_one_warning() {
    let (env, src) = backed_up();
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\nencryption:\n  passphrase: \"{PASS}\"\nsources:\n  - label: docs\n    path: \"{}\"\n",
        env.repo().display(),
        src.display()
    );
    env.write_config(&yaml);
    fs::set_permissions(env.config(), fs::Permissions::from_mode(0o644)).unwrap();
    let run = env.run_env(["list"], &[]).ok();
    let warnings: Vec<&str> = run.stderr_lines().into_iter().filter(|l| l.contains("chmod 600")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].contains("passphrase") && warnings[0].contains("other users can read it"), "{}", run.stderr);
    fs::set_permissions(env.config(), fs::Permissions::from_mode(0o600)).unwrap();
    let run = env.run_env(["list"], &[]).ok();
    assert!(!run.stderr.contains("chmod"), "{}", run.stderr);
}

#[test]
fn restore_flags_narrow_what_is_recreated() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root; the narrowed restore needs chown and mknod");
        return;
    }
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("tool"), b"#!/bin/sh\n").unwrap();
    // chown clears setuid: owner first.
    std::os::unix::fs::chown(src.join("tool"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(src.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    let dev = std::ffi::CString::new(src.join("null").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mknod has no other preconditions.
    assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0);
    let xattr = xattr::set(src.join("tool"), "user.origin", b"build").is_ok();
    env.config_with(&[("docs", &src)], "");
    env.init();
    env.run(["backup"]).ok();

    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let exact = env.path("exact");
    env.run(["restore", "latest", exact.to_str().unwrap()]).ok();
    let tool = fs::metadata(exact.join("tool")).unwrap();
    assert_eq!((tool.mode() & 0o7777, tool.uid(), tool.gid()), (0o4755, 1234, 5678));
    assert!(fs::symlink_metadata(exact.join("null")).unwrap().file_type().is_char_device());

    let narrowed = env.path("narrowed");
    let args = ["restore", "latest", narrowed.to_str().unwrap(), "--no-owner", "--no-special", "--no-xattrs"];
    env.run(args).ok();
    let tool = fs::metadata(narrowed.join("tool")).unwrap();
    assert_eq!((tool.mode() & 0o7777, tool.uid(), tool.gid()), (0o755, 0, 0));
    assert_eq!(fs::read(narrowed.join("tool")).unwrap(), b"#!/bin/sh\n");
    assert!(fs::symlink_metadata(narrowed.join("null")).is_err(), "a device node was made");
    if xattr {
        assert_eq!(xattr::get(exact.join("tool"), "user.origin").unwrap().as_deref(), Some(&b"build"[..]));
        assert_eq!(xattr::get(narrowed.join("tool"), "user.origin").unwrap(), None);
    }
}
