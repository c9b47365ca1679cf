//! The local chunk-index cache across real runs: used when valid, rebuilt
//! after compact and when damaged, and never the cause of a missing chunk.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;

fn setup() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.bin"), random_bytes(3 << 20, 1)).unwrap();
    fs::write(src.join("b.bin"), random_bytes(1 << 20, 2)).unwrap();
    let extra =
        format!("cache_dir: \"{}\"\ncompression: none\nretention:\n  keep_last: 1\n", env.path("cache").display());
    env.config_with(&[("s", &src)], &extra);
    env.init();
    grow(&env, &src, "g");
    (env, src)
}

/// Eight small backups, eight index segments: a repository this small
/// keeps a cache only from eight segments on.
fn grow(env: &TestEnv, src: &std::path::Path, tag: &str) {
    for i in 0..8 {
        fs::write(src.join(format!("{tag}{i}.txt")), format!("{tag} {i}\n")).unwrap();
        env.run(["backup"]).ok();
    }
}

fn cache_files(env: &TestEnv) -> Vec<PathBuf> {
    match fs::read_dir(env.path("cache/index")) {
        Ok(dir) => dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "index")).collect(),
        Err(_) => Vec::new(),
    }
}

fn segments(env: &TestEnv) -> Vec<String> {
    fs::read_dir(env.repo().join("index")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

fn restore_equals(env: &TestEnv, src: &std::path::Path, name: &str) {
    let dest = env.path(name);
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    assert_diff_clean(src, &dest, &[]);
}

#[test]
fn cache_follows_new_segments_and_compact() {
    let (env, src) = setup();
    env.run(["backup"]).ok();
    let files = cache_files(&env);
    assert_eq!(files.len(), 1, "one cache file per repository");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // New data: the cache is used and the new segment read beside it.
    fs::write(src.join("c.bin"), random_bytes(1 << 20, 3)).unwrap();
    env.run(["-vv", "backup"]).ok().stderr_has(&["chunks from the cache"]);

    // a.bin leaves the source; prune and compact delete its pack and
    // replace every segment.
    let a = fs::read(src.join("a.bin")).unwrap();
    fs::remove_file(src.join("a.bin")).unwrap();
    env.run(["backup"]).ok();
    env.run(["prune"]).ok();
    let before = segments(&env);
    env.run(["compact", "--grace", "0s", "--threshold", "0"]).ok();
    let after = segments(&env);
    assert!(before.iter().all(|s| !after.contains(s)), "compact replaced every segment: {before:?} -> {after:?}");

    // a.bin comes back: its chunks are gone from the repository, so a
    // cache still naming them would make this backup skip them.
    fs::write(src.join("a.bin"), &a).unwrap();
    env.run(["-v", "backup"]).ok().stderr_has(&["rebuilding it from the repository"]);
    env.run(["check", "--verify-data"]).ok();
    restore_equals(&env, &src, "out");
    // Once the repository has eight segments again, the rebuilt cache
    // serves the next run.
    grow(&env, &src, "h");
    fs::write(src.join("d.bin"), random_bytes(1 << 20, 4)).unwrap();
    env.run(["backup"]).ok();
    env.run(["-vv", "backup"]).ok().stderr_has(&["chunks from the cache"]);
    env.run(["check", "--verify-data"]).ok();
    restore_equals(&env, &src, "out2");
}

#[test]
fn a_damaged_cache_is_ignored_and_rebuilt() {
    for damage in ["flip", "truncate", "empty"] {
        let (env, src) = setup();
        env.run(["backup"]).ok();
        let file = cache_files(&env).pop().unwrap();
        let mut bytes = fs::read(&file).unwrap();
        match damage {
            "flip" => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
            }
            "truncate" => bytes.truncate(bytes.len() - 100),
            _ => bytes.clear(),
        }
        fs::write(&file, &bytes).unwrap();
        fs::write(src.join("c.bin"), random_bytes(1 << 20, 3)).unwrap();
        env.run(["-v", "backup"]).ok().no_panic().stderr_has(&["ignored", "rebuilding it from the repository"]);
        env.run(["check", "--verify-data"]).ok();
        restore_equals(&env, &src, "out");
        assert!(fs::read(&file).unwrap() != bytes, "{damage}: rewritten");
        env.run(["-vv", "info"]).ok().stderr_has(&["chunks from the cache"]);
    }
}

#[test]
fn no_cache_when_switched_off() {
    let (env, _src) = setup();
    env.run_env(["backup"], &[("VGER_PASSPHRASE", PASS), ("VGER_NO_INDEX_CACHE", "1")]).ok();
    assert!(cache_files(&env).is_empty());
}
