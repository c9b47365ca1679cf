//! Crash safety (issue 4, "the core promise"): `vger backup`, `prune`,
//! `compact` and `check --repair` are killed with SIGKILL at random moments,
//! and after every kill the repository must still hold every committed
//! snapshot intact; plus a full disk and an I/O error while restoring.
//!
//! How to run:
//!
//! ```sh
//! # CI default: 30 kills, about 3-4 minutes in a debug build on 2 cores
//! cargo test -p vger-cli --test crash
//! # the full campaign: 240 kills (or the #[ignore]d `crash_full`: 240, never below 200)
//! VGER_KILL_COUNT=240 cargo test -p vger-cli --test crash --release -- --nocapture kill_campaign
//! cargo test -p vger-cli --test crash --release -- --ignored --nocapture crash_full
//! # reproduce a failure: the seed is printed at the start of the campaign
//! VGER_KILL_SEED=<seed> VGER_KILL_COUNT=<n> cargo test -p vger-cli --test crash -- --nocapture kill_campaign
//! ```
//!
//! The seed fixes every choice the test makes (which command, the source
//! changes, the delay before each kill); the moment a kill lands inside the
//! command still depends on the machine's speed, so a seed reproduces the
//! same sequence of commands and delays, not always the same kill points.
//!
//! After every kill (and every completed command) the campaign asserts:
//! 1. `vger check` exits 0 (orphan-pack warnings allowed); every few
//!    iterations and at the end `vger check --verify-data` exits 0;
//! 2. every snapshot committed before the kill is still listed, unless a
//!    prune may delete it (`keep_last: 4`), and a random one (all of them at
//!    the end) restores byte for byte against the manifest taken of the source
//!    when it was backed up;
//! 3. after a killed backup, a backup run to completion succeeds, and when
//!    the killed one had stored a checkpoint it adds less than the corpus
//!    (and less than what changed since the last snapshot): it resumed;
//! 4. no command fails because of a lock a killed process left behind.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod crashkit;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashkit::{
    bytes_under, diff_manifests, fresh_bytes, make_corpus, manifest, manifest_bytes, objects_under, run_until,
    run_with_kill, sub_manifest, write_random_file, Env, KillOutcome, Manifest, Rng, Run,
};

const DEFAULT_SEED: u64 = 20_261_127;
const DEFAULT_KILLS: u64 = 30;
const FULL_KILLS: u64 = 240;
/// `retention: {keep_last: N}` in the campaign's config.
const KEEP_LAST: usize = 4;
/// `check --verify-data` runs after every this many iterations.
const VERIFY_EVERY: u64 = 5;
/// Size of the "drop": a new incompressible file some backups must upload,
/// two 32 MiB packs and a bit, so that checkpoints land before the end.
const DROP_BYTES: u64 = 64 << 20;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v} is not a number: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Backup,
    Prune,
    Compact,
    Repair,
}

impl Op {
    const ALL: [Op; 4] = [Op::Backup, Op::Prune, Op::Compact, Op::Repair];

    fn args(self) -> &'static [&'static str] {
        match self {
            Op::Backup => &["--json", "backup", "--checkpoint", "1"],
            Op::Prune => &["prune"],
            Op::Compact => &["compact", "--grace", "0s"],
            Op::Repair => &["check", "--repair", "--yes"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Backup => "backup",
            Op::Prune => "prune",
            Op::Compact => "compact --grace 0s",
            Op::Repair => "check --repair --yes",
        }
    }

    /// Backup most often, then the maintenance commands.
    fn pick(rng: &mut Rng) -> Op {
        match rng.below(100) {
            0..=49 => Op::Backup,
            50..=66 => Op::Prune,
            67..=83 => Op::Compact,
            _ => Op::Repair,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    kills: u64,
    completed: u64,
    /// Backups killed after a checkpoint segment was stored.
    late_kills: u64,
    /// Kills after which the command had already committed (a snapshot
    /// written or deleted) before dying.
    committed_before_kill: u64,
}

/// A committed snapshot as the campaign knows it.
struct Snap {
    time: String,
    manifest: Arc<Manifest>,
}

struct Campaign {
    env: Env,
    src: PathBuf,
    seed: u64,
    rng: Rng,
    snaps: BTreeMap<String, Snap>,
    /// Typical wall time of each command, measured once at the start.
    typical: BTreeMap<Op, Duration>,
    typical_drop_backup: Duration,
    /// Wall time of a command that only opens the repository (`list`).
    open: Duration,
    tally: BTreeMap<Op, Tally>,
    iteration: u64,
    drop: Option<PathBuf>,
    restores: u64,
    verifies: u64,
    /// (added bytes of the resuming backup, bytes changed since the last snapshot)
    resumes: Vec<(u64, u64)>,
}

impl Campaign {
    fn setup(seed: u64) -> Self {
        let setup_start = Instant::now();
        let env = Env::new("vger-crash-");
        let src = env.path("src");
        make_corpus(&src, 16, seed % 1000 + 1);
        env.write_config(&[("data", &src)], &format!("retention:\n  keep_last: {KEEP_LAST}\n"));
        env.init();
        let mut c = Campaign {
            env,
            src,
            seed,
            rng: Rng::new(seed),
            snaps: BTreeMap::new(),
            typical: BTreeMap::new(),
            typical_drop_backup: Duration::ZERO,
            open: Duration::ZERO,
            tally: BTreeMap::new(),
            iteration: 0,
            drop: None,
            restores: 0,
            verifies: 0,
            resumes: Vec::new(),
        };
        // Measure each command once on this machine and this build.
        c.open = (0..2).map(|_| c.env.run(["--json", "list"]).ok().elapsed).min().unwrap();
        let full = c.complete_backup();
        crashkit::churn(&c.src, 3, c.churn_seed());
        let incr = c.complete_backup();
        c.typical.insert(Op::Backup, incr);
        c.add_drop();
        c.typical_drop_backup = c.complete_backup();
        for op in [Op::Prune, Op::Compact, Op::Repair] {
            let run = c.env.run(op.args()).ok();
            c.typical.insert(op, run.elapsed);
        }
        println!(
            "setup took {:.1?}; measured: open {:.2?}, first backup {full:.2?}, backup {incr:.2?}, backup of a {} MiB drop {:.2?}, \
             prune {:.2?}, compact {:.2?}, check --repair {:.2?}",
            setup_start.elapsed(),
            c.open,
            DROP_BYTES >> 20,
            c.typical_drop_backup,
            c.typical[&Op::Prune],
            c.typical[&Op::Compact],
            c.typical[&Op::Repair]
        );
        c.reconcile(None, &BTreeSet::new(), "setup");
        c
    }

    fn churn_seed(&self) -> u64 {
        (self.seed % 100_000) * 100_000 + self.iteration
    }

    fn add_drop(&mut self) {
        if let Some(old) = self.drop.take() {
            let _ = fs::remove_file(old);
        }
        let path = self.src.join(format!("drop/big-{:05}.bin", self.iteration));
        write_random_file(&path, DROP_BYTES, self.rng.next_u64());
        self.drop = Some(path);
    }

    /// A backup run to completion; records its snapshot. Returns its time.
    #[track_caller]
    fn complete_backup(&mut self) -> Duration {
        let m = Arc::new(manifest(&self.src));
        let (report, run) = self.env.backup(&["--checkpoint", "1"]);
        self.record(&report, m);
        run.elapsed
    }

    fn record(&mut self, report: &serde_json::Value, m: Arc<Manifest>) {
        let id = report["id"].as_str().unwrap().to_string();
        let time = report["time"].as_str().unwrap_or_default().to_string();
        self.snaps.insert(id, Snap { time, manifest: m });
    }

    /// The newest committed snapshot's manifest.
    fn newest_manifest(&self) -> Option<Arc<Manifest>> {
        self.snaps.values().max_by(|a, b| a.time.cmp(&b.time)).map(|s| s.manifest.clone())
    }

    /// Compares `vger list` with what the campaign knows. `pending` is the
    /// manifest of a backup that ran (it may have committed); `may_delete`
    /// the snapshots the command may have removed. Returns whether the
    /// listing changed.
    #[track_caller]
    fn reconcile(&mut self, pending: Option<&Arc<Manifest>>, may_delete: &BTreeSet<String>, what: &str) -> bool {
        let listed = self.env.list();
        let listed_ids: BTreeSet<&String> = listed.iter().map(|(id, _)| id).collect();
        let mut changed = false;
        let known: Vec<String> = self.snaps.keys().cloned().collect();
        for id in known {
            if listed_ids.contains(&id) {
                continue;
            }
            assert!(
                may_delete.contains(&id),
                "seed {}, iteration {}: snapshot {id} vanished after {what} (committed before it; no rule deletes \
                 it)\nlisted: {listed:?}",
                self.seed,
                self.iteration
            );
            self.snaps.remove(&id);
            changed = true;
        }
        for (id, time) in &listed {
            if self.snaps.contains_key(id) {
                continue;
            }
            let m = pending.unwrap_or_else(|| {
                panic!("seed {}, iteration {}: unknown snapshot {id} appeared after {what}", self.seed, self.iteration)
            });
            self.snaps.insert(id.clone(), Snap { time: time.clone(), manifest: m.clone() });
            changed = true;
        }
        changed
    }

    /// The snapshots a prune with `keep_last` may delete: all but the newest.
    fn prunable(&self) -> BTreeSet<String> {
        let mut by_time: Vec<(&String, &Snap)> = self.snaps.iter().collect();
        by_time.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        let n = by_time.len().saturating_sub(KEEP_LAST);
        by_time.into_iter().take(n).map(|(id, _)| id.clone()).collect()
    }

    #[track_caller]
    fn restore_and_compare(&mut self, id: &str) {
        let m = self.snaps[id].manifest.clone();
        let diffs = self.env.restore_diff(id, &m);
        self.restores += 1;
        assert!(
            diffs.is_empty(),
            "seed {}, iteration {}: snapshot {id} does not restore byte for byte:\n{}",
            self.seed,
            self.iteration,
            diffs.join("\n")
        );
    }

    /// The next command after a kill: `check` must pass and must not be
    /// blocked by the dead process's lock.
    #[track_caller]
    fn check(&mut self, verify: bool, after: &str) {
        let args: &[&str] = if verify { &["check", "--verify-data"] } else { &["check"] };
        let run = self.env.run(args);
        assert!(
            run.code == 0,
            "seed {}, iteration {}: `vger {}` after {after} failed:\n{}",
            self.seed,
            self.iteration,
            args.join(" "),
            run.describe()
        );
        assert_not_locked(&run);
        if verify {
            self.verifies += 1;
        }
    }

    /// One iteration: change the source, run a command, kill it, verify.
    fn step(&mut self) {
        self.iteration += 1;
        let t0 = Instant::now();
        let op = Op::pick(&mut self.rng);
        // Change the source a little (make-corpus every fifth time, the same
        // kind of churn in Rust otherwise: Python start-up costs a second
        // under load); a drop of new data comes and goes.
        if self.iteration.rem_euclid(5) == 0 {
            crashkit::churn(&self.src, 3, self.churn_seed());
        } else {
            crashkit::quick_churn(&self.src, 3, &mut self.rng);
        }
        if self.drop.is_some() && self.rng.chance(0.5) {
            let _ = fs::remove_file(self.drop.take().unwrap());
        }
        let mut big = false;
        if op == Op::Backup && self.drop.is_none() && self.rng.chance(0.6) {
            self.add_drop();
            big = true;
        }
        let pending = (op == Op::Backup).then(|| Arc::new(manifest(&self.src)));
        let may_delete = if op == Op::Prune { self.prunable() } else { BTreeSet::new() };
        let segments_before = self.env.count("index");
        let newest_before = self.newest_manifest();

        // Kill somewhere in the command's typical run time: 30% anywhere
        // (opening the repository included), 70% after the repository is
        // open (for a backup with a drop: in its second half, where packs
        // and checkpoints are being stored).
        let typical = if big { self.typical_drop_backup } else { self.typical[&op] };
        let window = typical.mul_f64(1.05);
        let delay = if self.rng.chance(0.3) {
            window.mul_f64(self.rng.unit())
        } else {
            let from = if big { typical.mul_f64(0.5) } else { self.open.mul_f64(0.8) }.min(window);
            from + (window - from).mul_f64(self.rng.unit())
        };
        let mut args: Vec<&str> = op.args().to_vec();
        if big && self.rng.chance(0.75) {
            // `--checkpoint 1` stores a resume point only when a pack lands a
            // second or more after the last checkpoint: on a fast machine the
            // drop's first pack comes sooner. Most drops checkpoint every pack.
            args = vec!["--json", "backup", "--checkpoint", "0"];
        }
        let mut what =
            format!("`vger {}`{} killed after {delay:.2?}", args.join(" "), if big { " (with a drop)" } else { "" });
        let mut log = format!("iteration {} (source changed in {:.1?}):", self.iteration, t0.elapsed());
        let mut phase = Instant::now();
        let mut lap = |log: &mut String, name: &str| {
            log.push_str(&format!(" | {name} {:.1?}", phase.elapsed()));
            phase = Instant::now();
        };
        // Most drops are killed a random 0-30 ms after their first
        // checkpoint segment lands instead: on a local disk the segment of a
        // pack lands late (its fsync waits for the next pack's data), so
        // timed kills rarely fall between a checkpoint and the commit.
        let after_checkpoint = big && self.rng.chance(0.6);
        let outcome = if after_checkpoint {
            let extra = Duration::from_millis(self.rng.below(30));
            let index = self.env.repo.join("index");
            let mut seen: Option<Instant> = None;
            what = format!("`vger {}` (with a drop) killed {extra:.2?} after its first checkpoint", args.join(" "));
            run_until(self.env.cmd(&args), self.env.dir.path(), |_| {
                if seen.is_none() && objects_under(&index).len() > segments_before {
                    seen = Some(Instant::now());
                }
                seen.is_some_and(|t| t.elapsed() >= extra)
            })
        } else {
            run_with_kill(self.env.cmd(&args), delay, self.env.dir.path())
        };
        let killed = matches!(outcome, KillOutcome::Killed(_));
        log.push_str(&if killed { format!(" {what}") } else { format!(" {} completed before its kill", op.name()) });
        lap(&mut log, "ran");
        // The run times measured at setup drift with the machine's load
        // (the other tests of this binary run beside the campaign): follow
        // what the commands take now, so kills keep falling inside them.
        let typical = if big { &mut self.typical_drop_backup } else { self.typical.entry(op).or_default() };
        match &outcome {
            KillOutcome::Completed(run) => *typical = (*typical + run.elapsed) / 2,
            KillOutcome::Killed(_) if delay >= typical.mul_f64(0.9) => *typical = typical.mul_f64(1.1),
            KillOutcome::Killed(_) => {}
        }
        let tally = self.tally.entry(op).or_default();
        match &outcome {
            KillOutcome::Killed(_) => tally.kills += 1,
            KillOutcome::Completed(run) => {
                tally.completed += 1;
                assert!(
                    run.code == 0 && !run.stderr.contains("panicked"),
                    "seed {}, iteration {}: `{}` (not killed) failed:\n{}",
                    self.seed,
                    self.iteration,
                    op.name(),
                    run.describe()
                );
                assert_not_locked(run);
            }
        }

        // 1. The repository is consistent.
        let label = if killed { what.clone() } else { format!("{} (completed)", op.name()) };
        self.check(false, &label);
        lap(&mut log, "check");
        // 2. Committed snapshots are all there (or pruned by the rules).
        let changed = self.reconcile(pending.as_ref(), &may_delete, &label);
        if killed && changed {
            self.tally.get_mut(&op).unwrap().committed_before_kill += 1;
            log.push_str(" (had committed)");
        }
        lap(&mut log, "list");
        if op == Op::Backup && killed && !changed {
            // 3. The next backup succeeds and resumes from the checkpoint.
            let late = self.env.count("index") > segments_before;
            let m = pending.clone().unwrap();
            let (report, run) = self.env.backup(&["--checkpoint", "1"]);
            assert_not_locked(&run);
            self.record(&report, m.clone());
            let added = report["stats"]["added_bytes"].as_u64().unwrap();
            lap(
                &mut log,
                &format!("next backup (+{:.1} MiB{})", mib(added), if late { ", after a checkpoint" } else { "" }),
            );
            if late {
                self.tally.get_mut(&op).unwrap().late_kills += 1;
                let corpus = manifest_bytes(&m);
                let fresh = newest_before.as_ref().map(|b| fresh_bytes(b, &m)).unwrap_or(corpus);
                self.resumes.push((added, fresh));
                assert!(
                    added < corpus,
                    "seed {}, iteration {}: after {what} (a checkpoint was stored) the next backup added {added} \
                     bytes, not less than the corpus ({corpus}): it started from zero",
                    self.seed,
                    self.iteration
                );
                if fresh >= 8 << 20 {
                    assert!(
                        added < fresh,
                        "seed {}, iteration {}: after {what} (a checkpoint was stored) the next backup added {added} \
                         bytes, not less than what changed since the last snapshot ({fresh}): it did not reuse the \
                         uploaded data",
                        self.seed,
                        self.iteration
                    );
                }
            }
        }
        // Restore one snapshot at random.
        if !self.snaps.is_empty() {
            let ids: Vec<String> = self.snaps.keys().cloned().collect();
            let id = ids[self.rng.below(ids.len() as u64) as usize].clone();
            self.restore_and_compare(&id);
            lap(&mut log, "restore");
        }
        if self.iteration.rem_euclid(VERIFY_EVERY) == 0 {
            self.check(true, &label);
            lap(&mut log, "verify-data");
        }
        println!("{log} | total {:.1?}", t0.elapsed());
    }

    fn kills(&self) -> u64 {
        self.tally.values().map(|t| t.kills).sum()
    }

    fn summary(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "crash campaign: seed {}, {} kills survived in {} iterations, {:.1?}\n",
            self.seed,
            self.kills(),
            self.iteration,
            elapsed
        );
        s.push_str(&format!(
            "  {:<22} {:>6} {:>10} {:>12} {:>17}\n",
            "command", "kills", "completed", "late kills", "committed+killed"
        ));
        for op in Op::ALL {
            let t = self.tally.get(&op).copied().unwrap_or_default();
            s.push_str(&format!(
                "  {:<22} {:>6} {:>10} {:>12} {:>17}\n",
                op.name(),
                t.kills,
                t.completed,
                if op == Op::Backup { t.late_kills.to_string() } else { "-".into() },
                t.committed_before_kill
            ));
        }
        s.push_str(&format!(
            "  restores compared: {}, check --verify-data runs: {}, snapshots at the end: {}\n",
            self.restores,
            self.verifies,
            self.snaps.len()
        ));
        if !self.resumes.is_empty() {
            let list: Vec<String> =
                self.resumes.iter().map(|(a, f)| format!("{:.1}/{:.1}", mib(*a), mib(*f))).collect();
            s.push_str(&format!(
                "  resumed backups after a late kill, MiB added / MiB changed since the last snapshot: {}\n",
                list.join(", ")
            ));
        }
        s
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

#[track_caller]
fn assert_not_locked(run: &Run) {
    let all = run.all_lower();
    assert!(
        !all.contains("is locked") && !all.contains("locked by"),
        "a lock left by a killed process blocked the next command:\n{}",
        run.describe()
    );
}

fn campaign(kills: u64) {
    let seed = env_u64("VGER_KILL_SEED").unwrap_or(DEFAULT_SEED);
    println!(
        "crash campaign: VGER_KILL_SEED={seed} VGER_KILL_COUNT={kills} (reproduce with these; binary {})",
        crashkit::vger_bin()
    );
    let start = Instant::now();
    let mut c = Campaign::setup(seed);
    let max_iterations = kills * 4 + 20;
    while c.kills() < kills {
        assert!(
            c.iteration < max_iterations,
            "only {} kills in {} iterations: every command finished before its kill; {}",
            c.kills(),
            c.iteration,
            c.summary(start.elapsed())
        );
        c.step();
        if c.iteration.rem_euclid(10) == 0 {
            println!("  iteration {}: {} kills, {:.0?}", c.iteration, c.kills(), start.elapsed());
        }
    }
    // The end: the whole repository verified, every snapshot restored.
    c.check(true, "the last kill");
    let ids: Vec<String> = c.snaps.keys().cloned().collect();
    for id in &ids {
        c.restore_and_compare(id);
    }
    // The leftovers of killed commands go away, and nothing is lost doing it.
    c.env.run(["compact", "--grace", "0s"]).ok();
    let run = c.env.run(["check", "--verify-data"]).ok();
    assert!(!run.all_lower().contains("not in the index"), "compact left orphan packs: {}", run.describe());
    assert!(!c.reconcile(None, &BTreeSet::new(), "the final compact"), "the final compact changed the snapshots");
    let leftovers: Vec<PathBuf> = walk_all(&c.env.repo).into_iter().filter(|p| is_temp(p)).collect();
    println!("temporary files left in the repository by killed commands: {}", leftovers.len());
    println!("{}", c.summary(start.elapsed()));
}

fn is_temp(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
}

fn walk_all(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The seeded campaign with `VGER_KILL_COUNT` kills (default 30).
#[test]
fn kill_campaign() {
    campaign(env_u64("VGER_KILL_COUNT").unwrap_or(DEFAULT_KILLS));
}

/// The full campaign: 240 kills (`VGER_KILL_COUNT` may change that, never
/// below 200): `cargo test -p vger-cli --test crash --release -- --ignored crash_full`.
#[test]
#[ignore = "the full kill campaign (240 kills) takes a while; run with --ignored"]
fn crash_full() {
    campaign(env_u64("VGER_KILL_COUNT").unwrap_or(FULL_KILLS).max(200));
}

/// A fresh backup of 128 MiB of incompressible files is killed once about
/// half of it is stored and indexed by a checkpoint; the rerun must add at
/// most about 60% of the corpus. Prints both wall times.
#[test]
fn resume_after_kill_at_half() {
    let env = Env::new("vger-resume-");
    let src = env.path("src");
    const FILES: u64 = 8;
    const EACH: u64 = 16 << 20;
    let corpus = FILES * EACH;
    for i in 0..FILES {
        write_random_file(&src.join(format!("media/clip{i:02}.bin")), EACH, 1000 + i);
    }
    // The read-rate cap (16 MiB/s: about 8 s for the corpus) makes sure the
    // backup is still running at half, however fast the machine is.
    env.write_config(&[("data", &src)], "limits:\n  io_read_mib_per_sec: 16\n");
    env.init();
    let expected = manifest(&src);

    // Kill when half of the corpus is in packs and a checkpoint names them.
    let start = Instant::now();
    let mut child =
        env.cmd(["--json", "backup", "--checkpoint", "1"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let packs = env.repo.join("packs");
    // When half was reached and how many packs were stored then.
    let mut half: Option<(Instant, usize)> = None;
    let mut timeline: Vec<(Duration, usize, usize)> = Vec::new();
    let killed_at = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the backup finished ({status}) after {:.2?} before it could be killed at half; stored {} of {corpus}",
                start.elapsed(),
                bytes_under(&packs)
            );
        }
        let stored = bytes_under(&packs);
        let n_packs = objects_under(&packs).len();
        let segments = env.count("index");
        if timeline.last().map(|l| (l.1, l.2)) != Some((n_packs, segments)) {
            timeline.push((start.elapsed(), n_packs, segments));
        }
        if stored * 2 >= corpus && half.is_none() {
            half = Some((Instant::now(), n_packs));
        }
        // With `--checkpoint 0` a segment follows every stored pack (it lands
        // late: its fsync waits for the pack data written meanwhile): kill
        // once half the corpus is stored and segments for half of the packs
        // it makes (4 of 32 MiB) have landed.
        if let Some((t, _)) = half {
            if segments * 2 >= (corpus >> 25) as usize || t.elapsed() > Duration::from_secs(5) {
                child.kill().unwrap();
                child.wait().unwrap();
                break (start.elapsed(), stored, segments, n_packs);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let (killed_after, stored_at_kill, segments, packs_at_kill) = killed_at;
    let timeline: Vec<String> =
        timeline.iter().map(|(t, p, s)| format!("{:.2}s: {p} packs, {s} segments", t.as_secs_f64())).collect();
    println!("resume_after_kill_at_half: timeline of the killed backup: {}", timeline.join("; "));
    assert!(env.list().is_empty(), "the killed backup must not have committed");
    // The rerun: no lock in the way, reuses the stored packs.
    let (report, rerun) = env.backup(&["--checkpoint", "1"]);
    assert_not_locked(&rerun);
    let added = report["stats"]["added_bytes"].as_u64().unwrap();
    // For scale: the same backup, uninterrupted, into a new repository.
    let reference = Env::new("vger-resume-ref-");
    reference.write_config(&[("data", &src)], "");
    reference.init();
    let (_, full) = reference.backup(&["--checkpoint", "0"]);
    println!(
        "resume_after_kill_at_half: killed after {killed_after:.2?} with {:.1} MiB in {packs_at_kill} packs and \
         {segments} index segments; rerun took {:.2?} (an uninterrupted backup: {:.2?}) and added {:.1} MiB of \
         {:.1} MiB ({:.0}%)",
        mib(stored_at_kill),
        rerun.elapsed,
        full.elapsed,
        mib(added),
        mib(corpus),
        added as f64 * 100.0 / corpus as f64
    );
    assert!(
        added * 10 <= corpus * 6,
        "the rerun added {added} bytes of {corpus}: more than 60%, it did not resume from the checkpoint"
    );
    env.run(["check", "--verify-data"]).ok();
    let id = report["id"].as_str().unwrap();
    let diffs = env.restore_diff(id, &expected);
    assert!(diffs.is_empty(), "{diffs:?}");
}

// ---------------------------------------------------------------- full disk

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir: dir.to_path_buf() })
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The repository on a 24 MiB tmpfs; a backup of 40 MiB more fails with one
/// clear line about the space, nothing committed is damaged, and once there
/// is space again backups succeed.
#[test]
fn full_disk() {
    let scratch = tempfile::Builder::new().prefix("vger-fulldisk-").tempdir().unwrap();
    let mnt = scratch.path().join("mnt");
    let fsys = match Tmpfs::mount(&mnt, "24m") {
        Ok(m) => m,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "cannot mount a tmpfs for the full-disk test (CI is set): {e}");
            println!("SKIPPED full_disk: cannot mount a tmpfs ({e}); run as root to test a full disk");
            return;
        }
    };
    let env = Env::with_repo("vger-fulldisk-", mnt.join("repo"));
    let src = env.path("src");
    write_random_file(&src.join("small/a.bin"), 3 << 20, 1);
    fs::write(src.join("small/notes.txt"), "a small file\n".repeat(100)).unwrap();
    env.write_config(&[("data", &src)], "");
    env.init();
    let (first, _) = env.backup(&[]);
    let first_id = first["id"].as_str().unwrap().to_string();
    let first_manifest = manifest(&src);

    // More than fits.
    write_random_file(&src.join("big/b.bin"), 40 << 20, 2);
    let run = env.run(["backup", "--checkpoint", "1"]).code(1);
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", run.describe());
    let lower = lines[0].to_lowercase();
    assert!(lower.contains("space") || lower.contains("disk"), "the error does not say the disk is full: {}", lines[0]);
    println!("full disk: backup exit {} after {:.2?}: {}", run.code, run.elapsed, lines[0]);
    assert_eq!(env.list().len(), 1, "the failed backup must not commit");

    // What is committed is intact, and reading works on a full disk.
    env.run(["check", "--verify-data"]).ok();
    assert!(env.restore_diff(&first_id, &first_manifest).is_empty());

    // Free space by removing the big file: the next backup succeeds.
    fs::remove_file(src.join("big/b.bin")).unwrap();
    let (second, _) = env.backup(&[]);
    let second_manifest = manifest(&src);
    // More space: the big file backs up too.
    fsys.resize("128m");
    write_random_file(&src.join("big/b.bin"), 40 << 20, 2);
    let (third, _) = env.backup(&[]);
    let third_manifest = manifest(&src);
    env.run(["check", "--verify-data"]).ok();
    for (report, m) in [(&first, &first_manifest), (&second, &second_manifest), (&third, &third_manifest)] {
        let diffs = env.restore_diff(report["id"].as_str().unwrap(), m);
        assert!(diffs.is_empty(), "{diffs:?}");
    }
    drop(env);
    drop(fsys);
}

// ---------------------------------------------------------------- I/O errors

/// Three snapshots: `a/` in the first pack, `b/` in the second, then a small
/// change so that the latest snapshot's file tree is not in b's pack.
/// Returns the env, the latest snapshot's manifest and b's pack.
fn three_packs(prefix: &str) -> (Env, Manifest, PathBuf) {
    let env = Env::new(prefix);
    let src = env.path("src");
    write_random_file(&src.join("a/a.bin"), 3 << 20, 11);
    fs::write(src.join("a/a.txt"), "alpha\n".repeat(1000)).unwrap();
    env.write_config(&[("data", &src)], "");
    env.init();
    env.backup(&[]);
    let before: BTreeSet<PathBuf> = objects_under(&env.repo.join("packs")).into_iter().collect();
    write_random_file(&src.join("b/b.bin"), 3 << 20, 12);
    env.backup(&[]);
    let after: BTreeSet<PathBuf> = objects_under(&env.repo.join("packs")).into_iter().collect();
    // The second backup writes b's data pack and a small pack of tree
    // objects (trees and data never share a pack).
    let new: Vec<&PathBuf> = after.difference(&before).collect();
    let big: Vec<&PathBuf> = new.iter().copied().filter(|p| fs::metadata(p).unwrap().len() > 1 << 20).collect();
    assert_eq!(big.len(), 1, "the second backup writes one data pack: {new:?}");
    let b_pack = big[0].clone();
    fs::write(src.join("c.txt"), "late\n").unwrap();
    env.backup(&[]);
    let m = manifest(&src);
    (env, m, b_pack)
}

/// A read error from the storage layer while restoring: b's pack is a
/// directory of the same name (EISDIR). Restore fails clearly, naming the
/// one affected file; the others are restored byte for byte.
#[test]
fn restore_read_error_pack_is_a_directory() {
    let (env, m, b_pack) = three_packs("vger-ioerr-");
    fs::remove_file(&b_pack).unwrap();
    fs::create_dir(&b_pack).unwrap();
    let dest = env.path("dest");
    let run = env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).code(1);
    assert!(run.stderr.contains("b/b.bin") || run.stderr.contains("b.bin"), "{}", run.describe());
    for other in ["a/a.bin", "a/a.txt", "c.txt"] {
        assert!(!run.stderr.contains(other), "{other} is not affected: {}", run.describe());
    }
    let got = manifest(&dest);
    let unaffected = sub_manifest(&m, &["a", "c.txt"]);
    let got_unaffected = sub_manifest(&got, &["a", "c.txt"]);
    assert!(
        diff_manifests(&unaffected, &got_unaffected).is_empty(),
        "{:?}",
        diff_manifests(&unaffected, &got_unaffected)
    );
    assert!(!dest.join("b/b.bin").exists(), "a half-restored b.bin was left behind");
    println!("pack replaced by a directory: restore exit 1: {}", run.first_error());
    // check names the pack; the unaffected paths restore on their own.
    let check = env.run(["check"]).code(1);
    println!("pack replaced by a directory: check exit 1: {}", check.stdout.lines().next().unwrap_or_default());
    let dest2 = env.path("dest2");
    env.run(["restore".as_ref(), "latest".as_ref(), dest2.as_os_str(), "a".as_ref(), "c.txt".as_ref()]).ok();
    assert!(diff_manifests(&unaffected, &manifest(&dest2)).is_empty());
}

/// The same with b's pack cut short: restore fails for b only.
#[test]
fn restore_read_error_truncated_pack() {
    let (env, m, b_pack) = three_packs("vger-ioerr-");
    crashkit::truncate(&b_pack, crashkit::file_len(&b_pack) / 3);
    let dest = env.path("dest");
    let run = env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).code(1);
    assert!(run.stderr.contains("b.bin"), "{}", run.describe());
    assert!(!run.stderr.contains("a.bin") && !run.stderr.contains("c.txt"), "{}", run.describe());
    let unaffected = sub_manifest(&m, &["a", "c.txt"]);
    let got = sub_manifest(&manifest(&dest), &["a", "c.txt"]);
    assert!(diff_manifests(&unaffected, &got).is_empty());
    assert!(!dest.join("b/b.bin").exists(), "a half-restored b.bin was left behind");
}
