//! `vger restore --overwrite`: restoring into a target that already holds
//! files. The default keeps every existing file; `if-changed` rewrites only
//! files whose size or modification time differ from the snapshot; a
//! symlink planted in the target pointing out of it is never followed.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;

use common::{assert_diff_clean, TestEnv};

fn restore_json(env: &TestEnv, dest: &std::path::Path, overwrite: Option<&str>) -> serde_json::Value {
    let mut args = vec!["--json".to_string(), "restore".into(), "latest".into(), dest.display().to_string()];
    if let Some(mode) = overwrite {
        args.push("--overwrite".into());
        args.push(mode.into());
    }
    env.run(&args).ok().json()
}

#[test]
fn existing_files_are_kept_by_default_and_rewritten_only_when_changed() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), common::random_bytes(300_000, 7)).unwrap();
    fs::write(src.join("sub/c.txt"), b"gamma\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    let dest = env.path("dest");
    let first = restore_json(&env, &dest, None);
    assert_eq!(first["report"]["files"], 3, "{first}");
    assert_eq!(first["report"]["skipped"], 0, "{first}");
    assert!(first["report"]["fetched_bytes"].as_u64().unwrap() >= 300_000, "{first}");
    assert_diff_clean(&src, &dest, &[]);

    // The user edits one file; the default restore keeps the edit.
    fs::write(dest.join("a.txt"), b"edited by the user\n").unwrap();
    fs::remove_file(dest.join("sub/c.txt")).unwrap();
    let second = restore_json(&env, &dest, None);
    assert_eq!(second["report"]["files"], 1, "only the missing file is written: {second}");
    assert_eq!(second["report"]["skipped"], 2, "{second}");
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"edited by the user\n");
    assert_eq!(fs::read(dest.join("sub/c.txt")).unwrap(), b"gamma\n");

    // if-changed rewrites the edited file alone.
    let third = restore_json(&env, &dest, Some("if-changed"));
    assert_eq!(third["report"]["files"], 1, "{third}");
    assert_eq!(third["report"]["skipped"], 2, "{third}");
    assert_diff_clean(&src, &dest, &[]);

    // Restored again, nothing differs and nothing is written.
    let fourth = restore_json(&env, &dest, Some("if-changed"));
    assert_eq!(fourth["report"]["files"], 0, "{fourth}");
    assert_eq!(fourth["report"]["skipped"], 3, "{fourth}");
    assert_eq!(fourth["report"]["fetched_bytes"], 0, "nothing is read for files kept: {fourth}");

    // if-newer keeps a file the user touched after the backup.
    fs::write(dest.join("a.txt"), b"newer local copy\n").unwrap();
    let fifth = restore_json(&env, &dest, Some("if-newer"));
    assert_eq!(fifth["report"]["files"], 0, "{fifth}");
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"newer local copy\n");

    // always replaces it.
    let sixth = restore_json(&env, &dest, Some("always"));
    assert_eq!(sixth["report"]["files"], 3, "{sixth}");
    assert_diff_clean(&src, &dest, &[]);
}

#[test]
fn a_symlink_planted_in_the_target_is_replaced_not_followed() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"from the snapshot\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    let outside = env.path("outside.txt");
    fs::write(&outside, b"must stay\n").unwrap();
    let dest = env.path("dest");
    fs::create_dir_all(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("a.txt")).unwrap();
    for mode in ["never", "if-changed", "if-newer"] {
        fs::remove_file(dest.join("a.txt")).ok();
        std::os::unix::fs::symlink(&outside, dest.join("a.txt")).unwrap();
        let out = restore_json(&env, &dest, Some(mode));
        assert_eq!(out["report"]["files"], 1, "{mode}: {out}");
        assert!(!fs::symlink_metadata(dest.join("a.txt")).unwrap().file_type().is_symlink(), "{mode}");
        assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"from the snapshot\n");
        assert_eq!(fs::read(&outside).unwrap(), b"must stay\n", "{mode}: restore followed the symlink");
    }
}

#[test]
fn verify_reads_every_written_file_back() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/random.bin"), common::random_bytes(2_000_000, 3)).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    // Zeros: written as holes, read back as zeros.
    let mut sparse = vec![0u8; 1 << 20];
    sparse.extend_from_slice(b"tail");
    sparse.extend(vec![0u8; 1 << 20]);
    fs::write(src.join("sparse"), &sparse).unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    let dest = env.path("dest");
    let out = env.run(["--json", "restore", "latest", dest.to_str().unwrap(), "--verify"]).ok().json();
    assert_eq!(out["report"]["files"], 3, "{out}");
    assert_eq!(out["report"]["verified"], 3, "{out}");
    assert_diff_clean(&src, &dest, &[]);
    let plain = env.run(["restore", "latest", env.path("dest2").to_str().unwrap(), "--verify"]).ok();
    assert!(plain.stdout.contains("3 files verified"), "{plain:?}");
}

#[test]
fn dry_run_lists_what_would_be_created_and_changed_and_writes_nothing() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), b"beta\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    // Into a folder that does not exist: everything is to create, and the
    // folder is still not there afterwards.
    let dest = env.path("dest");
    let out = env.run(["--json", "restore", "latest", dest.to_str().unwrap(), "--dry-run"]).ok().json();
    let create: Vec<&str> =
        out["report"]["would_create"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(create, ["a.txt", "sub", "sub/b.txt"], "{out}");
    assert!(!dest.exists());

    env.run(["restore", "latest", dest.to_str().unwrap()]).ok();
    fs::write(dest.join("a.txt"), b"edited\n").unwrap();
    fs::remove_file(dest.join("sub/b.txt")).unwrap();
    let out = env
        .run(["--json", "restore", "latest", dest.to_str().unwrap(), "--dry-run", "--overwrite", "if-changed"])
        .ok()
        .json();
    assert_eq!(out["report"]["would_create"], serde_json::json!(["sub/b.txt"]), "{out}");
    assert_eq!(out["report"]["would_change"], serde_json::json!(["a.txt"]), "{out}");
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"edited\n");
    assert!(!dest.join("sub/b.txt").exists());
    let text = env.run(["restore", "latest", dest.to_str().unwrap(), "--dry-run", "--overwrite", "if-changed"]).ok();
    assert!(text.stdout.lines().any(|l| l == "change a.txt"), "{text:?}");
    assert!(text.stdout.lines().any(|l| l == "create sub/b.txt"), "{text:?}");
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

#[test]
fn delete_removes_only_what_the_snapshot_lacks_inside_the_restored_paths() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub/deep")).unwrap();
    fs::create_dir_all(src.join("other")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), b"beta\n").unwrap();
    fs::write(src.join("sub/deep/c.txt"), b"gamma\n").unwrap();
    fs::write(src.join("other/d.txt"), b"delta\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    let dest = env.path("dest");
    env.run(["restore", "latest", dest.to_str().unwrap()]).ok();
    // What the user added since, inside and outside `sub`.
    fs::write(dest.join("extra.txt"), b"x").unwrap();
    fs::create_dir_all(dest.join("sub/extra_dir/inner")).unwrap();
    fs::write(dest.join("sub/extra_dir/inner/x.txt"), b"x").unwrap();
    fs::write(dest.join("sub/deep/y.txt"), b"y").unwrap();
    fs::write(dest.join("other/z.txt"), b"z").unwrap();
    // Restoring `sub`: only below it, listed deepest first, nothing removed.
    let d = dest.to_str().unwrap();
    let dry = env.run(["--json", "restore", "latest", d, "sub", "--delete", "--dry-run"]).ok().json();
    assert_eq!(
        strings(&dry["report"]["would_delete"]),
        ["sub/extra_dir/inner/x.txt", "sub/extra_dir/inner", "sub/extra_dir", "sub/deep/y.txt"],
        "{dry}"
    );
    assert!(dest.join("sub/extra_dir/inner/x.txt").exists() && dest.join("sub/deep/y.txt").exists());
    let text = env.run(["restore", "latest", d, "sub", "--delete", "--dry-run"]).ok();
    assert!(text.stdout.lines().any(|l| l == "delete sub/deep/y.txt"), "{text:?}");
    assert!(text.stdout.contains("4 to delete"), "{text:?}");

    let out = env.run(["--json", "restore", "latest", d, "sub", "--delete"]).ok().json();
    assert_eq!(strings(&out["report"]["deleted"]).len(), 4, "{out}");
    assert!(!dest.join("sub/extra_dir").exists() && !dest.join("sub/deep/y.txt").exists());
    assert!(dest.join("extra.txt").exists(), "outside the restored path: kept");
    assert!(dest.join("other/z.txt").exists(), "outside the restored path: kept");
    assert_diff_clean(&src.join("sub"), &dest.join("sub"), &[]);

    // Without --delete nothing goes.
    let out = env.run(["--json", "restore", "latest", d]).ok().json();
    assert!(out["report"].get("deleted").is_none(), "{out}");
    assert!(dest.join("extra.txt").exists());

    // A directory where the snapshot has a file.
    fs::remove_file(dest.join("a.txt")).unwrap();
    fs::create_dir_all(dest.join("a.txt/in")).unwrap();
    // The whole snapshot: the extras go, the directory in the way of
    // `a.txt` too, and the target equals the source.
    let dry = env.run(["--json", "restore", "latest", d, "--delete", "--dry-run"]).ok().json();
    assert_eq!(strings(&dry["report"]["would_delete"]), ["a.txt/in", "a.txt", "extra.txt", "other/z.txt"], "{dry}");
    assert_eq!(strings(&dry["report"]["would_change"]), ["a.txt"], "{dry}");
    let out = env.run(["--json", "restore", "latest", d, "--delete"]).ok().json();
    assert_eq!(strings(&out["report"]["deleted"]), ["a.txt/in", "a.txt", "extra.txt", "other/z.txt"], "{out}");
    assert_diff_clean(&src, &dest, &[]);
    assert!(common::compare_trees(&src, &dest).is_empty(), "{:?}", common::compare_trees(&src, &dest));
    let again = env.run(["--json", "restore", "latest", d, "--delete", "--dry-run"]).ok().json();
    assert!(again["report"].get("would_delete").is_none(), "{again}");
}

#[test]
fn delete_never_follows_a_symlink_out_of_the_target() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/b.txt"), b"beta\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    // A folder outside the target that a planted link points at.
    let outside = env.path("outside");
    fs::create_dir_all(outside.join("nested")).unwrap();
    fs::write(outside.join("keep.txt"), b"must stay\n").unwrap();
    fs::write(outside.join("nested/keep2.txt"), b"must stay\n").unwrap();
    let outside_files = common::files_under(&outside);
    let check_outside = |when: &str| {
        assert_eq!(common::files_under(&outside), outside_files, "{when}: files outside DEST changed");
        assert_eq!(fs::read(outside.join("keep.txt")).unwrap(), b"must stay\n", "{when}");
        assert_eq!(fs::read(outside.join("nested/keep2.txt")).unwrap(), b"must stay\n", "{when}");
    };

    let dest = env.path("dest");
    let d = dest.to_str().unwrap();
    env.run(["restore", "latest", d]).ok();
    // A link the snapshot does not have, one inside an extra directory,
    // and the snapshot's own directory `sub` swapped for a link.
    std::os::unix::fs::symlink(&outside, dest.join("link")).unwrap();
    fs::create_dir_all(dest.join("extra")).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("extra/escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep.txt"), dest.join("extra/file-link")).unwrap();
    fs::remove_dir_all(dest.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("sub")).unwrap();

    let dry = env.run(["--json", "restore", "latest", d, "--delete", "--dry-run"]).ok().json();
    assert_eq!(
        strings(&dry["report"]["would_delete"]),
        ["extra/escape", "extra/file-link", "extra", "link"],
        "nothing below a link is listed: {dry}"
    );
    check_outside("dry run");

    // Restoring `sub` alone: the link in its place is replaced, not entered.
    let out = env.run(["--json", "restore", "latest", d, "sub", "--delete"]).ok().json();
    assert!(out["report"].get("deleted").is_none(), "{out}");
    assert!(fs::symlink_metadata(dest.join("sub")).unwrap().is_dir());
    check_outside("restore of sub");

    let out = env.run(["--json", "restore", "latest", d, "--delete"]).ok().json();
    assert_eq!(strings(&out["report"]["deleted"]), ["extra/escape", "extra/file-link", "extra", "link"], "{out}");
    check_outside("full restore");
    assert_diff_clean(&src, &dest, &[]);
}

#[test]
fn if_changed_compares_content_when_only_the_time_differs() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("big.bin"), common::random_bytes(3_000_000, 11)).unwrap();
    fs::write(src.join("sub/b.txt"), b"beta\n").unwrap();
    fs::write(src.join("c.txt"), b"gamma\n").unwrap();
    env.config_with(&[("files", &src)], "");
    env.init();
    env.backup_json();

    let dest = env.path("dest");
    let first = restore_json(&env, &dest, Some("if-changed"));
    assert_eq!(first["report"]["files"], 3, "{first}");

    // Times moved and a mode changed, contents untouched.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    for name in ["big.bin", "sub/b.txt"] {
        fs::File::options().write(true).open(dest.join(name)).unwrap().set_modified(later).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dest.join("sub/b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!common::compare_trees(&src, &dest).is_empty());

    let dry = env
        .run(["--json", "restore", "latest", dest.to_str().unwrap(), "--overwrite", "if-changed", "--dry-run"])
        .ok()
        .json();
    assert!(dry["report"].get("would_change").is_none(), "equal contents are not changed: {dry}");
    assert_eq!(dry["report"]["metadata_only"], 2, "{dry}");

    let second = restore_json(&env, &dest, Some("if-changed"));
    assert_eq!(second["report"]["files"], 0, "{second}");
    assert_eq!(second["report"]["skipped"], 3, "{second}");
    assert_eq!(second["report"]["metadata_only"], 2, "{second}");
    assert_eq!(second["report"]["fetched_bytes"], 0, "nothing is fetched for equal contents: {second}");
    let diffs = common::compare_trees(&src, &dest);
    assert!(diffs.is_empty(), "times and mode are restored: {diffs:?}");

    // One byte changed (same size) and the time moved: that file alone is
    // rewritten.
    let mut big = fs::read(dest.join("big.bin")).unwrap();
    big[1_500_000] ^= 1;
    fs::write(dest.join("big.bin"), &big).unwrap();
    fs::File::options().write(true).open(dest.join("sub/b.txt")).unwrap().set_modified(later).unwrap();
    let third = restore_json(&env, &dest, Some("if-changed"));
    assert_eq!(third["report"]["files"], 1, "{third}");
    assert_eq!(third["report"]["metadata_only"], 1, "{third}");
    assert!(third["report"]["fetched_bytes"].as_u64().unwrap() > 0, "{third}");
    assert_diff_clean(&src, &dest, &[]);
    let diffs = common::compare_trees(&src, &dest);
    assert!(diffs.is_empty(), "{diffs:?}");
}
