//! Shared helpers for the end-to-end tests of the `vger` binary: a scratch
//! directory with a config and a repository, running the binary, the test
//! corpus, fingerprints of the repository and a metadata comparison of two
//! trees.

#![allow(dead_code)] // Each test file uses a different part of this module.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The passphrase of every test repository.
pub const PASS: &str = "correct horse battery staple";

/// The `vger` binary under test.
pub fn vger_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vger")
}

/// What a run of `vger` did.
#[derive(Debug)]
pub struct Run {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!("`{}` exited {}\n--- stdout\n{}\n--- stderr\n{}", self.cmd, self.code, self.stdout, self.stderr)
    }

    /// Asserts exit code 0 and no panic.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{}", self.describe());
        self.no_panic()
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{}", self.describe());
        self.no_panic()
    }

    #[track_caller]
    pub fn no_panic(self) -> Self {
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.describe());
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "panic: {}", self.describe());
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// A failed command: exit code 1, no panic, exactly one line on stderr
    /// that contains every one of `needles` (case-insensitive).
    #[track_caller]
    pub fn one_line_error(self, needles: &[&str]) -> Self {
        let run = self.code(1);
        let lines = run.stderr_lines();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {}", run.describe());
        run.stderr_has(needles)
    }

    /// stderr contains every one of `needles` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(self, needles: &[&str]) -> Self {
        let lower = self.stderr.to_lowercase();
        for n in needles {
            assert!(lower.contains(&n.to_lowercase()), "stderr lacks {n:?}: {}", self.describe());
        }
        self
    }
}

/// A scratch directory holding `vger.yaml`, a repository folder `repo/` and
/// whatever a test puts there.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("vger-e2e-").tempdir().unwrap();
        TestEnv { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    pub fn config(&self) -> PathBuf {
        self.path("vger.yaml")
    }

    /// Writes the config as a careful user keeps one that may hold
    /// secrets: mode 0600 (vger warns about a readable one).
    pub fn write_config(&self, yaml: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(self.config(), yaml).unwrap();
        fs::set_permissions(self.config(), fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// One repository (`repo/`, label `local`) and one source per
    /// `(label, path)`, plus `extra` YAML appended at the top level.
    pub fn config_with(&self, sources: &[(&str, &Path)], extra: &str) {
        let mut y = format!("repositories:\n  - label: local\n    url: \"{}\"\n", self.repo().display());
        y.push_str(if sources.is_empty() { "sources: []\n" } else { "sources:\n" });
        for (label, path) in sources {
            y.push_str(&format!("  - label: {label}\n    path: \"{}\"\n", path.display()));
        }
        y.push_str(extra);
        self.write_config(&y);
    }

    /// Runs `vger --config vger.yaml ARGS` with the test passphrase.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_env(args, &[("VGER_PASSPHRASE", PASS)])
    }

    /// Like [`run`](Self::run) with these environment variables (and no
    /// passphrase unless given).
    pub fn run_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(self.config()).args(args);
        for var in ["VGER_PASSPHRASE", "VGER_NEW_PASSPHRASE", "VGER_CONFIG"] {
            cmd.env_remove(var);
        }
        self.private_user_dirs(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(self.dir.path());
        run(cmd)
    }

    /// Points `cmd`'s XDG cache and state folders into this environment, so
    /// that resume journals and index caches of tests do not pile up in the
    /// user's home (a config's `cache_dir` still wins).
    pub fn private_user_dirs(&self, cmd: &mut Command) {
        cmd.env("XDG_CACHE_HOME", self.path(".xdg-cache")).env("XDG_STATE_HOME", self.path(".xdg-state"));
    }

    /// `vger init`, asserted to succeed.
    pub fn init(&self) {
        self.run(["init"]).ok();
    }

    /// `vger --json backup`: the one backup report of the JSON array.
    #[track_caller]
    pub fn backup_json(&self) -> serde_json::Value {
        let run = self.run(["--json", "backup"]).ok();
        let v = run.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("backup --json is not an array: {v}"));
        assert_eq!(arr.len(), 1, "one source, one repository: {v}");
        arr[0].clone()
    }

    /// `vger --json list`: the array of snapshots.
    #[track_caller]
    pub fn list_json(&self) -> Vec<serde_json::Value> {
        let v = self.run(["--json", "list"]).ok().json();
        v.as_array().unwrap_or_else(|| panic!("list --json is not an array: {v}")).clone()
    }
}

/// Runs a prepared command with stdin closed and captures its output.
pub fn run(mut cmd: Command) -> Run {
    let desc = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    Run {
        cmd: desc,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Where `make-corpus` is: `$VGER_MAKE_CORPUS`, else `shared/bench/make-corpus`
/// beside the workspace.
pub fn make_corpus_script() -> PathBuf {
    if let Some(p) = std::env::var_os("VGER_MAKE_CORPUS") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/make-corpus")
}

/// Writes the deterministic test corpus of about `size_mib` MiB into `dest`.
/// Fails the test (never skips it) when the generator is missing.
pub fn make_corpus(dest: &Path, size_mib: u32) {
    let script = make_corpus_script();
    assert!(
        script.is_file(),
        "the corpus generator {} is missing: check out `shared/bench/make-corpus` beside the workspace, or set \
         VGER_MAKE_CORPUS to its path",
        script.display()
    );
    let out = Command::new("python3")
        .arg(&script)
        .arg(dest)
        .arg("--size-mib")
        .arg(size_mib.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(out.status.success(), "make-corpus failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// What [`fingerprint`] records of one object or folder of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// The bytes of objects up to 1 MiB.
    pub content: Option<Vec<u8>>,
}

/// Every object and folder of a repository, by relative path.
pub type Fingerprint = BTreeMap<PathBuf, ObjectState>;

/// Every file and folder under a repository with its size, mtime and (for
/// small objects) contents: equal fingerprints mean nothing was changed.
pub fn fingerprint(repo: &Path) -> Fingerprint {
    let mut out = BTreeMap::new();
    for (rel, md) in walk(repo) {
        // A folder's mtime changes when a command takes and releases a
        // lock in it; its entries are compared one by one instead.
        let state = if md.is_dir() {
            ObjectState { size: 0, mtime: 0, mtime_nsec: 0, content: None }
        } else {
            let content = (md.len() <= 1 << 20).then(|| fs::read(repo.join(&rel)).unwrap());
            ObjectState { size: md.len(), mtime: md.mtime(), mtime_nsec: md.mtime_nsec(), content }
        };
        out.insert(rel, state);
    }
    out
}

/// Asserts that two fingerprints are equal, naming what differs.
#[track_caller]
pub fn assert_unchanged(before: &Fingerprint, after: &Fingerprint) {
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("removed {}", k.display())),
            Some(w) if w != v => diffs.push(format!("changed {}", k.display())),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diffs.push(format!("added {}", k.display()));
    }
    assert!(diffs.is_empty(), "the repository changed: {diffs:?}");
}

/// All paths below `root` (relative, root excluded), depth first, with
/// their `lstat`, sorted by path.
pub fn walk(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.unwrap();
            let child = rel.join(e.file_name());
            let md = fs::symlink_metadata(root.join(&child)).unwrap();
            if md.is_dir() {
                stack.push(child.clone());
            }
            out.push((child, md));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The regular files below `root` (none when it does not exist).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    if !root.exists() {
        return Vec::new();
    }
    walk(root).into_iter().filter(|(_, md)| md.is_file()).map(|(p, _)| root.join(p)).collect()
}

fn kind(md: &fs::Metadata) -> &'static str {
    let t = md.file_type();
    if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_char_device() {
        "char"
    } else if t.is_block_device() {
        "block"
    } else {
        "socket"
    }
}

/// Extended attributes of a path (not following symlinks), sorted.
pub fn xattrs_of(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(names) = xattr::list(path) else { return Vec::new() };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names
        .map(|n| {
            let v = xattr::get(path, &n).ok().flatten().unwrap_or_default();
            (n.as_bytes().to_vec(), v)
        })
        .collect();
    out.sort();
    out
}

/// Compares every attribute vger promises to keep, for every path below
/// `src` and `dest` (the roots themselves excluded): the same set of names,
/// kind, mode with special bits, owner, mtime to the nanosecond (symlinks
/// and directories too), size, symlink targets, xattrs, device numbers, and
/// hard links (names sharing an inode in `src` share one in `dest`).
/// Returns the list of differences (empty when the trees match).
pub fn compare_trees(src: &Path, dest: &Path) -> Vec<String> {
    let a = walk(src);
    let b: HashMap<PathBuf, fs::Metadata> = walk(dest).into_iter().collect();
    let mut diffs = Vec::new();
    let a_names: std::collections::BTreeSet<&PathBuf> = a.iter().map(|(p, _)| p).collect();
    for p in b.keys().filter(|p| !a_names.contains(p)) {
        diffs.push(format!("{}: only in the restore", p.display()));
    }
    // Inode groups of the source and the inode each name has in dest.
    let mut src_groups: HashMap<(u64, u64), Vec<PathBuf>> = HashMap::new();
    for (rel, ma) in &a {
        let name = rel.display();
        let Some(mb) = b.get(rel) else {
            diffs.push(format!("{name}: missing in the restore"));
            continue;
        };
        let mut check = |what: &str, x: String, y: String| {
            if x != y {
                diffs.push(format!("{name}: {what} {x} != {y}"));
            }
        };
        check("kind", kind(ma).into(), kind(mb).into());
        check("mode", format!("{:o}", ma.mode() & 0o7777), format!("{:o}", mb.mode() & 0o7777));
        check("uid", ma.uid().to_string(), mb.uid().to_string());
        check("gid", ma.gid().to_string(), mb.gid().to_string());
        check(
            "mtime",
            format!("{}.{:09}", ma.mtime(), ma.mtime_nsec()),
            format!("{}.{:09}", mb.mtime(), mb.mtime_nsec()),
        );
        if !ma.is_dir() {
            check("size", ma.len().to_string(), mb.len().to_string());
        }
        if ma.file_type().is_symlink() && mb.file_type().is_symlink() {
            let ta = fs::read_link(src.join(rel)).unwrap();
            let tb = fs::read_link(dest.join(rel)).unwrap();
            check("symlink target", format!("{ta:?}"), format!("{tb:?}"));
        }
        if ma.file_type().is_char_device() || ma.file_type().is_block_device() {
            check("rdev", ma.rdev().to_string(), mb.rdev().to_string());
        }
        check("xattrs", format!("{:?}", xattrs_of(&src.join(rel))), format!("{:?}", xattrs_of(&dest.join(rel))));
        if ma.is_file() && ma.nlink() > 1 {
            src_groups.entry((ma.dev(), ma.ino())).or_default().push(rel.clone());
        }
    }
    for names in src_groups.values().filter(|n| n.len() > 1) {
        let inodes: std::collections::BTreeSet<Option<(u64, u64)>> =
            names.iter().map(|n| b.get(n).map(|m| (m.dev(), m.ino()))).collect();
        if inodes.len() != 1 {
            diffs.push(format!("hard links {names:?} do not share one inode in the restore"));
        }
    }
    diffs
}

/// `diff -r --no-dereference SRC DEST`, excluding names matching `exclude`
/// (GNU diff reports any two FIFOs as different).
#[track_caller]
pub fn assert_diff_clean(src: &Path, dest: &Path, exclude: &[&str]) {
    let mut cmd = Command::new("diff");
    cmd.arg("-r").arg("--no-dereference");
    for x in exclude {
        cmd.arg(format!("--exclude={x}"));
    }
    let out = cmd.arg(src).arg(dest).output().unwrap();
    assert!(
        out.status.success(),
        "diff -r --no-dereference {} {} found differences:\n{}{}",
        src.display(),
        dest.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file of `len` pseudo-random (incompressible) bytes from `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A raw-bytes path component as an `OsStr`.
pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}
