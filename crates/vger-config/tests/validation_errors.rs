//! Cross-key checks after parsing, each pointing at its line.

#![allow(clippy::unwrap_used)]

mod common;

use common::{error, parse, REPO};

#[test]
fn empty_repository_list() {
    assert_eq!(
        error("sources: [/home/me]\nrepositories: []\n"),
        "vger.yaml:2:15: `repositories` is empty; add at least one entry with a `url`"
    );
}

#[test]
fn duplicate_repository_labels() {
    let yaml = "repositories:\n  - url: /srv/a/repo\n  - url: s3://host/bucket/repo\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:3:5: repository label `repo` is used twice (first at line 2); give one of them a different `label:`"
    );
    let yaml = "repositories:\n  - url: /srv/a/repo\n  - url: s3://host/bucket/repo\n    label: cloud\n";
    assert!(parse(yaml).is_ok());
}

#[test]
fn empty_url() {
    let yaml = "repositories:\n  - label: main\n    url: \"\"\n";
    assert_eq!(error(yaml), "vger.yaml:3:10: repository `url` is empty; write a path or a URL");
}

#[test]
fn insecure_http_needs_opt_in() {
    let yaml = "repositories:\n  - url: http://nas.local:8000/vger\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:2:10: `http://nas.local:8000/vger` sends data and credentials unencrypted; use https or set `allow_insecure_http: true` on this repository"
    );
    let yaml = "repositories:\n  - url: s3+http://minio:9000/bucket\n";
    assert!(error(yaml).starts_with("vger.yaml:2:10: `s3+http://minio:9000/bucket` sends data"));
    let yaml = "repositories:\n  - url: s3+http://minio:9000/bucket\n    allow_insecure_http: true\n";
    assert!(parse(yaml).is_ok());
}

#[test]
fn source_needs_exactly_one_of_path_and_paths() {
    let yaml = format!("{REPO}sources:\n  - label: a\n    path: /x\n    paths: [/y]\n");
    assert_eq!(error(&yaml), "vger.yaml:4:5: source `a` sets both `path` and `paths`; keep one");
    let yaml = format!("{REPO}sources:\n  - path: /x\n  - label: b\n    exclude: [\"*.tmp\"]\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:5:5: source `b` has neither `path` nor `paths`; add the folders to back up (or `command_dumps` with a `label`)"
    );
}

#[test]
fn a_source_of_command_dumps_alone_needs_a_label() {
    let dumps = "    command_dumps:\n      - name: db.sql\n        command: pg_dump db\n";
    let yaml = format!("{REPO}sources:\n  - label: db\n{dumps}  - /home\n");
    let config = parse(&yaml).unwrap();
    assert_eq!(config.sources()[0].label(), "db");
    assert!(config.sources()[0].all_paths().is_empty());
    let yaml = format!("{REPO}sources:\n  - exclude: []\n{dumps}");
    assert_eq!(error(&yaml), "vger.yaml:4:5: a source of `command_dumps` alone needs a `label:` to name its snapshots");
}

#[test]
fn duplicate_source_labels() {
    let yaml = format!("{REPO}sources:\n  - /a/docs\n  - path: /b/music\n  - /c/docs\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:6:5: source label `docs` is used twice (first at line 4); give one of them a different `label:`"
    );
}

#[test]
fn source_names_an_unknown_repository() {
    let yaml =
        "repositories:\n  - url: /srv/main\n  - url: /srv/offsite\nsources:\n  - path: /x\n    repos: [ofsite]\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:5:5: source `x` names unknown repository `ofsite` in `repos`; did you mean `offsite`?"
    );
}

#[test]
fn copy_to_names_an_unknown_repository_or_itself() {
    let yaml = "repositories:\n  - url: /srv/main\n    copy_to: [ofsite]\n  - url: /srv/offsite\nsources: [/x]\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:2:5: repository `main` names unknown repository `ofsite` in `copy_to`; did you mean `offsite`?"
    );
    let yaml = "repositories:\n  - url: /srv/main\n    copy_to: [main]\nsources: [/x]\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:2:5: repository `main` names itself in `copy_to`; list other repositories' labels"
    );
}

#[test]
fn chunker_sizes() {
    let chunker = |min: &str, avg: &str, max: &str| {
        format!("{REPO}chunker:\n  min_size: {min}\n  avg_size: {avg}\n  max_size: {max}\n")
    };
    assert!(parse(&chunker("1KiB", "4KiB", "16KiB")).is_ok());
    assert!(parse(&chunker("512KiB", "2MiB", "8MiB")).is_ok());
    assert_eq!(
        error(&chunker("1025", "4KiB", "16KiB")),
        "vger.yaml:4:3: chunker `min_size` is 1025, an odd number; FastCDC needs even sizes"
    );
    assert_eq!(
        error(&chunker("8KiB", "4KiB", "16KiB")),
        "vger.yaml:4:3: chunker sizes must satisfy min_size <= avg_size <= max_size; got 8192 / 4096 / 16384"
    );
    assert_eq!(
        error(&chunker("1MiB", "4MiB", "64MiB")),
        "vger.yaml:4:3: chunker `max_size` is 67108864 bytes; FastCDC accepts 1024 to 16777216"
    );
    assert_eq!(
        error(&chunker("32", "4KiB", "16KiB")),
        "vger.yaml:4:3: chunker `min_size` is 32 bytes; FastCDC accepts 64 to 1048576"
    );
}

#[test]
fn schedule_every_and_cron_conflict() {
    let yaml = format!("{REPO}schedule:\n  enabled: true\n  every: 6h\n  cron: \"0 3 * * *\"\n");
    assert_eq!(error(&yaml), "vger.yaml:4:3: `schedule` sets both `every` and `cron`; keep one");
}

#[test]
fn repository_schedule_must_be_enabled() {
    let yaml = "repositories:\n  - url: /srv/main\n    schedule:\n      every: 1d\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:4:7: repository `main` has a `schedule` without `enabled: true`; add `enabled: true` or remove the schedule"
    );
    let yaml = "repositories:\n  - url: /srv/main\n    schedule:\n      enabled: true\n      every: 1d\n";
    assert!(parse(yaml).is_ok());
}

#[test]
fn limits_ranges() {
    assert_eq!(
        error(&format!("{REPO}limits:\n  nice: 40\n")),
        "vger.yaml:4:9: `nice`: nice level 40 is out of range; use -20 to 19"
    );
    assert_eq!(error(&format!("{REPO}limits:\n  threads: 0\n")), "vger.yaml:4:12: `threads`: must be at least 1");
    assert_eq!(
        error(&format!("{REPO}check:\n  max_percent: 150\n")),
        "vger.yaml:4:16: `max_percent`: 150 is not a percentage; use 0 to 100"
    );
}

#[test]
fn s3_addressing_values() {
    let yaml = "repositories:\n  - url: s3://h/b\n    s3_addressing: virtual\n";
    assert!(parse(yaml).is_ok());
    let yaml = "repositories:\n  - url: s3://h/b\n    s3_addressing: vhost\n";
    assert_eq!(error(yaml), "vger.yaml:3:20: `s3_addressing`: unknown s3_addressing `vhost`; use `path` or `virtual`");
}
