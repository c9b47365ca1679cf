//! Damaged repositories: a flipped bit, a truncated or missing pack, a
//! damaged snapshot, config or key slot. Each is reported clearly with exit
//! code 1 and no panic, reading never changes the repository, and data in
//! undamaged packs still restores.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{assert_unchanged, files_under, fingerprint, random_bytes, walk, TestEnv};

/// A repository with three snapshots: the first holds `a.bin`, the second
/// adds `b.bin`, whose data lands in a pack of its own, the third adds
/// `c.txt`, so that the latest snapshot's tree is not in b's pack.
struct TwoPacks {
    env: TestEnv,
    a: Vec<u8>,
    b: Vec<u8>,
    /// The pack the second backup wrote.
    b_pack: PathBuf,
    first_id: String,
}

fn packs(repo: &Path) -> BTreeSet<PathBuf> {
    files_under(&repo.join("packs")).into_iter().collect()
}

fn two_packs() -> TwoPacks {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let a = random_bytes(3 << 20, 1);
    let b = random_bytes(3 << 20, 2);
    fs::write(src.join("a.bin"), &a).unwrap();
    env.config_with(&[("data", &src)], "");
    env.init();
    let first_id = env.backup_json()["id"].as_str().unwrap().to_string();
    let before = packs(&env.repo());
    fs::write(src.join("b.bin"), &b).unwrap();
    env.backup_json();
    // The second backup writes b's data pack and a small pack of tree
    // objects (trees and data never share a pack).
    let new: Vec<PathBuf> = packs(&env.repo()).difference(&before).cloned().collect();
    let big: Vec<&PathBuf> = new.iter().filter(|p| fs::metadata(p).unwrap().len() > 1 << 20).collect();
    assert_eq!(big.len(), 1, "the second backup should write one data pack: {new:?}");
    let b_pack = big[0].clone();
    fs::write(src.join("c.txt"), b"small and late\n").unwrap();
    env.backup_json();
    TwoPacks { env, a, b, b_pack, first_id }
}

fn flip_bit(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

fn flip_middle(path: &Path) {
    let len = fs::metadata(path).unwrap().len() as usize;
    flip_bit(path, len / 2);
}

impl TwoPacks {
    /// `restore latest` after damaging b's pack: fails with exit 1 naming
    /// `b.bin` and all of `needles`; `a.bin` is restored intact; b.bin is
    /// not left half-written; the repository is not changed by reading.
    #[track_caller]
    fn restore_fails_for_b_only(&self, needles: &[&str]) {
        let before = fingerprint(&self.env.repo());
        let dest = self.env.path("dest");
        let run = self.env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).code(1);
        let run = run.stderr_has(&["b.bin"]).stderr_has(needles);
        assert!(!run.stderr.contains("a.bin"), "a.bin is not damaged: {}", run.stderr);
        assert_eq!(fs::read(dest.join("a.bin")).unwrap(), self.a, "a.bin (in an intact pack) was not restored");
        assert_eq!(fs::read(dest.join("c.txt")).unwrap(), b"small and late\n", "c.txt was not restored");
        if let Ok(got) = fs::read(dest.join("b.bin")) {
            assert_ne!(got, self.b);
            panic!("a damaged b.bin was left in the target ({} bytes)", got.len());
        }
        let temps: Vec<_> = walk(&dest)
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| !p.ends_with("a.bin") && !p.ends_with("c.txt"))
            .collect();
        assert!(temps.is_empty(), "left in the target: {temps:?}");
        assert_unchanged(&before, &fingerprint(&self.env.repo()));
        // The first snapshot does not need the damaged pack.
        let dest1 = self.env.path("dest-first");
        self.env.run(["restore".as_ref(), self.first_id[..12].as_ref(), dest1.as_os_str()]).ok();
        assert_eq!(fs::read(dest1.join("a.bin")).unwrap(), self.a);
    }
}

#[test]
fn bit_flip_in_a_pack() {
    let t = two_packs();
    flip_middle(&t.b_pack);
    t.restore_fails_for_b_only(&["chunk"]);
    let err = t.env.run(["restore".as_ref(), "latest".as_ref(), t.env.path("again").as_os_str()]).stderr;
    let lower = err.to_lowercase();
    assert!(
        lower.contains("corrupt") || lower.contains("authenticat") || lower.contains("tamper"),
        "the message does not say the data is damaged: {err}"
    );
}

#[test]
fn truncated_pack() {
    let t = two_packs();
    let len = fs::metadata(&t.b_pack).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&t.b_pack).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    t.restore_fails_for_b_only(&[]);
}

#[test]
fn missing_pack() {
    let t = two_packs();
    fs::remove_file(&t.b_pack).unwrap();
    let name = t.b_pack.file_name().unwrap().to_str().unwrap()[..8].to_string();
    t.restore_fails_for_b_only(&[&name]);
}

#[test]
fn damaged_snapshot_object() {
    let t = two_packs();
    let snaps = files_under(&t.env.repo().join("snapshots"));
    assert_eq!(snaps.len(), 3);
    let damaged = snaps.iter().find(|p| !p.file_name().unwrap().as_bytes().starts_with(t.first_id.as_bytes())).unwrap();
    flip_middle(damaged);
    let before = fingerprint(&t.env.repo());
    t.env.run(["list"]).one_line_error(&["snapshot"]);
    t.env.run(["restore".as_ref(), "latest".as_ref(), t.env.path("d").as_os_str()]).one_line_error(&["snapshot"]);
    // The intact snapshot can still be restored by its id.
    let dest = t.env.path("dest-first");
    t.env.run(["restore".as_ref(), t.first_id[..12].as_ref(), dest.as_os_str()]).ok();
    assert_eq!(fs::read(dest.join("a.bin")).unwrap(), t.a);
    assert_unchanged(&before, &fingerprint(&t.env.repo()));
}

#[test]
fn damaged_config() {
    let t = two_packs();
    let config = t.env.repo().join("config");
    let original = fs::read(&config).unwrap();
    // A bit in the body (after the magic and the 32-byte MAC), in the MAC,
    // and a truncated file.
    for damage in [Damage::Flip(original.len() - 3), Damage::Flip(20), Damage::Truncate(30)] {
        fs::write(&config, &original).unwrap();
        damage.apply(&config);
        let before = fingerprint(&t.env.repo());
        t.env.run(["list"]).one_line_error(&["config"]);
        assert_unchanged(&before, &fingerprint(&t.env.repo()));
    }
}

#[test]
fn damaged_key_slot() {
    let t = two_packs();
    let keys = files_under(&t.env.repo().join("keys"));
    assert_eq!(keys.len(), 1);
    let original = fs::read(&keys[0]).unwrap();
    for damage in [Damage::Flip(original.len() / 2), Damage::Truncate(original.len() / 2), Damage::Truncate(0)] {
        fs::write(&keys[0], &original).unwrap();
        damage.apply(&keys[0]);
        let before = fingerprint(&t.env.repo());
        let run = t.env.run(["list"]).one_line_error(&[]);
        let lower = run.stderr.to_lowercase();
        assert!(lower.contains("key") || lower.contains("passphrase"), "{damage:?}: {}", run.stderr);
        assert_unchanged(&before, &fingerprint(&t.env.repo()));
    }
}

#[test]
fn config_from_a_newer_format_is_refused() {
    let t = two_packs();
    let config = t.env.repo().join("config");
    let mut bytes = fs::read(&config).unwrap();
    // The body is a msgpack map with named fields: `"version": N` is the
    // fixstr "version" followed by the fixint N.
    let version = u8::try_from(vger_format::FORMAT_VERSION).unwrap();
    let needle = [&b"\xa7version"[..], &[version]].concat();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("no `version` in the config body");
    bytes[at + needle.len() - 1] = version + 1;
    fs::write(&config, bytes).unwrap();
    let before = fingerprint(&t.env.repo());
    t.env.run(["list"]).one_line_error(&["newer", "upgrade"]);
    t.env.run(["backup"]).one_line_error(&["newer", "upgrade"]);
    assert_unchanged(&before, &fingerprint(&t.env.repo()));
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip(usize),
    Truncate(usize),
}

impl Damage {
    fn apply(self, path: &Path) {
        match self {
            Damage::Flip(at) => flip_bit(path, at),
            Damage::Truncate(len) => {
                let bytes = fs::read(path).unwrap();
                fs::write(path, &bytes[..len]).unwrap();
            }
        }
    }
}

/// One damaged snapshot must not stop new backups: the damaged one is not
/// needed to write a new snapshot.
#[test]
fn backup_after_a_damaged_snapshot() {
    let t = two_packs();
    let snaps = files_under(&t.env.repo().join("snapshots"));
    let damaged = snaps.iter().find(|p| !p.file_name().unwrap().as_bytes().starts_with(t.first_id.as_bytes())).unwrap();
    flip_middle(damaged);
    let run = t.env.run(["backup"]).no_panic();
    assert_eq!(run.code, 0, "one damaged snapshot blocks every later backup: {}", run.stderr);
}
