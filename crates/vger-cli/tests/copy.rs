//! `vger copy` from a local repository to S3 (the test server started by
//! `scripts/servers/s3-start`; a second local folder without it) with a
//! different passphrase and compression: restore from the target equals
//! the source, a second run copies nothing, `--last` selects.
//!
//! Without VGER_TEST_S3_ENDPOINT the target is local, except under CI,
//! where the test fails.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;

fn target_yaml(env: &TestEnv) -> String {
    target_yaml_at(env, "offsite")
}

/// A repository called `name`: on the S3 test server when it runs, else a
/// local folder.
fn target_yaml_at(env: &TestEnv, name: &str) -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(endpoint) = var("VGER_TEST_S3_ENDPOINT") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but VGER_TEST_S3_ENDPOINT is not: start the server with scripts/servers/s3-start");
        }
        eprintln!("note: copying to a local folder: VGER_TEST_S3_ENDPOINT not set (see scripts/servers/s3-start)");
        return format!("    url: \"{}\"\n", env.path(name).display());
    };
    let prefix = format!("{}-{name}", env.path("").file_name().unwrap().to_string_lossy());
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

/// Small chunks for the source, so that it differs from the default the
/// other repositories get.
const SMALL_CHUNKER: &str = "chunker: { min_size: 64KiB, avg_size: 256KiB, max_size: 1MiB }\n";

fn three_repos_yaml(env: &TestEnv, src: &std::path::Path, chunker: &str) -> String {
    format!(
        "repositories:\n  - label: local\n    url: \"{}\"\n    encryption:\n      passphrase: first-pass\n\
         \x20 - label: same\n    url: \"{}\"\n    compression: zstd:3\n    encryption:\n      passphrase: second-pass\n\
         \x20 - label: other\n    url: \"{}\"\n    encryption:\n      passphrase: third-pass\n\
         sources:\n  - label: docs\n    path: \"{}\"\n{chunker}",
        env.repo().display(),
        env.path("same").display(),
        env.path("other").display(),
        src.display()
    )
}

fn info(env: &TestEnv, label: &str) -> serde_json::Value {
    env.run_env(["-R", label, "--json", "info"], &[]).ok().json()[0]["info"].clone()
}

fn restored_root(dest: &std::path::Path, src: &std::path::Path) -> std::path::PathBuf {
    let restored = dest.join(src.strip_prefix("/").unwrap());
    if restored.exists() {
        restored
    } else {
        dest.to_path_buf()
    }
}

/// A target made with `--copy-chunker-params-from` gets the source's
/// chunks as they are (as many as the source holds, stored in no more
/// space); a target with other parameters gets the files cut again, which
/// restores exactly and lets its own backups deduplicate against the copy.
#[test]
fn copy_keeps_chunks_for_equal_chunker_params_and_rechunks_otherwise() {
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("random"), random_bytes(5_000_000, 1)).unwrap();
    std::fs::write(src.join("sub/same-random"), random_bytes(5_000_000, 1)).unwrap();
    std::fs::write(src.join("sub/text"), "a line of text\n".repeat(100_000)).unwrap();
    std::fs::write(src.join("sub/small"), b"small\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    // For the copy's window: two equal files in one folder, a file of
    // one chunk repeated, and a file again in a subfolder while the first
    // may still be on its way.
    std::fs::write(src.join("a-twin"), random_bytes(3_000_000, 5)).unwrap();
    std::fs::write(src.join("b-twin"), random_bytes(3_000_000, 5)).unwrap();
    std::fs::write(src.join("zeros"), vec![0u8; 6_000_000]).unwrap();
    std::fs::write(src.join("c-first"), random_bytes(2_000_000, 6)).unwrap();
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/copy-of-c"), random_bytes(2_000_000, 6)).unwrap();
    // The source is made with small chunks; the others under the default.
    env.write_config(&three_repos_yaml(&env, &src, SMALL_CHUNKER));
    env.run_env(["-R", "local", "init"], &[]).ok();
    env.write_config(&three_repos_yaml(&env, &src, ""));
    let made = env.run_env(["-R", "same", "--json", "init", "--copy-chunker-params-from", "local"], &[]).ok().json();
    assert_eq!(made["chunker"]["avg_size"], 256 << 10, "{made}");
    let made = env.run_env(["-R", "other", "--json", "init"], &[]).ok().json();
    assert_eq!(made["chunker"]["avg_size"], 2 << 20, "{made}");
    env.run_env(["-R", "local", "backup"], &[]).ok();

    let same = env.run_env(["--json", "copy", "--from", "local", "--to", "same"], &[]).ok().json();
    assert_eq!(same["rechunked_files"], 0, "{same}");
    let (src_info, same_info) = (info(&env, "local"), info(&env, "same"));
    assert_eq!(src_info["chunks"], same_info["chunks"], "chunks move as they are: {src_info} {same_info}");
    let (src_stored, same_stored) =
        (src_info["stored_bytes"].as_u64().unwrap(), same_info["stored_bytes"].as_u64().unwrap());
    println!("stored: source {src_stored} bytes, copy with the source's chunker params {same_stored} bytes");
    assert!(same_stored <= src_stored, "the copy stores more than the source: {same_stored} > {src_stored}");

    let other = env.run_env(["--json", "copy", "--from", "local", "--to", "other"], &[]).ok().json();
    // Files with data, each content cut once: random, a-twin, c-first,
    // zeros, sub/text and sub/small (not same-random, b-twin, copy-of-c).
    assert_eq!(other["rechunked_files"], 6, "{other}");
    let other_info = info(&env, "other");
    assert!(
        other_info["chunks"].as_u64().unwrap() < src_info["chunks"].as_u64().unwrap(),
        "larger chunks, fewer of them: {other_info} {src_info}"
    );
    println!("stored: copy with other chunker params {} bytes", other_info["stored_bytes"]);
    for label in ["same", "other"] {
        let dest = env.path(&format!("restored-{label}"));
        env.run_env(["-R", label, "restore", "latest", dest.to_str().unwrap()], &[]).ok();
        assert_eq!(compare_trees(&src, &restored_root(&dest, &src)), Vec::<String>::new(), "{label}");
        env.run_env(["-R", label, "check", "--verify-data"], &[]).ok();
        // A backup straight into the target cuts what the copy cut.
        let backup = env.run_env(["-R", label, "--json", "backup"], &[]).ok().json();
        assert_eq!(backup[0]["stats"]["added_bytes"], 0, "{label}: {backup}");
    }
}

/// The repository labelled `label` of the test's config, opened in this
/// process (its passphrase is in the config).
fn open_repo(env: &TestEnv, label: &str) -> vger_engine::repository::Repository {
    let loaded = vger_config::Config::load(Some(&env.config())).unwrap();
    let app = vger_app::App::from_loaded(loaded);
    let repo = app.repositories(Some(label)).unwrap()[0].clone();
    app.open(&repo).unwrap()
}

/// Creates the repository labelled `label` as `vger init` does, with 1 MiB
/// packs instead of 32 MiB: a copy of a few tens of MiB then stores many
/// packs, and a kill leaves some beyond the last index checkpoint. With
/// `chunker_from`, the chunker parameters of that repository (as
/// `--copy-chunker-params-from`).
fn init_with_small_packs(env: &TestEnv, label: &str, passphrase: &str, chunker_from: Option<&str>) {
    let loaded = vger_config::Config::load(Some(&env.config())).unwrap();
    let app = vger_app::App::from_loaded(loaded);
    let repo = app.repositories(Some(label)).unwrap()[0].clone();
    let mut opts = vger_app::init::init_options(&app.config, &repo).unwrap();
    opts.pack_target_size = 1 << 20;
    if let Some(from) = chunker_from {
        opts.chunker = open_repo(env, from).chunker_params();
    }
    let storage = app.storage(&repo, true).unwrap();
    vger_engine::repository::Repository::init(storage, Some(passphrase.as_bytes().to_vec()), opts).unwrap();
}

/// The chunk IDs of every pack stored in `repo`, indexed or not, read
/// from the packs' trailers.
fn stored_chunks(repo: &vger_engine::repository::Repository) -> HashMap<String, Vec<String>> {
    vger_engine::packs::stored_packs(repo)
        .unwrap()
        .into_iter()
        .map(|(id, size)| {
            let blobs = vger_engine::packs::read_trailer(repo, &id, size).unwrap();
            (id.to_string(), blobs.iter().map(|b| b.id.to_string()).collect())
        })
        .collect()
}

/// `stored_chunks` once two listings 300 ms apart agree (uploads that were
/// in flight when a copy was killed have landed or been dropped).
fn settled_chunks(repo: &vger_engine::repository::Repository) -> HashMap<String, Vec<String>> {
    let mut last = stored_chunks(repo);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = stored_chunks(repo);
        if now.keys().collect::<HashSet<_>>() == last.keys().collect::<HashSet<_>>() {
            return now;
        }
        last = now;
    }
}

/// A copy killed with SIGKILL at seeded random moments and rerun, into a
/// target on the S3 test server when it runs (as in CI): no run stores a
/// chunk that an earlier, killed run had stored (the packs it left beyond
/// the last index checkpoint are recovered, not sent again), and the
/// target then restores to the source and checks clean. `rechunk`: the
/// target's chunker parameters differ from the source's (files are cut
/// again); otherwise it is made with `--copy-chunker-params-from` and
/// chunks move as they are.
fn a_copy_killed_at_random_points_resumes_without_sending_a_chunk_twice(rechunk: bool) {
    let env = TestEnv::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..8u64 {
        std::fs::write(src.join(format!("d/f{i}")), random_bytes(9_000_000, 10 + i)).unwrap();
    }
    std::fs::write(src.join("text"), "copy me\n".repeat(200_000)).unwrap();
    // `target` is the one killed into; `probe`, beside it with the same
    // settings, times an uninterrupted copy to kill inside.
    let yaml = |chunker: &str| {
        format!(
            "repositories:\n  - label: local\n    url: \"{}\"\n    encryption:\n      passphrase: first-pass\n\
             \x20 - label: target\n{}    compression: zstd:3\n    encryption:\n      passphrase: second-pass\n\
             \x20 - label: probe\n{}    compression: zstd:3\n    encryption:\n      passphrase: probe-pass\n\
             sources:\n  - label: docs\n    path: \"{}\"\n{chunker}",
            env.repo().display(),
            target_yaml_at(&env, "target"),
            target_yaml_at(&env, "probe"),
            src.display()
        )
    };
    env.write_config(&yaml(SMALL_CHUNKER));
    env.run_env(["-R", "local", "init"], &[]).ok();
    env.write_config(&yaml(""));
    for (label, pass) in [("target", "second-pass"), ("probe", "probe-pass")] {
        init_with_small_packs(&env, label, pass, (!rechunk).then_some("local"));
    }
    env.run_env(["-R", "local", "backup"], &[]).ok();

    // How long an uninterrupted copy takes here, to kill inside it.
    let start = std::time::Instant::now();
    let probe = env.run_env(["--json", "copy", "--from", "local", "--to", "probe"], &[]).ok().json();
    let full = start.elapsed();
    assert_eq!(probe["rechunked_files"].as_u64().unwrap() > 0, rechunk, "{probe}");

    let target = open_repo(&env, "target");
    let mut before = stored_chunks(&target);
    let mut seed: u64 = 0x5EED_C0B1 ^ u64::from(rechunk);
    let (mut killed, mut resumed) = (0, 0);
    let mut log = Vec::new();
    for attempt in 0..5 {
        let unindexed = before.len() as u64 - info(&env, "target")["packs"].as_u64().unwrap();
        let out = env.path(&format!("attempt-{attempt}.json"));
        let mut cmd = std::process::Command::new(vger_bin());
        cmd.arg("--config").arg(env.config()).args(["--json", "-q", "copy", "--from", "local", "--to", "target"]);
        cmd.env_remove("VGER_PASSPHRASE")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null());
        env.private_user_dirs(&mut cmd);
        let mut child = cmd.current_dir(env.path("")).spawn().unwrap();
        // The last attempt runs to the end.
        if attempt < 4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(full.mul_f64(0.15 + (seed % 400) as f64 / 1000.0));
        }
        let was_killed = attempt < 4 && child.try_wait().unwrap().is_none();
        if was_killed {
            child.kill().unwrap();
            killed += 1;
        }
        let status = child.wait().unwrap();
        // A PUT the killed process had sent may still land on the server
        // after the process is gone: wait until the listing stops changing.
        let after = settled_chunks(&target);
        // The rule: no pack this run stored holds a chunk stored before it.
        let old: HashSet<&String> = before.values().flatten().collect();
        let mut new_chunks = 0;
        for (pack, chunks) in after.iter().filter(|(p, _)| !before.contains_key(*p)) {
            for c in chunks {
                assert!(!old.contains(c), "attempt {attempt} stored chunk {c} again (in pack {pack}); {log:?}");
            }
            new_chunks += chunks.len() as u64;
        }
        if !was_killed {
            assert!(status.success(), "attempt {attempt}: {status}");
            let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            assert_eq!(report["packs_recovered"], unindexed, "attempt {attempt}: {report}");
            assert_eq!(report["chunks_sent"], new_chunks, "attempt {attempt}: {report}");
        }
        resumed += u64::from(unindexed > 0);
        log.push(format!(
            "attempt {attempt}: {unindexed} packs unindexed at its start, {} killed, {new_chunks} chunks stored",
            if was_killed { "was" } else { "not" }
        ));
        before = after;
    }
    println!("an uninterrupted copy took {full:.2?}; {log:#?}");
    assert!(killed >= 2, "too few copies were still running when killed ({killed}); full copy took {full:?}");
    assert!(resumed >= 1, "no run started with packs a killed run had left unindexed: {log:?}");
    // Every chunk is stored once.
    let all: Vec<&String> = before.values().flatten().collect();
    assert_eq!(all.len(), all.iter().collect::<HashSet<_>>().len(), "a chunk is stored twice");
    let again = env.run_env(["--json", "copy", "--from", "local", "--to", "target"], &[]).ok().json();
    assert_eq!((&again["chunks_sent"], &again["packs_recovered"]), (&0.into(), &0.into()), "{again}");
    env.run_env(["-R", "target", "check", "--verify-data"], &[]).ok();
    let dest = env.path("restored");
    env.run_env(["-R", "target", "restore", "latest", dest.to_str().unwrap()], &[]).ok();
    assert_eq!(compare_trees(&src, &restored_root(&dest, &src)), Vec::<String>::new());
}

#[test]
fn a_rechunking_copy_killed_at_random_points_finishes_on_rerun() {
    a_copy_killed_at_random_points_resumes_without_sending_a_chunk_twice(true);
}

#[test]
fn a_copy_with_equal_chunker_params_killed_at_random_points_finishes_on_rerun() {
    a_copy_killed_at_random_points_resumes_without_sending_a_chunk_twice(false);
}

/// The target's upload limit holds for a copy as for a backup: 4 MiB to a
/// target limited to 1 MiB/s take at least 2.5 s (the limit applies to
/// remote repositories: without the S3 test server the test is skipped,
/// except under CI).
#[test]
fn a_copy_keeps_to_the_targets_upload_limit() {
    let env = TestEnv::new();
    if std::env::var_os("VGER_TEST_S3_ENDPOINT").is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but VGER_TEST_S3_ENDPOINT is not");
        eprintln!("note: skipped: the upload limit applies to remote targets; VGER_TEST_S3_ENDPOINT not set");
        return;
    }
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("random"), random_bytes(4 << 20, 77)).unwrap();
    let yaml = format!(
        "repositories:\n  - label: local\n    url: \"{}\"\n    encryption:\n      passphrase: first-pass\n\
         \x20 - label: slow\n{}    limits: {{ upload_mib_per_sec: 1 }}\n    encryption:\n      passphrase: second-pass\n\
         sources:\n  - label: docs\n    path: \"{}\"\n",
        env.repo().display(),
        target_yaml_at(&env, "slow"),
        src.display()
    );
    env.write_config(&yaml);
    env.run_env(["init"], &[]).ok();
    env.run_env(["-R", "local", "backup"], &[]).ok();
    let start = std::time::Instant::now();
    let report = env.run_env(["--json", "copy", "--from", "local", "--to", "slow"], &[]).ok().json();
    let took = start.elapsed();
    println!("4 MiB copied to a target limited to 1 MiB/s in {took:.2?}: {report}");
    assert!(report["bytes_sent"].as_u64().unwrap() >= 4 << 20, "{report}");
    assert!(took >= std::time::Duration::from_millis(2500), "faster than the limit allows: {took:?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    let dest = env.path("restored");
    env.run_env(["-R", "slow", "restore", "latest", dest.to_str().unwrap()], &[]).ok();
    assert_eq!(compare_trees(&src, &restored_root(&dest, &src)), Vec::<String>::new());
}
