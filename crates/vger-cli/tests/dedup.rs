//! Deduplication and change detection: backing up an unchanged tree again
//! adds nothing, a changed file adds about its own size, and the snapshot
//! made from reused chunk lists restores exactly.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{assert_diff_clean, compare_trees, files_under, make_corpus, random_bytes, walk, TestEnv};

/// Total size of all files of the repository.
fn repo_size(repo: &Path) -> u64 {
    files_under(repo).iter().map(|p| fs::metadata(p).unwrap().len()).sum()
}

fn added(report: &serde_json::Value) -> u64 {
    report["stats"]["added_bytes"].as_u64().unwrap_or_else(|| panic!("no stats.added_bytes: {report}"))
}

/// The largest regular file under `dir`.
fn largest_file(dir: &Path) -> std::path::PathBuf {
    walk(dir)
        .into_iter()
        .filter(|(_, md)| md.is_file())
        .max_by_key(|(_, md)| md.len())
        .map(|(p, _)| dir.join(p))
        .unwrap()
}

#[test]
fn unchanged_tree_adds_nothing_and_changes_add_their_size() {
    let env = TestEnv::new();
    let src = env.path("src");
    make_corpus(&src, 16);
    env.config_with(&[("corpus", &src)], "");
    env.init();
    // A file whose mtime is well before any backup, for the ctime check.
    let text = walk(&src.join("text")).into_iter().find(|(_, md)| md.is_file() && md.len() > 4096).unwrap();
    let text_path = src.join("text").join(&text.0);
    let old = filetime::FileTime::from_unix_time(1_600_000_000, 5);
    filetime::set_file_mtime(&text_path, old).unwrap();

    let first = env.backup_json();
    assert!(added(&first) >= 16 << 20, "the first backup stores the corpus: {first}");
    let size1 = repo_size(&env.repo());

    // The same tree again: nothing new, the repository grows by one
    // snapshot object.
    let second = env.backup_json();
    assert_eq!(added(&second), 0, "an unchanged tree added data: {second}");
    assert_eq!(second["stats"]["added_stored"], 0, "{second}");
    let size2 = repo_size(&env.repo());
    assert!(size2 - size1 < 4096, "an unchanged backup grew the repository by {} bytes", size2 - size1);

    // Replace one file with 4 MiB of new random bytes: about 4 MiB is
    // added (plus the tree chunks around the change), not the corpus.
    let victim = largest_file(&src.join("blobs"));
    let new_len = 4 << 20;
    fs::write(&victim, random_bytes(new_len, 99)).unwrap();
    let third = env.backup_json();
    let got = added(&third);
    assert!(
        got >= new_len as u64 && got < new_len as u64 + (1 << 20),
        "changing one 4 MiB file added {got} bytes: {third}"
    );
    let size3 = repo_size(&env.repo());
    assert!(
        size3 - size2 >= new_len as u64 && size3 - size2 < new_len as u64 + (1 << 20),
        "changing one 4 MiB file grew the repository by {} bytes",
        size3 - size2
    );

    // Same size, same mtime, new content: the changed ctime must still
    // give it away (change detection is strict by default).
    let content = random_bytes(fs::metadata(&text_path).unwrap().len() as usize, 5);
    fs::write(&text_path, &content).unwrap();
    filetime::set_file_mtime(&text_path, old).unwrap();
    assert_eq!(fs::metadata(&text_path).unwrap().mtime(), 1_600_000_000);
    let fourth = env.backup_json();
    assert!(
        added(&fourth) >= content.len() as u64,
        "a same-size, same-mtime change was not backed up ({} bytes added): {fourth}",
        added(&fourth)
    );

    // The last snapshot mixes reused and new chunk lists: it restores
    // exactly.
    let dest = env.path("restored");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    assert_diff_clean(&src, &dest, &[]);
    let diffs = compare_trees(&src, &dest);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
