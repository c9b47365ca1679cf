//! Command dumps with real programs: a PostgreSQL database dumped with
//! `pg_dump`, restored into a fresh database and compared; and a command
//! printing 5 GiB, streamed with bounded memory.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn initdb() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/initdb"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn psql(socket: &Path, port: &str, db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            socket.to_str().unwrap(),
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            db,
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A PostgreSQL server in a temporary directory, stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    port: String,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

fn start_postgres() -> Option<Postgres> {
    let Some(initdb) = initdb() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but PostgreSQL is not installed (.ci/run installs the postgresql package)");
        }
        eprintln!("note: skipping the PostgreSQL dump test: no /usr/lib/postgresql/*/bin/initdb");
        return None;
    };
    let bin = initdb.parent().unwrap().to_path_buf();
    let dir = tempfile::Builder::new().prefix("vger-pg-").tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("sock");
    fs::create_dir(&socket).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o777)).unwrap();
    as_postgres(&initdb, &["-D", data.to_str().unwrap(), "--auth=trust", "-U", "postgres"]);
    let port = (20000 + std::process::id() % 20000).to_string();
    let opts = format!("-p {port} -k {} -c listen_addresses=''", socket.display());
    as_postgres(
        &bin.join("pg_ctl"),
        &["-D", data.to_str().unwrap(), "-o", &opts, "-w", "-l", dir.path().join("log").to_str().unwrap(), "start"],
    );
    Some(Postgres { bin, data, socket, port, _dir: dir })
}

#[test]
fn postgres_dump_round_trip() {
    let Some(pg) = start_postgres() else { return };
    let sock = pg.socket.clone();
    psql(&sock, &pg.port, "postgres", "CREATE DATABASE shop");
    psql(
        &sock,
        &pg.port,
        "shop",
        "CREATE TABLE orders(id serial primary key, customer text, amount numeric(12,2)); \
         INSERT INTO orders(customer, amount) SELECT 'customer ' || g, (g * 7 % 1000) / 3.0 FROM generate_series(1, 50000) g;",
    );
    let query = "SELECT count(*), sum(amount), md5(string_agg(customer, ',' ORDER BY id)) FROM orders";
    let expected = psql(&sock, &pg.port, "shop", query);

    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("note.txt"), b"database backup\n").unwrap();
    env.write_config(&format!(
        "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: db\n    path: \"{}\"\n    command_dumps:\n      - name: shop.sql\n        command: \"pg_dump -h {} -p {} -U postgres shop\"\n",
        env.repo().display(),
        src.display(),
        sock.display(),
        pg.port
    ));
    env.init();
    env.run(["backup"]).ok();
    // The database changes after the backup; the restored dump has the old state.
    psql(&sock, &pg.port, "shop", "DELETE FROM orders WHERE id % 2 = 0");
    let dest = env.path("out");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
    let dump = dest.join("vger-dumps/shop.sql");
    assert!(fs::metadata(&dump).unwrap().len() > 100_000);
    psql(&sock, &pg.port, "postgres", "CREATE DATABASE shop_restored");
    let out = Command::new("psql")
        .args([
            "-h",
            sock.to_str().unwrap(),
            "-p",
            &pg.port,
            "-U",
            "postgres",
            "-d",
            "shop_restored",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
        ])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "restoring the dump failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(psql(&sock, &pg.port, "shop_restored", query), expected);
}

#[test]
fn a_five_gib_dump_streams_with_bounded_memory() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    env.write_config(&format!(
        "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: big\n    path: \"{}\"\n    command_dumps:\n      - name: big.txt\n        command: \"yes 'a line of a very large dump that compresses well' | head -c 5368709120\"\n",
        env.repo().display(),
        src.display()
    ));
    env.init();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(vger_bin())
        .arg("--config")
        .arg(env.config())
        .args(["--json", "backup"])
        .env("VGER_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let peak_kib: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["stats"]["bytes"], 5u64 << 30);
    assert!(peak_kib < 400 * 1024, "backing up a 5 GiB dump peaked at {} MiB", peak_kib / 1024);
}

/// A source of command dumps alone (label + `command_dumps`, no path) next
/// to a file source: its snapshot holds `vger-dumps/NAME` only, `vger list
/// --source` shows it, and a restore gives back the command's bytes.
#[test]
fn a_source_of_dumps_alone_next_to_a_file_source() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("note.txt"), b"a file source\n").unwrap();
    env.write_config(&format!(
        "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: files\n    path: \"{}\"\n  - label: db\n    command_dumps:\n      - name: db.sql\n        command: \"seq 1 200000\"\n",
        env.repo().display(),
        src.display()
    ));
    env.init();
    let run = env.run(["--json", "--progress", "backup"]).ok();
    let backups = run.json();
    // --json --progress: the last line of each source says how many new bytes it stored.
    let done: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["type"] == "progress" && l["done"] == true)
        .collect();
    assert_eq!(done.len(), 2, "{}", run.stderr);
    assert_eq!(done[1]["source"], "db");
    assert_eq!(done[1]["new_bytes"], backups[1]["stats"]["added_bytes"], "{}", run.stderr);
    assert!(done[1]["new_bytes"].as_u64().unwrap() > 1_000_000, "{}", run.stderr);
    let labels: Vec<&str> = backups.as_array().unwrap().iter().map(|b| b["source_label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["files", "db"]);
    let expected: Vec<u8> = (1..=200000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    assert_eq!(backups[1]["stats"]["bytes"], expected.len() as u64);
    assert_eq!(backups[1]["stats"]["files"], 1);

    let listed = env.run(["--json", "list", "--source", "db"]).ok().json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["source_label"], "db");
    assert_eq!(listed[0]["paths"], serde_json::json!([]));
    let text = env.run(["list", "--source", "db"]).ok();
    let short = listed[0]["short_id"].as_str().unwrap();
    let rows: Vec<&str> = text.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", text.stdout);
    assert!(rows[0].starts_with(short) && rows[0].contains(" db "), "{}", text.stdout);

    let dest = env.path("out");
    let id = listed[0]["id"].as_str().unwrap();
    env.run(["restore".as_ref(), id.as_ref(), dest.as_os_str()]).ok();
    assert_eq!(fs::read(dest.join("vger-dumps/db.sql")).unwrap(), expected);
    let restored: Vec<PathBuf> = files_under(&dest);
    assert_eq!(restored, [dest.join("vger-dumps/db.sql")], "only the dump is in the snapshot");

    // The file source's snapshot has no dumps.
    let files = env.run(["--json", "list", "--source", "files"]).ok().json();
    let files_dest = env.path("files-out");
    let files_id = files[0]["id"].as_str().unwrap();
    env.run(["restore".as_ref(), files_id.as_ref(), files_dest.as_os_str()]).ok();
    assert_eq!(files_under(&files_dest), [files_dest.join("note.txt")]);

    // A second run dumps again: a new snapshot whose data is all deduplicated
    // (only its small tree chunk is new).
    let again = env.run(["--json", "backup", "--source", "db"]).ok().json();
    assert!(again[0]["stats"]["added_bytes"].as_u64().unwrap() < 4096, "{again}");
}
