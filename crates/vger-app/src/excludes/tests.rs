//! The exclude matcher against `git check-ignore` on the same tree.

#![allow(clippy::panic, clippy::unwrap_used)] // Tests fail by panicking.

use std::process::Command;

use super::*;

/// (pattern, path, is_dir) cases; the expected answer comes from git.
const CASES: &[(&str, &str, bool)] = &[
    ("*.log", "app.log", false),
    ("*.log", "deep/dir/app.log", false),
    ("*.log", "app.log.txt", false),
    ("build", "build", true),
    ("build", "src/build", true),
    ("build", "src/build", false),
    ("build/", "build", true),
    ("build/", "build", false),
    ("build/", "src/build", true),
    ("/build", "build", true),
    ("/build", "src/build", true),
    ("src/*.o", "src/a.o", false),
    ("src/*.o", "src/sub/a.o", false),
    ("src/*.o", "other/src/a.o", false),
    ("doc/**/*.pdf", "doc/a.pdf", false),
    ("doc/**/*.pdf", "doc/x/y/a.pdf", false),
    ("**/cache", "cache", true),
    ("**/cache", "a/b/cache", true),
    ("a/**", "a/x", false),
    ("a/**", "a/x/y", false),
    ("a/**", "a", true),
    ("*.tmp\n!keep.tmp", "keep.tmp", false),
    ("*.tmp\n!keep.tmp", "drop.tmp", false),
    ("*.tmp\n!keep.tmp", "d/keep.tmp", false),
    ("node_modules/\n!node_modules/keep", "node_modules/keep", false),
    ("?.txt", "a.txt", false),
    ("?.txt", "ab.txt", false),
    ("[ab].c", "a.c", false),
    ("[ab].c", "c.c", false),
    ("\\#hash", "#hash", false),
    ("name with space", "name with space", false),
    ("*.JPG", "photo.jpg", false),
    ("dir/sub/", "dir/sub", true),
    ("dir/sub/", "x/dir/sub", true),
    ("*", "anything", false),
    ("*/", "d", true),
    ("*/", "f", false),
];

fn git_says(pattern: &str, path: &str, is_dir: bool) -> bool {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let root = dir.path();
    let ok = Command::new("git").args(["init", "-q"]).current_dir(root).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "git init failed (git is needed for this test)");
    std::fs::write(root.join(".gitignore"), format!("{pattern}\n")).unwrap_or_else(|e| panic!("{e}"));
    let full = root.join(path);
    if is_dir {
        std::fs::create_dir_all(&full).unwrap_or_else(|e| panic!("{e}"));
    } else {
        if let Some(p) = full.parent() {
            std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&full, b"x").unwrap_or_else(|e| panic!("{e}"));
    }
    let out = Command::new("git")
        .args(["-c", "core.ignorecase=false", "check-ignore", "-q", "--no-index", path])
        .current_dir(root)
        .status()
        .unwrap_or_else(|e| panic!("git: {e}"));
    match out.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("git check-ignore failed ({other:?}) for {pattern:?} {path}"),
    }
}

/// Our effective answer: the path or one of its parent folders matches
/// (the walk does not enter excluded folders).
fn we_say(pattern: &str, path: &str, is_dir: bool) -> bool {
    let lines: Vec<&str> = pattern.lines().collect();
    let m = matcher(&lines).unwrap_or_else(|e| panic!("{e}"));
    let parts: Vec<&str> = path.split('/').collect();
    for i in 1..parts.len() {
        if matches(&m, parts[..i].join("/").as_bytes(), true) {
            return true;
        }
    }
    matches(&m, path.as_bytes(), is_dir)
}

#[test]
fn excludes_agree_with_git_check_ignore() {
    assert!(CASES.len() >= 30);
    let mut disagreements = Vec::new();
    for (pattern, path, is_dir) in CASES {
        let git = git_says(pattern, path, *is_dir);
        let ours = we_say(pattern, path, *is_dir);
        if git != ours {
            disagreements.push(format!("pattern {pattern:?} path {path} dir={is_dir}: git {git}, vger {ours}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn nested_gitignore_files_are_honoured() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    std::fs::create_dir_all(root.join("a/b")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join(".gitignore"), "*.log\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("a/.gitignore"), "!keep.log\nsecret\n").unwrap_or_else(|e| panic!("{e}"));
    let roots = vec![WalkRoot { abs: root.to_path_buf(), rel: Vec::new() }];
    let f = build(ExcludeSpec { patterns: vec![], markers: vec![], git_ignore: true }, &roots)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no matcher"));
    assert!(f(b"x.log", false));
    assert!(f(b"a/b/x.log", false));
    assert!(!f(b"a/keep.log", false));
    assert!(!f(b"a/b/keep.log", false));
    assert!(f(b"a/b/secret", false));
    assert!(!f(b"secret", false));
    assert!(!f(b"a/b/x.txt", false));
}

#[test]
fn marker_files_exclude_their_folder() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    std::fs::create_dir_all(root.join("cache")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join("work")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("cache/CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55")
        .unwrap_or_else(|e| panic!("{e}"));
    let roots = vec![WalkRoot { abs: root.to_path_buf(), rel: Vec::new() }];
    let f = build(ExcludeSpec { patterns: vec![], markers: vec!["CACHEDIR.TAG".into()], git_ignore: false }, &roots)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no matcher"));
    assert!(f(b"cache", true));
    assert!(!f(b"work", true));
}
