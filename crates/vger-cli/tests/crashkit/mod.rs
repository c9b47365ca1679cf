//! Helpers for the crash-safety (`crash.rs`) and corruption-matrix
//! (`corruption_matrix.rs`) tests: running `vger` (to completion or killed
//! with SIGKILL), a seeded RNG, the test corpus, manifests of a source tree
//! (path -> size and BLAKE3 of the content, symlink targets) to compare
//! restores against, and small damage helpers for repository files.
//!
//! Kept apart from `tests/common/` on purpose (another suite owns it).

#![allow(dead_code)] // Each test file uses a different part of this module.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The passphrase of every test repository.
pub const PASS: &str = "crash kit passphrase";

/// The `vger` binary under test.
pub fn vger_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vger")
}

// ---------------------------------------------------------------- runs

/// What a run of `vger` did.
#[derive(Debug, Clone)]
pub struct Run {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {} after {:.2?}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd, self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts no panic: never exit code 101, never "panicked" on stderr.
    #[track_caller]
    pub fn no_panic(self) -> Self {
        assert_ne!(self.code, 101, "exit code 101 (a panic): {}", self.describe());
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.describe());
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "panic: {}", self.describe());
        self
    }

    /// Asserts exit code 0 and no panic.
    #[track_caller]
    pub fn ok(self) -> Self {
        let run = self.no_panic();
        assert_eq!(run.code, 0, "{}", run.describe());
        run
    }

    /// Asserts this exit code and no panic.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        let run = self.no_panic();
        assert_eq!(run.code, code, "{}", run.describe());
        run
    }

    /// stdout and stderr together, lowercased (check prints its findings on
    /// stdout and the summary on stderr).
    pub fn all_lower(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr).to_lowercase()
    }

    /// stdout or stderr contains every one of `needles` (case-insensitive).
    #[track_caller]
    pub fn says(self, needles: &[&str]) -> Self {
        let all = self.all_lower();
        for n in needles {
            assert!(all.contains(&n.to_lowercase()), "output lacks {n:?}: {}", self.describe());
        }
        self
    }

    /// stdout or stderr contains none of `needles` (case-insensitive).
    #[track_caller]
    pub fn never_says(self, needles: &[&str]) -> Self {
        let all = self.all_lower();
        for n in needles {
            assert!(!all.contains(&n.to_lowercase()), "output has {n:?}: {}", self.describe());
        }
        self
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// Exit code 1, no panic, and exactly one line on stderr.
    #[track_caller]
    pub fn one_line_error(self) -> Self {
        let run = self.code(1);
        assert_eq!(run.stderr_lines().len(), 1, "expected one line on stderr: {}", run.describe());
        run
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// The first line of stderr (for matrix rows and summaries).
    pub fn first_error(&self) -> String {
        let line = self.stderr_lines().first().map(|l| l.trim().to_string()).unwrap_or_default();
        let line = line.strip_prefix("vger: error: ").unwrap_or(&line).to_string();
        shorten(&line, 110)
    }
}

/// `s` cut to `max` characters with an ellipsis.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

/// Runs a prepared command with stdin closed and captures its output.
pub fn run(mut cmd: Command) -> Run {
    let desc = format!("{cmd:?}");
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    Run {
        cmd: desc,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// How a command run under [`run_with_kill`] ended.
#[derive(Debug)]
pub enum KillOutcome {
    /// It finished on its own before the kill.
    Completed(Run),
    /// It was killed by SIGKILL after this long.
    Killed(Duration),
}

/// Spawns `cmd` (stdout and stderr into files under `scratch`), waits up to
/// `delay`, then kills it with SIGKILL. A command that exited first (even
/// between the last poll and the kill) counts as completed.
pub fn run_with_kill(cmd: Command, delay: Duration, scratch: &Path) -> KillOutcome {
    run_until(cmd, scratch, |elapsed| elapsed >= delay)
}

/// Like [`run_with_kill`], killing when `kill_now(elapsed)` first returns
/// true (polled about every millisecond).
pub fn run_until(mut cmd: Command, scratch: &Path, mut kill_now: impl FnMut(Duration) -> bool) -> KillOutcome {
    let desc = format!("{cmd:?}");
    let out_path = scratch.join("killed.stdout");
    let err_path = scratch.join("killed.stderr");
    cmd.stdin(Stdio::null()).stdout(fs::File::create(&out_path).unwrap()).stderr(fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if kill_now(start.elapsed()) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let status = match finished {
        Some(s) => s,
        None => {
            // Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    let elapsed = start.elapsed();
    if status.signal() == Some(libc_sigkill()) {
        return KillOutcome::Killed(elapsed);
    }
    KillOutcome::Completed(Run {
        cmd: desc,
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed,
    })
}

const fn libc_sigkill() -> i32 {
    9
}

// ---------------------------------------------------------------- environment

/// A scratch directory with `vger.yaml`, a repository and sources.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

impl Env {
    /// A scratch directory under the system temp dir, repository in `repo/`.
    pub fn new(prefix: &str) -> Self {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let repo = dir.path().join("repo");
        Env { dir, repo }
    }

    /// Like [`new`](Self::new) with the repository at `repo` (e.g. on a
    /// mounted file system).
    pub fn with_repo(prefix: &str, repo: PathBuf) -> Self {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        Env { dir, repo }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self) -> PathBuf {
        self.path("vger.yaml")
    }

    /// One repository (label `local`) and one source per `(label, path)`,
    /// plus `extra` YAML at the top level.
    pub fn write_config(&self, sources: &[(&str, &Path)], extra: &str) {
        let mut y = format!("repositories:\n  - label: local\n    url: \"{}\"\nsources:\n", self.repo.display());
        for (label, path) in sources {
            y.push_str(&format!("  - label: {label}\n    path: \"{}\"\n", path.display()));
        }
        y.push_str(extra);
        fs::write(self.config(), y).unwrap();
    }

    /// `vger --config vger.yaml -q ARGS` with the test passphrase.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(self.config()).arg("-q").args(args);
        for var in ["VGER_PASSPHRASE", "VGER_NEW_PASSPHRASE", "VGER_CONFIG", "VGER_LOCK_LEASE_SECS"] {
            cmd.env_remove(var);
        }
        cmd.env("VGER_PASSPHRASE", PASS);
        cmd.env("RUST_BACKTRACE", "0");
        // Journals and caches stay in the test's folder, not the user's home.
        cmd.env("XDG_CACHE_HOME", self.dir.path().join(".xdg-cache"));
        cmd.env("XDG_STATE_HOME", self.dir.path().join(".xdg-state"));
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs `vger ARGS` to completion; asserts it did not panic.
    #[track_caller]
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.cmd(args)).no_panic()
    }

    #[track_caller]
    pub fn init(&self) {
        self.run(["init"]).ok();
    }

    /// `vger --json backup ARGS`, asserted to succeed: the one report.
    #[track_caller]
    pub fn backup(&self, args: &[&str]) -> (serde_json::Value, Run) {
        let mut all = vec!["--json", "backup"];
        all.extend_from_slice(args);
        let run = self.run(&all).ok();
        let v = run.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("backup --json is not an array: {v}"));
        assert_eq!(arr.len(), 1, "one source, one repository: {v}");
        (arr[0].clone(), run)
    }

    /// `vger --json list`: snapshot ids with their times, oldest first.
    #[track_caller]
    pub fn list(&self) -> Vec<(String, String)> {
        let run = self.run(["--json", "list"]).ok();
        let v = run.json();
        let arr = v.as_array().unwrap_or_else(|| panic!("list --json is not an array: {v}"));
        let mut out: Vec<(String, String)> = arr
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s["time"].as_str().unwrap_or_default().to_string()))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Restores `id` (a prefix is enough) into a fresh folder and compares it
    /// with `expected`; returns the differences (empty when identical).
    #[track_caller]
    pub fn restore_diff(&self, id: &str, expected: &Manifest) -> Vec<String> {
        let dest = self.path(&format!("restore-{}", &id[..12.min(id.len())]));
        let _ = fs::remove_dir_all(&dest);
        let run = self.run(["restore".as_ref(), id.as_ref(), dest.as_os_str()]);
        if run.code != 0 {
            return vec![format!("restore failed: {}", run.describe())];
        }
        let got = manifest(&dest);
        let _ = fs::remove_dir_all(&dest);
        diff_manifests(expected, &got)
    }

    /// Number of objects under `repo/<dir>` (temporary files excluded).
    pub fn count(&self, dir: &str) -> usize {
        objects_under(&self.repo.join(dir)).len()
    }
}

/// The regular files below `root` that are repository objects (no `.tmp-*`
/// leftovers), sorted.
pub fn objects_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = fs::symlink_metadata(&p) else { continue };
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() && !e.file_name().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Bytes of the repository objects below `root`.
pub fn bytes_under(root: &Path) -> u64 {
    objects_under(root).iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// BLAKE3 of every file under the repository, by relative path: equal maps
/// mean a command changed nothing.
pub fn repo_state(repo: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(repo).unwrap().to_path_buf();
                out.insert(rel, blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------- corpus

/// Where `make-corpus` is: `$VGER_MAKE_CORPUS`, else `shared/bench/make-corpus`
/// beside the workspace.
pub fn make_corpus_script() -> PathBuf {
    if let Some(p) = std::env::var_os("VGER_MAKE_CORPUS") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/make-corpus")
}

fn corpus_cmd(dest: &Path, args: &[String]) {
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
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(out.status.success(), "make-corpus {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes the deterministic corpus of about `size_mib` MiB into `dest`.
/// Its 256 MiB sparse file is replaced by a 4 MiB one (a hole, then data):
/// restoring and hashing 256 MiB on every iteration would dominate the
/// run time of a debug build without testing anything more.
pub fn make_corpus(dest: &Path, size_mib: u32, seed: u64) {
    corpus_cmd(dest, &["--size-mib".into(), size_mib.to_string(), "--seed".into(), seed.to_string()]);
    let sparse = dest.join("odd/sparse.img");
    if sparse.exists() {
        fs::remove_file(&sparse).unwrap();
        let f = fs::File::create(&sparse).unwrap();
        f.set_len(4 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(b"middle of a small sparse file\n", 2 << 20).unwrap();
    }
}

/// `make-corpus DEST --churn PERCENT --seed SEED`: edits, appends, adds and
/// deletes about PERCENT % of the files.
pub fn churn(dest: &Path, percent: u32, seed: u64) {
    corpus_cmd(dest, &["--churn".into(), percent.to_string(), "--seed".into(), seed.to_string()]);
}

/// What `make-corpus --churn` does, in Rust (no Python start-up per
/// iteration): edits in the middle, appends to, deletes and adds files
/// next to about `percent` % of the regular files outside `odd/`.
pub fn quick_churn(root: &Path, percent: u64, rng: &mut Rng) {
    use std::io::Write;
    let mut files: Vec<PathBuf> = objects_under(root)
        .into_iter()
        .filter(|p| !p.strip_prefix(root).map(|r| r.starts_with("odd")).unwrap_or(true))
        .collect();
    files.sort();
    let k = (files.len() as u64 * percent / 100).max(1);
    for _ in 0..k {
        if files.is_empty() {
            break;
        }
        let p = files.swap_remove(rng.below(files.len() as u64) as usize);
        let action = rng.below(100);
        let mut bytes = vec![0u8; 1 + rng.below(4096) as usize];
        rng.fill(&mut bytes);
        if action < 50 {
            use std::os::unix::fs::FileExt;
            let len = file_len(&p);
            let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.write_at(&bytes, rng.below(len.max(1))).unwrap();
        } else if action < 75 {
            let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
            let line = format!("appended {} bytes at churn {}\n", bytes.len(), rng.next_u64());
            f.write_all(line.repeat(1 + rng.below(2000) as usize).as_bytes()).unwrap();
        } else if action < 90 {
            fs::remove_file(&p).unwrap();
        } else {
            let name = format!("{}.new{}", p.file_name().unwrap().to_string_lossy(), rng.below(1_000_000));
            fs::write(p.with_file_name(name), &bytes).unwrap();
        }
    }
}

/// A seeded xorshift64* generator: the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `len` incompressible bytes from `seed` into `path` (parents made).
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut rng = Rng::new(seed);
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

// ---------------------------------------------------------------- manifests

/// One entry of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Dir,
    File { size: u64, blake3: String },
    Symlink(PathBuf),
    Other,
}

/// A source tree at one moment: relative path -> what it is.
pub type Manifest = BTreeMap<PathBuf, Item>;

/// The manifest of everything below `root` (root excluded).
pub fn manifest(root: &Path) -> Manifest {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.unwrap();
            let child = rel.join(e.file_name());
            let path = root.join(&child);
            let md = fs::symlink_metadata(&path).unwrap();
            let item = if md.is_dir() {
                stack.push(child.clone());
                Item::Dir
            } else if md.file_type().is_symlink() {
                Item::Symlink(fs::read_link(&path).unwrap())
            } else if md.is_file() {
                Item::File { size: md.len(), blake3: hash_file(&path) }
            } else {
                Item::Other
            };
            out.insert(child, item);
        }
    }
    out
}

/// BLAKE3 of a file's content, streamed.
pub fn hash_file(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().to_hex().to_string()
}

/// Sum of the file sizes of a manifest.
pub fn manifest_bytes(m: &Manifest) -> u64 {
    m.values().map(|i| if let Item::File { size, .. } = i { *size } else { 0 }).sum()
}

/// Bytes of the files of `now` that are not in `before` with the same content.
pub fn fresh_bytes(before: &Manifest, now: &Manifest) -> u64 {
    now.iter()
        .filter(|(p, i)| before.get(*p) != Some(*i))
        .map(|(_, i)| if let Item::File { size, .. } = i { *size } else { 0 })
        .sum()
}

/// The differences between an expected and a restored manifest (at most 20).
pub fn diff_manifests(expected: &Manifest, got: &Manifest) -> Vec<String> {
    let mut diffs = Vec::new();
    for (p, want) in expected {
        match got.get(p) {
            None => diffs.push(format!("{}: missing from the restore", p.display())),
            Some(have) if have != want => diffs.push(format!("{}: {want:?} != {have:?}", p.display())),
            _ => {}
        }
    }
    for p in got.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.push(format!("{}: only in the restore", p.display()));
    }
    diffs.truncate(20);
    diffs
}

/// The manifest restricted to paths at or below one of `prefixes`.
pub fn sub_manifest(m: &Manifest, prefixes: &[&str]) -> Manifest {
    m.iter()
        .filter(|(p, _)| prefixes.iter().any(|pre| p.starts_with(pre)))
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect()
}

// ---------------------------------------------------------------- damage

/// XORs one byte of a file with 0x10.
pub fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

/// Overwrites `len` bytes at `at` with zeros.
pub fn zero_range(path: &Path, at: usize, len: usize) {
    let mut bytes = fs::read(path).unwrap();
    let end = (at + len).min(bytes.len());
    bytes[at..end].fill(0);
    fs::write(path, bytes).unwrap();
}

/// Cuts a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// Size of a file.
pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// The inode-change time of a path (to tell whether it was rewritten).
pub fn ctime(path: &Path) -> i64 {
    fs::metadata(path).map(|m| m.ctime()).unwrap_or(0)
}

/// The first 8 hex digits of a repository object's name.
pub fn short_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy()[..8].to_string()
}
