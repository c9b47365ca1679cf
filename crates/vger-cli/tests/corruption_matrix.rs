//! The corruption matrix (issue 4): one test per kind of damage, each on its
//! own small repository made by the CLI with default settings. For each it
//! asserts what `check` and `check --verify-data` report (exit 1, naming the
//! pack, segment, snapshot or path), that unaffected snapshots and files
//! still restore byte for byte BEFORE any repair, what `check --repair --yes`
//! recovers, and that no command panics. Each test prints one row:
//!
//! ```sh
//! cargo test -p vger-cli --test corruption_matrix -- --nocapture --test-threads 1 2>&1 | grep '^MATRIX'
//! ```
//!
//! The repository: snapshot 1 holds `a/` (its own pack A), snapshot 2 adds
//! `b/` (pack B, which also holds snapshot 2's file tree), snapshot 3 adds
//! `c.txt` (pack C, with snapshot 3's tree), so damage to pack B hits
//! `b/b1.bin` in snapshots 2 and 3 and nothing of snapshot 1.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod crashkit;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crashkit::{
    diff_manifests, file_len, flip_byte, manifest, objects_under, repo_state, short_name, sub_manifest,
    write_random_file, zero_range, Env, Manifest, Run,
};

/// A named way to damage one file.
type Damage = (&'static str, Box<dyn Fn(&Path)>);

struct Snap {
    id: String,
    manifest: Manifest,
}

impl Snap {
    fn short(&self) -> &str {
        &self.id[..8]
    }
}

struct Fixture {
    env: Env,
    src: PathBuf,
    s1: Snap,
    s2: Snap,
    s3: Snap,
    pack_b: PathBuf,
    /// The index segment written by the second backup (it names pack B).
    segment_b: PathBuf,
}

fn new_objects(before: &BTreeSet<PathBuf>, dir: &Path) -> Vec<PathBuf> {
    objects_under(dir).into_iter().filter(|p| !before.contains(p)).collect()
}

fn set(dir: &Path) -> BTreeSet<PathBuf> {
    objects_under(dir).into_iter().collect()
}

fn fixture() -> Fixture {
    let env = Env::new("vger-corrupt-");
    let src = env.path("src");
    write_random_file(&src.join("a/a1.bin"), 2 << 20, 21);
    fs::write(src.join("a/a2.txt"), "first backup\n".repeat(2000)).unwrap();
    env.write_config(&[("data", &src)], "");
    env.init();
    let backup = |env: &Env| -> Snap {
        let (r, _) = env.backup(&[]);
        Snap { id: r["id"].as_str().unwrap().to_string(), manifest: manifest(&env.path("src")) }
    };
    let s1 = backup(&env);
    let packs = env.repo.join("packs");
    let index = env.repo.join("index");
    let (packs_before, index_before) = (set(&packs), set(&index));
    write_random_file(&src.join("b/b1.bin"), 3 << 20, 22);
    fs::write(src.join("b/b2.txt"), "second backup\n".repeat(2000)).unwrap();
    let s2 = backup(&env);
    let mut new_packs = new_objects(&packs_before, &packs);
    let new_segments = new_objects(&index_before, &index);
    // A data pack and a pack of tree objects: B is the data pack.
    assert_eq!(new_packs.len(), 2, "the second backup writes its own data and tree packs: {new_packs:?}");
    new_packs.sort_by_key(|p| std::cmp::Reverse(file_len(p)));
    assert_eq!(new_segments.len(), 1, "the second backup writes one index segment: {new_segments:?}");
    fs::write(src.join("c.txt"), "third backup\n").unwrap();
    let s3 = backup(&env);
    assert_eq!(env.count("packs"), 6, "each backup writes a data pack and a tree pack");
    Fixture { env, src, s1, s2, s3, pack_b: new_packs[0].clone(), segment_b: new_segments[0].clone() }
}

/// Exit code and the first line that says what is wrong.
fn gist(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| run.first_error());
    if line.is_empty() {
        format!("exit {}", run.code)
    } else {
        format!("exit {}: {}", run.code, crashkit::shorten(&line, 90))
    }
}

fn row(case: &str, check: &str, verify: &str, restore: &str, repair: &str) {
    println!("MATRIX | {case} | {check} | {verify} | {restore} | {repair} |");
}

impl Fixture {
    #[track_caller]
    fn restores(&self, snap: &Snap) {
        let diffs = self.env.restore_diff(&snap.id, &snap.manifest);
        assert!(diffs.is_empty(), "snapshot {} does not restore byte for byte: {diffs:?}", snap.short());
    }

    /// Snapshot 3 with pack B damaged: restore fails (exit 1) naming only
    /// `b/b1.bin`; `a/` and `c.txt` are restored intact; no half-written
    /// b1.bin is left; restoring just `a` and `c.txt` succeeds.
    #[track_caller]
    fn restore_fails_for_b_only(&self) -> String {
        let dest = self.env.path("dest-s3");
        let run =
            self.env.run(["restore".as_ref(), self.s3.id[..12].as_ref(), dest.as_os_str()]).code(1).says(&["b/b1.bin"]);
        for other in ["a/a1.bin", "a/a2.txt", "c.txt"] {
            assert!(!run.stderr.contains(other), "{other} is not damaged: {}", run.describe());
        }
        let unaffected = sub_manifest(&self.s3.manifest, &["a", "c.txt"]);
        let got = sub_manifest(&manifest(&dest), &["a", "c.txt"]);
        assert!(diff_manifests(&unaffected, &got).is_empty(), "{:?}", diff_manifests(&unaffected, &got));
        assert!(!dest.join("b/b1.bin").exists(), "a damaged b1.bin was left in the target");
        let dest2 = self.env.path("dest-s3-part");
        self.env
            .run(["restore".as_ref(), self.s3.id[..12].as_ref(), dest2.as_os_str(), "a".as_ref(), "c.txt".as_ref()])
            .ok();
        assert!(diff_manifests(&unaffected, &manifest(&dest2)).is_empty());
        self.restores(&self.s1);
        format!("s1 ok; s3: a/, c.txt ok, b/b1.bin fails (exit 1: {})", crashkit::shorten(&run.first_error(), 60))
    }

    #[track_caller]
    fn listed(&self) -> Vec<String> {
        self.env.list().into_iter().map(|(id, _)| id).collect()
    }

    /// After a repair removed snapshots 2 and 3: pack B is gone, `check`
    /// and `check --verify-data` pass before and after compact, snapshot 1
    /// restores, and a backup (the files still exist) re-uploads b1.bin and
    /// restores completely.
    #[track_caller]
    fn healed_after_losing_b(&self) {
        assert_eq!(self.listed(), vec![self.s1.id.clone()], "only snapshot 1 survives");
        assert!(!self.pack_b.exists(), "the damaged pack B is still stored after repair");
        self.restores(&self.s1);
        self.env.run(["check"]).ok();
        self.env.run(["check", "--verify-data"]).ok().never_says(&["not in the index", "warning"]);
        self.env.run(["compact", "--grace", "0s"]).ok();
        self.env.run(["check", "--verify-data"]).ok().never_says(&["not in the index"]);
        self.restores(&self.s1);
        let (r, _) = self.env.backup(&[]);
        assert!(r["stats"]["added_bytes"].as_u64().unwrap() >= 3 << 20, "b1.bin must be uploaded again: {r}");
        let healed = Snap { id: r["id"].as_str().unwrap().to_string(), manifest: manifest(&self.src) };
        self.restores(&healed);
        self.env.run(["check", "--verify-data"]).ok();
    }
}

/// Damage inside pack B that keeps its size: only `--verify-data` sees it.
fn damaged_pack_content(case: &str, damage: impl FnOnce(&Path)) {
    let f = fixture();
    damage(&f.pack_b);
    let b = short_name(&f.pack_b);
    let check = f.env.run(["check"]).ok();
    let verify = f
        .env
        .run(["check", "--verify-data"])
        .code(1)
        .says(&[&b, "damaged", "b/b1.bin", f.s2.short(), f.s3.short()])
        .never_says(&["a/a1.bin", "a/a2.txt", "c.txt"]);
    let restore = f.restore_fails_for_b_only();
    let repair = f.env.run(["check", "--verify-data", "--repair", "--yes"]).ok().says(&[
        "salvaged 1 damaged pack",
        f.s2.short(),
        f.s3.short(),
        "removed 2 damaged snapshots",
    ]);
    assert!(!repair.stdout.contains(f.s1.short()), "snapshot 1 is intact: {}", repair.describe());
    let salvaged = repair.stdout.lines().find(|l| l.starts_with("salvaged")).unwrap_or_default().to_string();
    f.healed_after_losing_b();
    row(
        case,
        &format!("exit 0: {}", check.stdout.lines().last().unwrap_or_default()),
        &gist(&verify),
        &restore,
        &format!(
            "--verify-data --repair --yes: {}; s2+s3 removed, s1 intact; verify-data right after repair: exit 0; \
             next backup re-uploads b1.bin",
            crashkit::shorten(&salvaged, 70)
        ),
    );
}

#[test]
fn bit_flip_in_a_pack() {
    damaged_pack_content("bit flip in pack", |p| flip_byte(p, file_len(p) as usize / 2));
}

#[test]
fn zero_filled_range_in_a_pack() {
    damaged_pack_content("64 KiB zeroed in pack", |p| zero_range(p, file_len(p) as usize / 2, 64 << 10));
}

/// Pack B cut short or gone: the structure check sees it.
fn lost_pack(case: &str, damage: impl FnOnce(&Path), needles: &[&str], salvaged: bool) {
    let f = fixture();
    damage(&f.pack_b);
    let b = short_name(&f.pack_b);
    let mut all = vec![b.as_str(), f.s2.short(), f.s3.short(), "b/b1.bin"];
    all.extend_from_slice(needles);
    let check = f.env.run(["check"]).code(1).says(&all).never_says(&["a/a1.bin", "a/a2.txt", "c.txt"]);
    assert!(!check.stdout.contains(f.s1.short()), "snapshot 1 is intact: {}", check.describe());
    let verify = f.env.run(["check", "--verify-data"]).code(1).says(&all);
    let restore = f.restore_fails_for_b_only();
    let repair = f.env.run(["check", "--repair", "--yes"]).ok().says(&[
        "index rebuilt",
        f.s2.short(),
        f.s3.short(),
        "removed 2 damaged snapshots",
    ]);
    let repair = if salvaged { repair.says(&["salvaged 1 damaged pack"]) } else { repair };
    f.healed_after_losing_b();
    let first = |r: &Run, what: &str| r.stdout.lines().find(|l| l.starts_with(what)).unwrap_or_default().to_string();
    row(
        case,
        &gist(&check),
        &gist(&verify),
        &restore,
        &format!(
            "--repair --yes: {}{}; s2+s3 removed; s1 restores; verify-data clean; next backup re-uploads b1.bin",
            crashkit::shorten(&first(&repair, "index rebuilt"), 60),
            if salvaged {
                format!(", {} (the cut pack is deleted)", crashkit::shorten(&first(&repair, "salvaged"), 70))
            } else {
                String::new()
            }
        ),
    );
}

#[test]
fn truncated_pack() {
    lost_pack("truncated pack", |p| crashkit::truncate(p, file_len(p) / 3), &["truncated"], true);
}

#[test]
fn deleted_pack() {
    lost_pack("deleted pack", |p| fs::remove_file(p).unwrap(), &["missing"], false);
}

#[test]
fn deleted_index_segments() {
    let f = fixture();
    for seg in objects_under(&f.env.repo.join("index")) {
        fs::remove_file(seg).unwrap();
    }
    let check = f.env.run(["check"]).code(1).says(&[
        "missing from the index",
        "not in the index",
        f.s1.short(),
        f.s2.short(),
        f.s3.short(),
    ]);
    let verify = f.env.run(["check", "--verify-data"]).code(1).says(&["missing from the index"]);
    // Nothing is unaffected: every chunk lost its index entry. Restore fails
    // with one clear line pointing at `vger check`.
    let dest = f.env.path("dest");
    let restore = f
        .env
        .run(["restore".as_ref(), f.s1.id[..12].as_ref(), dest.as_os_str()])
        .one_line_error()
        .says(&["not in the index", "check"]);
    let repair = f.env.run(["check", "--repair", "--yes"]).ok().says(&["index rebuilt from 6 packs", "removed 0"]);
    for s in [&f.s1, &f.s2, &f.s3] {
        f.restores(s);
    }
    f.env.run(["check", "--verify-data"]).ok().never_says(&["not in the index"]);
    row(
        "deleted index segments (all)",
        &gist(&check),
        &gist(&verify),
        &format!("every snapshot fails, one line: {}", restore.first_error()),
        &format!(
            "--repair --yes: {}; nothing removed; all 3 restore byte for byte",
            repair.stdout.lines().next().unwrap_or_default()
        ),
    );
}

/// Damages segment B; returns the fixture.
fn with_damaged_segment() -> Fixture {
    let f = fixture();
    flip_byte(&f.segment_b, file_len(&f.segment_b) as usize / 2);
    f
}

#[test]
fn damaged_index_segment() {
    let f = with_damaged_segment();
    let seg = short_name(&f.segment_b);
    let check = f.env.run(["check"]).code(1).says(&["index segment", &seg, "unreadable", "--repair", f.s2.short()]);
    assert!(!check.stdout.contains(f.s1.short()), "snapshot 1 is intact: {}", check.describe());
    let verify = f.env.run(["check", "--verify-data"]).code(1).says(&["index segment", &seg]);
    // Snapshot 1's data is named by intact segments: it restores before any
    // repair, with a warning naming the unreadable segment and the fix.
    let dest = f.env.path("dest");
    let restore = f.env.run(["restore".as_ref(), f.s1.id[..12].as_ref(), dest.as_os_str()]).ok().says(&[
        "warning",
        &seg,
        "check --repair",
    ]);
    assert!(diff_manifests(&f.s1.manifest, &manifest(&dest)).is_empty());
    // Snapshot 3 loses only b/ (its chunks were named by the damaged segment).
    let dest3 = f.env.path("dest-s3");
    // Its directory `b` came from the second backup's tree pack, which only
    // that segment named: `b` fails as a whole, the rest restores.
    f.env.run(["restore".as_ref(), f.s3.id[..12].as_ref(), dest3.as_os_str()]).code(1).says(&["directory `b`"]);
    let unaffected = sub_manifest(&f.s3.manifest, &["a", "c.txt"]);
    assert!(diff_manifests(&unaffected, &sub_manifest(&manifest(&dest3), &["a", "c.txt"])).is_empty());
    let restore_note = format!(
        "s1 restores (warning: {}); s3: a/, c.txt ok, b/ fails",
        crashkit::shorten(restore.stderr_lines().first().copied().unwrap_or_default(), 50)
    );
    let repair = f.env.run(["check", "--repair", "--yes"]).ok().says(&["index rebuilt from 6 packs", "removed 0"]);
    for s in [&f.s1, &f.s2, &f.s3] {
        f.restores(s);
    }
    f.env.run(["check", "--verify-data"]).ok().never_says(&["not in the index"]);
    row(
        "damaged index segment",
        &gist(&check),
        &gist(&verify),
        &restore_note,
        &format!(
            "--repair --yes: {}; nothing removed; all 3 restore",
            repair.stdout.lines().next().unwrap_or_default()
        ),
    );
}

/// One unreadable index segment must not stop the restore of a snapshot
/// whose every chunk is named by intact segments.
#[test]
fn damaged_index_segment_does_not_block_intact_snapshots() {
    let f = with_damaged_segment();
    let dest = f.env.path("dest");
    let run = f.env.run(["restore".as_ref(), f.s1.id[..12].as_ref(), dest.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(diff_manifests(&f.s1.manifest, &manifest(&dest)).is_empty());
}

#[test]
fn damaged_snapshot_object() {
    let f = fixture();
    let snap2 = f.env.repo.join("snapshots").join(&f.s2.id);
    flip_byte(&snap2, file_len(&snap2) as usize / 2);
    let check = f.env.run(["check"]).code(1).says(&["snapshot", f.s2.short(), "unreadable"]);
    for other in [&f.s1, &f.s3] {
        assert!(!check.stdout.contains(other.short()), "snapshot {} is intact: {}", other.short(), check.describe());
    }
    let verify = f.env.run(["check", "--verify-data"]).code(1).says(&[f.s2.short(), "unreadable"]);
    // The other snapshots restore by id before any repair.
    f.restores(&f.s1);
    f.restores(&f.s3);
    let list = f.env.run(["list"]);
    let latest = f.env.run(["restore".as_ref(), "latest".as_ref(), f.env.path("latest").as_os_str()]);
    let repair = f.env.run(["check", "--repair", "--yes"]).ok().says(&[f.s2.short(), "removed 1 damaged snapshots"]);
    assert_eq!(f.listed(), vec![f.s1.id.clone(), f.s3.id.clone()]);
    f.restores(&f.s1);
    f.restores(&f.s3);
    f.env.run(["check", "--verify-data"]).ok();
    row(
        "damaged snapshot object",
        &gist(&check),
        &gist(&verify),
        &format!(
            "s1 and s3 restore by id; `list` exit {}, `restore latest` exit {} ({})",
            list.code,
            latest.code,
            crashkit::shorten(&latest.first_error(), 50)
        ),
        &format!(
            "--repair --yes: {}; s1, s3 restore",
            repair.stdout.lines().find(|l| l.starts_with("removed")).unwrap_or_default()
        ),
    );
}

/// Every command on the repository fails with one line containing one of
/// `needles`, and none changes a byte of it. Returns the messages seen.
#[track_caller]
fn every_command_refuses(f: &Fixture, needles: &[&str], what: &str) -> BTreeSet<String> {
    let before = repo_state(&f.env.repo);
    let dest = f.env.path("dest");
    let commands: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec!["list".as_ref()],
        vec!["check".as_ref()],
        vec!["check".as_ref(), "--verify-data".as_ref()],
        vec!["restore".as_ref(), f.s1.id[..12].as_ref(), dest.as_os_str()],
        vec!["backup".as_ref()],
        vec!["check".as_ref(), "--repair".as_ref(), "--yes".as_ref()],
    ];
    let mut seen = BTreeSet::new();
    for args in commands {
        let run = f.env.run(&args).one_line_error();
        let lower = run.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| lower.contains(n)),
            "{what}: the error does not name the cause ({needles:?}): {}",
            run.describe()
        );
        if args.len() == 3 && args[1] == "--repair" {
            // `check --repair` cannot rebuild a destroyed config or key slot:
            // it must refuse like every other command and write nothing.
            assert_eq!(
                repo_state(&f.env.repo),
                before,
                "{what}: check --repair cannot repair this and must not change anything"
            );
        }
        seen.insert(run.first_error());
    }
    assert_eq!(repo_state(&f.env.repo), before, "{what}: a command changed the repository");
    seen
}

#[test]
fn damaged_config() {
    let f = fixture();
    let config = f.env.repo.join("config");
    let original = fs::read(&config).unwrap();
    let mut messages = BTreeSet::new();
    // A bit in the body, a bit in the MAC, the file cut short, the magic.
    let damages: [Damage; 4] = [
        ("body bit", Box::new(|p: &Path| flip_byte(p, file_len(p) as usize - 3))),
        ("MAC bit", Box::new(|p: &Path| flip_byte(p, 20))),
        ("truncated", Box::new(|p: &Path| crashkit::truncate(p, 30))),
        ("magic", Box::new(|p: &Path| flip_byte(p, 0))),
    ];
    for (what, damage) in &damages {
        fs::write(&config, &original).unwrap();
        damage(&config);
        messages.extend(every_command_refuses(&f, &["config"], &format!("config {what}")));
    }
    fs::write(&config, &original).unwrap();
    for s in [&f.s1, &f.s2, &f.s3] {
        f.restores(s);
    }
    row(
        "damaged config (body bit, MAC bit, truncated, magic)",
        "exit 1, one line",
        "exit 1, one line",
        "refused: nothing opens (restores again once the original config is put back)",
        &format!(
            "refused, repository unchanged (cannot repair a config: keep a copy). Messages: {}",
            messages.into_iter().collect::<Vec<_>>().join(" / ")
        ),
    );
}

/// The byte offset of the msgpack value of field `name` in a key slot.
fn field_offset(bytes: &[u8], name: &str) -> usize {
    let mut needle = vec![0xa0 | name.len() as u8];
    needle.extend_from_slice(name.as_bytes());
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice()).unwrap_or_else(|| {
        panic!("no field `{name}` in the key slot");
    });
    at + needle.len()
}

#[test]
fn damaged_key_slot() {
    let f = fixture();
    let keys = objects_under(&f.env.repo.join("keys"));
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    let original = fs::read(key).unwrap();
    // `wrapped` and `salt` are bin values: a 2-byte header (0xc4, length).
    let wrapped = field_offset(&original, "wrapped") + 2 + 40;
    let salt = field_offset(&original, "salt") + 2 + 5;
    let mut messages = BTreeSet::new();
    let damages: [Damage; 4] = [
        ("wrapped key bit", Box::new(move |p: &Path| flip_byte(p, wrapped))),
        ("salt bit", Box::new(move |p: &Path| flip_byte(p, salt))),
        ("truncated", Box::new(|p: &Path| crashkit::truncate(p, file_len(p) / 2))),
        ("emptied", Box::new(|p: &Path| crashkit::truncate(p, 0))),
    ];
    for (what, damage) in &damages {
        fs::write(key, &original).unwrap();
        damage(key);
        messages.extend(every_command_refuses(&f, &["key", "passphrase"], &format!("key slot {what}")));
    }
    fs::write(key, &original).unwrap();
    for s in [&f.s1, &f.s2, &f.s3] {
        f.restores(s);
    }
    row(
        "damaged key slot (wrapped bit, salt bit, truncated, emptied)",
        "exit 1, one line",
        "exit 1, one line",
        "refused: no key opens (restores again once the slot is put back)",
        &format!(
            "refused, repository unchanged (a destroyed key cannot be repaired: keep a second slot). Messages: {}",
            messages.into_iter().collect::<Vec<_>>().join(" / ")
        ),
    );
}

/// After `check --verify-data --repair --yes` dropped a damaged chunk from
/// the index, running the same repair again must not put it back: the next
/// backup would deduplicate against the damaged chunk and commit a snapshot
/// that cannot be restored.
#[test]
fn repeated_repair_does_not_reindex_a_damaged_chunk() {
    let f = fixture();
    flip_byte(&f.pack_b, file_len(&f.pack_b) as usize / 2);
    f.env.run(["check", "--verify-data", "--repair", "--yes"]).ok().says(&["salvaged 1 damaged pack"]);
    assert!(!f.pack_b.exists(), "the damaged pack was salvaged and deleted");
    // Nothing is left to repair: the second run changes nothing.
    f.env.run(["check", "--verify-data", "--repair", "--yes"]).ok().never_says(&["salvaged", "index rebuilt"]);
    let (r, _) = f.env.backup(&[]);
    let healed = Snap { id: r["id"].as_str().unwrap().to_string(), manifest: manifest(&f.src) };
    let diffs = f.env.restore_diff(&healed.id, &healed.manifest);
    assert!(
        diffs.is_empty(),
        "the backup after two repairs is not restorable (added {}): {diffs:?}",
        r["stats"]["added_bytes"]
    );
    f.env.run(["check", "--verify-data"]).ok();
}
