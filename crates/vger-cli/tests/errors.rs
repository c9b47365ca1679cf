//! User errors: each gives exit code 1, one line on stderr naming the cause,
//! no panic, and leaves the repository exactly as it was.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;

use common::{assert_unchanged, fingerprint, TestEnv};

/// A repository holding one snapshot of a small tree.
fn backed_up() -> TestEnv {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), b"beta\n").unwrap();
    env.config_with(&[("small", &src)], "");
    env.init();
    env.backup_json();
    env
}

#[test]
fn wrong_passphrase_on_backup_list_restore_info() {
    let env = backed_up();
    let before = fingerprint(&env.repo());
    let wrong = [("VGER_PASSPHRASE", "not the passphrase")];
    let dest = env.path("dest");
    for args in [vec!["backup"], vec!["list"], vec!["info"], vec!["restore", "latest", dest.to_str().unwrap()]] {
        env.run_env(&args, &wrong).one_line_error(&["wrong passphrase"]);
    }
    assert!(!dest.exists(), "a restore with the wrong passphrase created its target");
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

#[test]
fn missing_repository_folder() {
    let env = TestEnv::new();
    fs::create_dir(env.path("src")).unwrap();
    env.config_with(&[("src", &env.path("src"))], "");
    for args in [vec!["backup"], vec!["list"], vec!["info"], vec!["restore", "latest", "dest"]] {
        env.run(&args).one_line_error(&["vger init"]);
    }
    assert!(!env.repo().exists(), "a command other than init created the repository folder");
    assert!(!env.path("dest").exists());
}

#[test]
fn empty_repository_folder() {
    let env = TestEnv::new();
    fs::create_dir(env.path("src")).unwrap();
    fs::create_dir(env.repo()).unwrap();
    env.config_with(&[("src", &env.path("src"))], "");
    for args in [vec!["backup"], vec!["list"], vec!["info"], vec!["restore", "latest", "dest"]] {
        env.run(&args).one_line_error(&["vger init"]);
    }
    assert!(fingerprint(&env.repo()).is_empty(), "the empty folder was written to");
}

#[test]
fn init_twice() {
    let env = backed_up();
    let before = fingerprint(&env.repo());
    env.run(["init"]).one_line_error(&["already exists"]);
    // With another passphrase too: nothing is added (no new key slot).
    env.run_env(["init"], &[("VGER_PASSPHRASE", "another")]).one_line_error(&["already exists"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

#[test]
fn init_into_a_folder_with_other_files() {
    let env = TestEnv::new();
    fs::create_dir(env.repo()).unwrap();
    fs::write(env.repo().join("precious.txt"), b"not a repository\n").unwrap();
    env.config_with(&[], "");
    let before = fingerprint(&env.repo());
    env.run(["init"]).one_line_error(&["not empty"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

#[test]
fn missing_source_path() {
    let env = backed_up();
    let missing = env.path("no-such-dir");
    env.config_with(&[("gone", &missing)], "");
    let before = fingerprint(&env.repo());
    env.run(["backup"]).code(1).stderr_has(&[&missing.display().to_string(), "does not exist"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

#[test]
fn missing_source_path_is_one_line() {
    let env = backed_up();
    let missing = env.path("no-such-dir");
    env.config_with(&[("gone", &missing)], "");
    env.run(["backup"]).one_line_error(&[&missing.display().to_string(), "does not exist"]);
}

#[test]
fn unknown_snapshot_id() {
    let env = backed_up();
    let before = fingerprint(&env.repo());
    env.run(["restore", "ffffffffff", "dest"]).one_line_error(&["no snapshot matches `ffffffffff`"]);
    env.run(["snapshot", "info", "not-hex"]).one_line_error(&["no snapshot matches"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

/// Writes `yaml` as the config and asserts that `vger list` fails naming
/// `vger.yaml:LINE:COL` and every one of `needles`.
#[track_caller]
fn config_error(env: &TestEnv, yaml: &str, line_col: &str, needles: &[&str]) {
    env.write_config(yaml);
    let before = fingerprint(&env.repo());
    let run = env.run(["list"]).one_line_error(needles);
    assert!(run.stderr.contains(&format!("vger.yaml:{line_col}")), "no `vger.yaml:{line_col}` in: {}", run.stderr);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}

#[test]
fn config_unknown_key_names_line_and_fix() {
    let env = backed_up();
    let url = env.repo().display().to_string();
    let yaml = format!(
        "repositories:\n  - url: \"{url}\"\n    label: local\nsources:\n  - label: s\n    path: /tmp\n    exlude: [\"*.o\"]\n"
    );
    config_error(&env, &yaml, "7:5", &["exlude", "did you mean `exclude`"]);
}

#[test]
fn config_wrong_type() {
    let env = backed_up();
    let url = env.repo().display().to_string();
    let yaml = format!(
        "repositories:\n  - url: \"{url}\"\nsources:\n  - label: s\n    path: /tmp\n    one_file_system: maybe\n"
    );
    config_error(&env, &yaml, "6:", &["one_file_system"]);
    let yaml = format!("repositories:\n  - url: \"{url}\"\nsources: [/tmp]\ncompression: 7\n");
    config_error(&env, &yaml, "4:", &["compression"]);
}

#[test]
fn config_broken_yaml() {
    let env = backed_up();
    let url = env.repo().display().to_string();
    let yaml = format!("repositories:\n  - url: \"{url}\"\nsources: [/tmp, /home\n");
    config_error(&env, &yaml, "", &["vger.yaml"]);
    let yaml = format!("repositories:\n  - url: \"{url}\"\n   label: bad-indent\n");
    config_error(&env, &yaml, "", &["vger.yaml"]);
}

#[test]
fn config_missing_required_field() {
    let env = backed_up();
    config_error(&env, "repositories:\n  - label: nowhere\nsources: [/tmp]\n", "2:", &["url"]);
}

#[test]
fn unknown_repository_label() {
    let env = backed_up();
    let before = fingerprint(&env.repo());
    env.run(["-R", "nope", "list"]).one_line_error(&["nope", "local"]);
    assert_unchanged(&before, &fingerprint(&env.repo()));
}
