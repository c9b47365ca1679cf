//! `vger compact` and `vger check` use the server's pack work: compaction
//! sends a plan and downloads no pack data (the server's request log and
//! `/metrics` say how many bytes it sent), and the repository then passes
//! `check --verify-data` and restores byte for byte; `check` finds a pack
//! damaged on the server's disk whether or not it trusts the server.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{config, ok, text, vger, vger_bin};
use common::*;
use vger_storage::testsuite::pattern;
use vger_storage::Storage;

const MIB: u64 = 1 << 20;

fn json_server() -> Server {
    Server::start_with(Options {
        tokens: Some(default_tokens()),
        args: vec!["--log-format".into(), "json".into()],
        ..Options::default()
    })
}

/// The request log lines after the first `from`.
fn requests(server: &Server, from: usize) -> Vec<serde_json::Value> {
    let lines = server.log.lock().unwrap().clone();
    lines
        .iter()
        .skip(from)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["msg"] == "request")
        .collect()
}

/// Whether a request `method path` was logged after the first `from` lines.
fn logged(server: &Server, from: usize, method: &str, path: &str) -> bool {
    requests(server, from).iter().any(|v| v["method"] == method && v["path"] == path)
}

/// Bytes the server sent in bodies of GETs of pack objects after the
/// first `from` log lines.
fn pack_bytes_sent(server: &Server, from: usize) -> u64 {
    requests(server, from)
        .iter()
        .filter(|v| v["method"] == "GET" && v["path"].as_str().unwrap_or_default().starts_with("/laptop/packs/"))
        .map(|v| v["bytes_out"].as_u64().unwrap())
        .sum()
}

fn log_len(server: &Server) -> usize {
    server.log.lock().unwrap().len()
}

/// `vger_server_sent_bytes_total` of repository `laptop`.
fn metric_sent_bytes(server: &Server) -> u64 {
    let metrics = server.raw("GET", "/metrics", Some(FULL), &[], b"").text();
    let line = metrics.lines().find(|l| l.starts_with("vger_server_sent_bytes_total{repo=\"laptop\"}")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A server (logging JSON) and a repository on it.
struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
    bin: PathBuf,
    cfg: PathBuf,
    src: PathBuf,
}

/// A repository whose first snapshot (keep.bin and drop.bin, 6 MiB of
/// incompressible data each) was deleted after a second snapshot without
/// drop.bin: half of its big pack is garbage. `None`: no `vger` binary.
fn half_garbage() -> Option<Fixture> {
    let bin = vger_bin()?;
    let server = json_server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("keep.bin"), pattern(1, 6 * MIB as usize)).unwrap();
    std::fs::write(src.join("drop.bin"), pattern(2, 6 * MIB as usize)).unwrap();
    let cfg = config(dir.path(), &server.addr, FULL, &src);
    ok(vger(&bin, &cfg, &["init"]));
    ok(vger(&bin, &cfg, &["backup"]));
    std::fs::remove_file(src.join("drop.bin")).unwrap();
    ok(vger(&bin, &cfg, &["backup"]));
    let out = ok(vger(&bin, &cfg, &["--json", "list"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = list.as_array().unwrap().iter().min_by_key(|s| s["time"].as_str().unwrap().to_owned()).unwrap();
    ok(vger(&bin, &cfg, &["snapshot", "delete", first["id"].as_str().unwrap()]));
    Some(Fixture { server, dir, bin, cfg, src })
}

fn compact_report(bin: &Path, cfg: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "compact", "--grace", "0s"];
    args.extend_from_slice(extra);
    let out = ok(vger(bin, cfg, &args));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["report"].clone()
}

#[test]
fn compact_repacks_on_the_server_without_downloading_packs() {
    let Some(Fixture { server, dir, bin, cfg, src }) = half_garbage() else { return };
    let packs_before: Vec<String> = server.files().into_iter().filter(|f| f.starts_with("laptop/packs/")).collect();

    let (log_from, sent_from) = (log_len(&server), metric_sent_bytes(&server));
    let report = compact_report(&bin, &cfg, &[]);
    let (pack_bytes, sent) = (pack_bytes_sent(&server, log_from), metric_sent_bytes(&server) - sent_from);
    // The big pack, into one new pack. The second backup's small tree pack
    // holds only live chunks: nothing to gain, so it is left alone.
    assert_eq!((&report["packs_repacked"], &report["packs_written"]), (&1.into(), &1.into()), "{report}");
    let written = report["bytes_written"].as_u64().unwrap();
    assert!(written > 6 * MIB && written < 7 * MIB, "the live 6 MiB were copied: {report}");
    eprintln!(
        "compact on the server: {written} bytes repacked, {pack_bytes} bytes of packs and {sent} bytes in all sent"
    );
    // What the client read of packs: tree chunks and the new pack's trailer.
    assert!(pack_bytes < 256 << 10, "compact downloaded {pack_bytes} bytes of packs");
    assert!(sent < MIB, "the server sent {sent} bytes during compact");
    assert!(logged(&server, log_from, "POST", "/laptop/?repack"), "no repack request in\n{}", server.log_text());
    let packs_after: Vec<String> = server.files().into_iter().filter(|f| f.starts_with("laptop/packs/")).collect();
    // Before: the first backup's data pack and tree pack, the second
    // backup's tree pack. The first tree pack was all garbage (deleted),
    // the big pack went into a new one, the second tree pack stays.
    assert_eq!((packs_before.len(), packs_after.len()), (3, 2), "{packs_before:?} {packs_after:?}");
    assert_eq!(packs_after.iter().filter(|p| !packs_before.contains(p)).count(), 1, "{packs_after:?}");

    let out = ok(vger(&bin, &cfg, &["check", "--verify-data"]));
    assert!(text(&out).contains("no problems found"), "{}", text(&out));
    let dest = dir.path().join("out");
    ok(vger(&bin, &cfg, &["restore", "latest", dest.to_str().unwrap()]));
    assert_eq!(std::fs::read(dest.join("keep.bin")).unwrap(), std::fs::read(src.join("keep.bin")).unwrap());
    assert!(!dest.join("drop.bin").exists());
    // Nothing left to do.
    assert_eq!(compact_report(&bin, &cfg, &[])["packs_repacked"], 0);
}

/// The same repository compacted with `--distrust-server`: the client
/// downloads the pack (so the measurement above can fail).
#[test]
fn compact_distrusting_the_server_downloads_the_pack() {
    let Some(Fixture { server, bin, cfg, dir: _dir, .. }) = half_garbage() else { return };
    let log_from = log_len(&server);
    let report = compact_report(&bin, &cfg, &["--distrust-server"]);
    assert_eq!(report["packs_written"], 1, "{report}");
    let pack_bytes = pack_bytes_sent(&server, log_from);
    eprintln!("compact --distrust-server: {pack_bytes} bytes of packs sent");
    assert!(pack_bytes > 12 * MIB);
    assert!(!logged(&server, log_from, "POST", "/laptop/?repack"));
    ok(vger(&bin, &cfg, &["check", "--verify-data"]));
}

#[test]
fn check_finds_a_pack_damaged_on_the_server_with_and_without_trusting_it() {
    let Some(bin) = vger_bin() else { return };
    let server = json_server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.bin"), pattern(3, 3 * MIB as usize)).unwrap();
    // Checking takes a shared lock, which an append token may write.
    let cfg = config(dir.path(), &server.addr, APPEND, &src);
    let full = config(dir.path(), &server.addr, FULL, &src);
    ok(vger(&bin, &full, &["init"]));
    ok(vger(&bin, &full, &["backup"]));

    // Intact: both ways pass; only the distrusting one downloads packs.
    let from = log_len(&server);
    let out = ok(vger(&bin, &cfg, &["check"]));
    assert!(text(&out).contains("packs verified by the server"), "{}", text(&out));
    assert!(pack_bytes_sent(&server, from) < 256 << 10);
    assert!(logged(&server, from, "POST", "/laptop/?verify-packs"));
    let from = log_len(&server);
    ok(vger(&bin, &cfg, &["check", "--distrust-server"]));
    assert!(pack_bytes_sent(&server, from) > 3 * MIB);

    // One bit flipped in the middle of the biggest pack; its size is unchanged.
    let pack = server
        .files()
        .into_iter()
        .filter(|f| f.starts_with("laptop/packs/"))
        .map(|f| server.data_dir().join(f))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&pack, &bytes).unwrap();
    let id = pack.file_name().unwrap().to_str().unwrap()[..8].to_owned();

    let trusted = vger(&bin, &cfg, &["check"]);
    assert!(!trusted.status.success(), "check missed the damaged pack:\n{}", text(&trusted));
    let said = text(&trusted);
    assert!(said.contains(&format!("pack {id}")) && said.contains("the server reports"), "{said}");

    let distrusted = vger(&bin, &cfg, &["check", "--distrust-server"]);
    assert!(!distrusted.status.success(), "check --distrust-server missed it:\n{}", text(&distrusted));
    let said = text(&distrusted);
    assert!(said.contains(&format!("pack {id}")) && !said.contains("the server reports"), "{said}");

    let verified = vger(&bin, &cfg, &["check", "--verify-data"]);
    assert!(!verified.status.success(), "{}", text(&verified));
}

/// `vger compact` killed (SIGKILL) at each step of its commit, seen in
/// the server's request log: while the server repacks, after the new pack
/// is stored, after the merged index segment, after the first old pack
/// and the first old segment are deleted. Every time the repository still
/// passes `check` and `check --verify-data`, restores byte for byte, and a
/// later compact finishes the job without leaving orphans.
#[test]
fn compact_killed_at_each_step_leaves_a_repository_that_checks() {
    let Some(Fixture { server, dir, bin, cfg, src }) = half_garbage() else { return };
    let repo = server.data_dir().join("laptop");
    let pristine = dir.path().join("pristine");
    copy_dir(&repo, &pristine);
    let steps = [
        ("POST", "/laptop/?verify-packs"),
        ("POST", "/laptop/?repack"),
        ("PUT", "/laptop/index/"),
        ("DELETE", "/laptop/packs/"),
        ("DELETE", "/laptop/index/"),
    ];
    for (method, path) in steps {
        std::fs::remove_dir_all(&repo).unwrap();
        copy_dir(&pristine, &repo);
        let from = log_len(&server);
        let mut child = std::process::Command::new(&bin)
            .arg("--config")
            .arg(&cfg)
            .args(["compact", "--grace", "0s"])
            .env("VGER_PASSPHRASE", "correct horse battery staple")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let seen = |v: &serde_json::Value| v["method"] == method && v["path"].as_str().unwrap().starts_with(path);
        while !requests(&server, from).iter().any(seen) {
            assert!(child.try_wait().unwrap().is_none(), "compact ended before {method} {path}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let after = format!("killed after {method} {path}");
        let out = vger(&bin, &cfg, &["check"]);
        assert!(out.status.success(), "{after}: {}", text(&out));
        let out = vger(&bin, &cfg, &["check", "--verify-data"]);
        assert!(out.status.success(), "{after}: {}", text(&out));
        let dest = dir.path().join(format!("out-{}", log_len(&server)));
        ok(vger(&bin, &cfg, &["restore", "latest", dest.to_str().unwrap()]));
        assert_eq!(std::fs::read(dest.join("keep.bin")).unwrap(), std::fs::read(src.join("keep.bin")).unwrap());
        compact_report(&bin, &cfg, &[]);
        let out = ok(vger(&bin, &cfg, &["check"]));
        assert!(!text(&out).contains("not in the index"), "{after}: compact left orphans: {}", text(&out));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for file in all_files(from) {
        let dest = to.join(&file);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&file), dest).unwrap();
    }
}

/// `vger compact` (full token) started, then paused (SIGSTOP) once it
/// holds its exclusive lock and has asked the server to verify packs.
fn paused_compact(bin: &Path, cfg: &Path, server: &Server) -> std::process::Child {
    let from = log_len(server);
    let child = std::process::Command::new(bin)
        .arg("--config")
        .arg(cfg)
        .args(["compact", "--grace", "0s"])
        .env("VGER_PASSPHRASE", "correct horse battery staple")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !logged(server, from, "POST", "/laptop/?verify-packs") {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    signal(&child, libc::SIGSTOP);
    child
}

fn signal(child: &std::process::Child, signal: libc::c_int) {
    // SAFETY: kill(2) with our own child's pid and a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// The one lock in the repository: the paused compact's.
fn the_lock(server: &Server) -> String {
    let locks = server.client("laptop", READ).list("locks/").unwrap();
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0].writer.as_deref(), Some("full"), "the server recorded who took the lock");
    locks[0].key.clone()
}

/// After the attempt on the lock: every snapshot restores byte for byte
/// and the repository passes `check --verify-data`.
fn nothing_lost(bin: &Path, cfg: &Path, src: &Path, dir: &Path) {
    ok(vger(bin, cfg, &["check", "--verify-data"]));
    let out = ok(vger(bin, cfg, &["--json", "list"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for snapshot in list.as_array().unwrap() {
        let id = snapshot["id"].as_str().unwrap();
        let dest = dir.join(format!("restore-{id}"));
        ok(vger(bin, cfg, &["restore", id, dest.to_str().unwrap()]));
        assert_eq!(std::fs::read(dest.join("keep.bin")).unwrap(), std::fs::read(src.join("keep.bin")).unwrap());
    }
}

/// A thief's append token tries to remove the exclusive lock of a running
/// compact: refused (the lock belongs to the token that wrote it), and
/// compact finishes with nothing lost.
#[test]
fn an_append_token_cannot_remove_the_lock_of_a_running_compact() {
    let Some(Fixture { server, dir, bin, cfg, src }) = half_garbage() else { return };
    let compact = paused_compact(&bin, &cfg, &server);
    let lock = the_lock(&server);
    let reply = server.raw("DELETE", &format!("/laptop/{lock}"), Some(APPEND), &[], b"");
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("token `full`"), "{}", reply.text());
    let reply = server.put("laptop", &lock, APPEND, b"a forged lock", &[]);
    assert_eq!(reply.status, 403, "{}", reply.text());
    signal(&compact, libc::SIGCONT);
    let out = compact.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    nothing_lost(&bin, &cfg, &src, dir.path());
}

/// Another full client removes the exclusive lock of a running compact
/// (`break-lock` on a second machine) and backs up while compact is
/// paused. Compact notices at its next step that its lock is gone and
/// stops before deleting anything; the new backup and every older
/// snapshot restore, and a later compact finishes the job.
#[test]
fn a_compact_whose_lock_is_broken_stops_and_loses_nothing() {
    let Some(Fixture { server, dir, bin, cfg, src }) = half_garbage() else { return };
    let compact = paused_compact(&bin, &cfg, &server);
    let lock = the_lock(&server);
    let reply = server.raw("DELETE", &format!("/laptop/{lock}"), Some(ADMIN), &[], b"");
    assert_eq!(reply.status, 204, "{}", reply.text());
    std::fs::write(src.join("new.bin"), pattern(3, 3 * MIB as usize)).unwrap();
    let laptop = config(dir.path(), &server.addr, APPEND, &src);
    ok(vger(&bin, &laptop, &["backup"]));
    signal(&compact, libc::SIGCONT);
    let out = compact.wait_with_output().unwrap();
    assert!(!out.status.success(), "compact went on without its lock: {}", text(&out));
    assert!(text(&out).contains("lock was removed"), "{}", text(&out));
    nothing_lost(&bin, &cfg, &src, dir.path());
    let dest = dir.path().join("latest");
    ok(vger(&bin, &cfg, &["restore", "latest", dest.to_str().unwrap()]));
    assert_eq!(std::fs::read(dest.join("new.bin")).unwrap(), pattern(3, 3 * MIB as usize));
    compact_report(&bin, &cfg, &[]);
    nothing_lost(&bin, &cfg, &src, dir.path());
}
