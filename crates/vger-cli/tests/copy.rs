//! `vger copy` from a local repository to S3 (the test server started by
//! `scripts/servers/s3-start`; a second local folder without it) with a
//! different passphrase and compression: restore from the target equals
//! the source, a second run copies nothing, `--last` selects.
//!
//! Without VGER_TEST_S3_ENDPOINT the target is local, except under CI,
//! where the test fails.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use common::*;

fn target_yaml(env: &TestEnv) -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("VGER_TEST_S3_ENDPOINT") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but VGER_TEST_S3_ENDPOINT is not: start the server with scripts/servers/s3-start");
        }
        eprintln!("note: copying to a local folder: VGER_TEST_S3_ENDPOINT not set (see scripts/servers/s3-start)");
        return format!("    url: \"{}\"\n", env.path("offsite").display());
    };
    let prefix = env.path("").file_name().unwrap().to_string_lossy().to_string();
    format!(
        "    url: \"s3+http://{}/{}/{prefix}\"\n    allow_insecure_http: true\n    \
         access_key_id: \"{}\"\n    secret_access_key: \"{}\"\n    region: us-east-1\n    s3_addressing: path\n",
        endpoint.trim_start_matches("http://").trim_end_matches('/'),
        var("VGER_TEST_S3_BUCKET").unwrap_or_else(|| "vger-test".into()),
        var("VGER_TEST_S3_ACCESS_KEY").unwrap_or_default(),
        var("VGER_TEST_S3_SECRET_KEY").unwrap_or_default(),
    )
}

#[test]
fn copy_to_s3_restores_equal_and_reruns_copy_nothing() {
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let mut random = vec![0u8; 1_500_000];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(src.join("random"), &random).unwrap();
    std::fs::write(src.join("sub/same-random"), &random).unwrap();
    std::fs::write(src.join("sub/deeper/text"), "line of text\n".repeat(40_000)).unwrap();
    std::fs::write(src.join("sub/empty"), b"").unwrap();
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\n    compression: lz4\n    encryption:\n      passphrase: first-pass\n\
         \x20 - label: offsite\n{}    compression: zstd:5\n    encryption:\n      passphrase: second-pass\n\
         sources:\n  - label: docs\n    path: \"{}\"\n",
        env.repo().display(),
        target_yaml(&env),
        src.display()
    );
    env.write_config(&yaml);
    env.run_env(["init"], &[]).ok();
    env.run_env(["-R", "local", "backup"], &[]).ok();
    std::fs::write(src.join("added-later"), b"a file of the second snapshot\n").unwrap();
    env.run_env(["-R", "local", "backup"], &[]).ok();

    // --last 1 copies only the newest; the full run then copies the other.
    let first = env.run_env(["--json", "copy", "--from", "local", "--to", "offsite", "--last", "1"], &[]).ok().json();
    assert_eq!(first["copied"].as_array().unwrap().len(), 1, "{first}");
    let rest = env.run_env(["--json", "copy", "--from", "local", "--to", "offsite"], &[]).ok().json();
    assert_eq!(rest["copied"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["already_copied"].as_array().unwrap().len(), 1, "{rest}");
    let again = env.run_env(["--json", "copy", "--from", "local", "--to", "offsite"], &[]).ok().json();
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["chunks_sent"], 0, "{again}");

    let list = env.run_env(["-R", "offsite", "--json", "list"], &[]).ok().json();
    let origins: Vec<&str> = list.as_array().unwrap().iter().filter_map(|s| s["copied_from"].as_str()).collect();
    assert_eq!(origins.len(), 2, "{list}");
    let text = env.run_env(["-R", "offsite", "list"], &[]).ok();
    assert!(text.stdout.contains("copied from snapshot"), "{}", text.stdout);

    let dest = env.path("restored");
    env.run_env(["-R", "offsite", "restore", "latest", dest.to_str().unwrap()], &[]).ok();
    let restored = dest.join(src.strip_prefix("/").unwrap());
    let root = if restored.exists() { restored } else { dest.clone() };
    assert_eq!(compare_trees(&src, &root), Vec::<String>::new());
}

/// `copy_to` on a repository: the default cycle copies each new snapshot
/// after the backup, and the next cycle copies only the new one.
#[test]
fn default_cycle_copies_after_backup() {
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file"), "cycle data\n".repeat(10_000)).unwrap();
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\n    copy_to: [offsite]\n    encryption:\n      passphrase: first-pass\n\
         \x20 - label: offsite\n{}    compression: zstd:5\n    encryption:\n      passphrase: second-pass\n\
         sources:\n  - label: docs\n    path: \"{}\"\n    repos: [local]\n",
        env.repo().display(),
        target_yaml(&env),
        src.display()
    );
    env.write_config(&yaml);
    env.run_env(["init"], &[]).ok();
    env.run_env(["-R", "local"], &[]).ok();
    std::fs::write(src.join("second"), b"more").unwrap();
    env.run_env(["-R", "local"], &[]).ok();
    let list = env.run_env(["-R", "offsite", "--json", "list"], &[]).ok().json();
    let copies = list.as_array().unwrap();
    assert_eq!(copies.len(), 2, "{list}");
    assert!(copies.iter().all(|s| s["copied_from"].is_string()), "{list}");
    let dest = env.path("restored");
    env.run_env(["-R", "offsite", "restore", "latest", dest.to_str().unwrap()], &[]).ok();
    let restored = dest.join(src.strip_prefix("/").unwrap());
    let root = if restored.exists() { restored } else { dest.clone() };
    assert_eq!(compare_trees(&src, &root), Vec::<String>::new());
}
