//! The simple, rich and mixed `sources:` forms, labels and path resolution.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{env, parse, REPO};
use vger_config::{ChangeDetection, Config};

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

#[test]
fn simple_form_with_one_path_is_labelled_by_its_folder() {
    let config = parse(&format!("{REPO}sources:\n  - /home/me/docs\n")).unwrap();
    assert_eq!(config.sources().len(), 1);
    assert_eq!(config.sources()[0].label(), "docs");
    assert_eq!(config.sources()[0].all_paths(), paths(&["/home/me/docs"]));
}

#[test]
fn simple_form_with_several_paths_is_one_default_source() {
    let config = parse(&format!("{REPO}sources:\n  - /home/me/docs\n  - ~/music\n")).unwrap();
    assert_eq!(config.sources().len(), 1);
    let source = &config.sources()[0];
    assert_eq!(source.label(), "default");
    assert_eq!(source.all_paths(), paths(&["/home/me/docs", "/home/me/music"]));
}

#[test]
fn rich_form() {
    let yaml = format!(
        "{REPO}sources:
  - label: home
    paths: [~/Documents, photos]
    exclude: [\"*.tmp\"]
    exclude_if_present: [.nobackup]
    one_file_system: true
    git_ignore: true
    change_detection: mtime-size
    xattrs: {{ enabled: false }}
    retention: {{ keep_daily: 3 }}
    command_dumps:
      - name: db.sql
        command: pg_dumpall
  - path: /etc
"
    );
    let config = parse(&yaml).unwrap();
    let [home, etc] = config.sources() else { unreachable!("{:?}", config.sources()) };
    assert_eq!(home.label(), "home");
    assert_eq!(home.all_paths(), paths(&["/home/me/Documents", "/work/photos"]));
    assert_eq!(home.exclude, ["*.tmp"]);
    assert!(home.one_file_system && home.git_ignore);
    assert_eq!(home.change_detection, Some(ChangeDetection::MtimeSize));
    assert_eq!(home.xattrs.map(|x| x.enabled), Some(false));
    assert_eq!(home.retention.as_ref().unwrap().keep_daily, Some(3));
    assert_eq!(home.command_dumps[0].name, "db.sql");
    assert_eq!(etc.label(), "etc");
    assert_eq!(etc.change_detection, None);
}

#[test]
fn mixed_form_makes_one_source_per_string() {
    let yaml = format!("{REPO}sources:\n  - /srv/www\n  - label: mail\n    path: /var/mail\n  - ~/notes\n");
    let config = parse(&yaml).unwrap();
    let labels: Vec<String> = config.sources().iter().map(|s| s.label()).collect();
    assert_eq!(labels, ["www", "mail", "notes"]);
    assert_eq!(config.sources()[2].all_paths(), paths(&["/home/me/notes"]));
}

#[test]
fn relative_paths_follow_the_config_file() {
    let config = Config::from_yaml_str_in(
        &format!("{REPO}sources:\n  - data\ncache_dir: ~/.cache/vger\n"),
        Path::new("/etc/vger/config.yaml"),
        &env(),
    )
    .unwrap();
    assert_eq!(config.sources()[0].all_paths(), paths(&["/etc/vger/data"]));
    assert_eq!(config.cache_dir, Some(PathBuf::from("/home/me/.cache/vger")));
}

#[test]
fn no_sources_is_allowed() {
    let config = parse(REPO).unwrap();
    assert!(config.sources().is_empty());
}

#[test]
fn repository_labels_come_from_the_url() {
    let yaml = "repositories:
  - url: /var/backups/vger-repo/
  - url: s3://s3.example.com/bucket/vger
  - url: sftp://nas
  - url: /srv/x
    label: named
";
    let config = parse(yaml).unwrap();
    let labels: Vec<&str> = config.repositories.iter().map(|r| r.label()).collect();
    assert_eq!(labels, ["vger-repo", "vger", "nas", "named"]);
}
