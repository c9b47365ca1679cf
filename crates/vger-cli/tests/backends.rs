//! One lifecycle suite, run unchanged against a local repository, S3 (the
//! server started by scripts/servers/s3-start), SFTP (OpenSSH sshd from
//! scripts/servers/sftp-start) and vger-server (a process started here):
//! init, backup, list, restore, a second client backing up in parallel,
//! prune, compact, check --verify-data. Under CI a missing server fails
//! the test instead of skipping it.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
#[path = "common/vger_server.rs"]
mod vger_server;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use vger_server::VgerServer;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// A `vger-server` process serving a temporary data dir with one `full`
/// token from `VGER_SERVER_TOKEN`; killed on drop.
const SERVER_TOKEN: &str = "lifecycle-token-0123456789abcdef";

/// The repository section for a backend, or None to skip (outside CI);
/// for `rest`, also the server, which must outlive the test.
fn repository_yaml(backend: &str, env: &TestEnv) -> Option<(String, Option<VgerServer>)> {
    let missing = |what: &str| -> Option<(String, Option<VgerServer>)> {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but the {backend} test server is not ({what} unset): scripts/test starts it");
        }
        eprintln!(
            "note: skipping the {backend} lifecycle: {what} not set (run scripts/test, which starts the servers)"
        );
        None
    };
    let mut server = None;
    let yaml = match backend {
        "local" => format!("  - label: repo\n    url: \"{}\"\n", env.repo().display()),
        "s3" => {
            let Some(endpoint) = var("VGER_TEST_S3_ENDPOINT") else { return missing("VGER_TEST_S3_ENDPOINT") };
            let host = endpoint.trim_start_matches("http://");
            format!(
                "  - label: repo\n    url: \"s3+http://{host}/{}/{}\"\n    access_key_id: \"{}\"\n    secret_access_key: \"{}\"\n    allow_insecure_http: true\n",
                var("VGER_TEST_S3_BUCKET").unwrap_or_else(|| "vger-test".into()),
                unique("lifecycle"),
                var("VGER_TEST_S3_ACCESS_KEY").unwrap_or_default(),
                var("VGER_TEST_S3_SECRET_KEY").unwrap_or_default(),
            )
        }
        "sftp" => {
            let Some(url) = var("VGER_TEST_SFTP_URL") else { return missing("VGER_TEST_SFTP_URL") };
            format!(
                "  - label: repo\n    url: \"{}/{}\"\n    sftp_key: \"{}\"\n    sftp_known_hosts: \"{}\"\n",
                url.trim_end_matches('/'),
                unique("lifecycle"),
                var("VGER_TEST_SFTP_KEY").unwrap_or_default(),
                var("VGER_TEST_SFTP_KNOWN_HOSTS").unwrap_or_default(),
            )
        }
        "rest" => {
            let Some(binary) = VgerServer::binary_beside(Path::new(vger_bin())) else {
                return missing("the vger-server binary (built by `cargo test --workspace`)");
            };
            let started = VgerServer::start(&binary, &env.path("server-data"), SERVER_TOKEN);
            let yaml = format!(
                "  - label: repo\n    url: \"http://{}/lifecycle\"\n    access_token: \"{SERVER_TOKEN}\"\n    allow_insecure_http: true\n",
                started.addr
            );
            server = Some(started);
            yaml
        }
        other => panic!("unknown backend {other}"),
    };
    Some((yaml, server))
}

fn lifecycle(backend: &str) {
    let env = TestEnv::new();
    let Some((repo, _server)) = repository_yaml(backend, &env) else { return };
    let a = env.path("a");
    let b = env.path("b");
    fs::create_dir_all(a.join("sub")).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(a.join("sub/big.bin"), random_bytes(5 << 20, 1)).unwrap();
    fs::write(a.join("small.txt"), b"hello\n").unwrap();
    fs::write(b.join("other.bin"), random_bytes(3 << 20, 2)).unwrap();
    env.write_config(&format!(
        "repositories:\n{repo}sources:\n  - label: a\n    path: \"{}\"\n  - label: b\n    path: \"{}\"\nretention:\n  keep_last: 1\n",
        a.display(),
        b.display()
    ));
    env.init();
    env.run(["backup", "--source", "a"]).ok();
    fs::write(a.join("small.txt"), b"changed\n").unwrap();
    // Two clients at once: two processes backing up different sources.
    let spawn = |label: &str| {
        let mut cmd = Command::new(vger_bin());
        cmd.arg("--config").arg(env.config()).args(["backup", "--source", label]);
        cmd.env("VGER_PASSPHRASE", "correct horse battery staple").current_dir(env.dir.path());
        env.private_user_dirs(&mut cmd);
        cmd.spawn().unwrap()
    };
    let (mut c1, mut c2) = (spawn("a"), spawn("b"));
    assert!(c1.wait().unwrap().success() && c2.wait().unwrap().success(), "parallel backups failed");
    let snaps = env.list_json();
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    for (label, dir) in [("a", &a), ("b", &b)] {
        let latest = snaps.iter().rfind(|s| s["source_label"] == label).unwrap();
        let dest = env.path(&format!("out-{label}"));
        env.run(["restore".as_ref(), latest["id"].as_str().unwrap().as_ref(), dest.as_os_str()]).ok();
        assert_diff_clean(dir, &dest, &[]);
    }
    env.run(["prune"]).ok();
    assert_eq!(env.list_json().len(), 2, "keep_last: 1 per source");
    env.run(["compact", "--grace", "0s"]).ok();
    env.run(["check", "--verify-data"]).ok();
    let dest = env.path("final");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();
}

#[test]
fn lifecycle_local() {
    lifecycle("local");
}

#[test]
fn lifecycle_s3() {
    lifecycle("s3");
}

#[test]
fn lifecycle_sftp() {
    lifecycle("sftp");
}

#[test]
fn lifecycle_rest() {
    lifecycle("rest");
}
