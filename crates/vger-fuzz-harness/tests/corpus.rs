//! Replays every file of `fuzz/corpus/<target>/` through its target with
//! no fuzzer: the seeds (which must decode, or the fixture and the format
//! have drifted apart) and the regression inputs of crashes found (which
//! must no longer panic). Runs on stable in every `cargo test`, so CI
//! keeps the fuzzers' findings fixed.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use vger_fuzz_harness::fixture::fuzz_dir;
use vger_fuzz_harness::TARGETS;

fn names_in(dir: &Path, suffix: &str) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect()
}

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        fs::read_dir(fuzz_dir().join("corpus").join(target)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Every target has its libFuzzer entry point, a `[[bin]]` and a corpus
/// folder with seeds; nothing in `fuzz/` names a target that is gone.
#[test]
fn every_target_is_wired_into_fuzz() {
    let targets: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    let dir = fuzz_dir();
    assert_eq!(names_in(&dir.join("fuzz_targets"), ".rs"), targets, "fuzz/fuzz_targets/*.rs");
    assert_eq!(names_in(&dir.join("corpus"), ""), targets, "fuzz/corpus/*");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for t in &targets {
        assert!(manifest.contains(&format!("name = \"{t}\"")), "fuzz/Cargo.toml has no [[bin]] {t}");
        let seeds = corpus_files(t).iter().filter(|p| name(p).starts_with("seed-")).count();
        assert!(seeds > 0, "fuzz/corpus/{t} has no seed");
    }
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every corpus file runs through its target without a panic; every seed
/// (but those named `seed-refused-*`) decodes.
#[test]
fn every_corpus_file_replays() {
    let mut failures = Vec::new();
    for target in TARGETS {
        for path in corpus_files(target.name) {
            let data = fs::read(&path).unwrap();
            let file = format!("fuzz/corpus/{}/{}", target.name, name(&path));
            match catch_unwind(AssertUnwindSafe(|| (target.run)(&data))) {
                Err(_) => failures.push(format!("{file}: panicked")),
                Ok(Err(why)) if name(&path).starts_with("seed-") && !name(&path).starts_with("seed-refused-") => {
                    failures.push(format!("{file}: a seed was refused ({why})"));
                }
                Ok(Ok(())) if name(&path).starts_with("seed-refused-") => {
                    failures.push(format!("{file}: a seed meant to be refused was taken"));
                }
                Ok(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The generator still makes seeds that decode (the committed ones may be
/// older than a format change).
#[test]
fn fresh_seeds_decode() {
    let dir = tempfile::tempdir().unwrap();
    vger_fuzz_harness::seeds::write_fixture(dir.path()).unwrap();
    let seeds = vger_fuzz_harness::seeds::seeds(dir.path()).unwrap();
    for target in TARGETS {
        assert!(seeds.iter().any(|s| s.target == target.name), "no seed for {}", target.name);
    }
    // Seeds are made for the committed fixture (their ids and keys), so
    // only those that do not depend on its objects are run here.
    for s in seeds.iter().filter(|s| ["envelope", "compressed_payload", "key_slot"].contains(&s.target)) {
        let target = vger_fuzz_harness::target(s.target).unwrap();
        assert!((target.run)(&s.bytes).is_ok(), "fresh seed {}/{} refused", s.target, s.name);
    }
}
