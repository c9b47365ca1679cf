//! The starter file parses and shows every section.

#![allow(clippy::unwrap_used)]

mod common;

use common::parse;
use vger_config::{starter_config, Codec, EncryptionMode};

#[test]
fn starter_parses_without_any_variables() {
    let config = parse(&starter_config()).unwrap();
    assert_eq!(config.repositories[0].label(), "local");
    assert_eq!(config.repositories[0].url, "/var/backups/vger-repo");
    assert_eq!(config.sources()[0].label(), "Documents");
    assert_eq!(config.encryption.mode(), EncryptionMode::Auto);
    assert_eq!(config.compression, Some(Codec::Lz4));
}

#[test]
fn starter_mentions_every_section() {
    let text = starter_config();
    for key in [
        "repositories:",
        "sources:",
        "exclude_patterns:",
        "exclude_if_present:",
        "encryption:",
        "compression:",
        "chunker:",
        "cache_dir:",
        "retention:",
        "limits:",
        "hooks:",
        "check:",
        "schedule:",
        "notify:",
        "env_file:",
        "xattrs:",
        "passcommand:",
        "VGER_PASSPHRASE",
        "command_dumps:",
        "change_detection:",
        "git_ignore:",
        "one_file_system:",
        "s3://",
        "sftp://",
        "${AWS_SECRET_ACCESS_KEY}",
        "allow_insecure_http",
    ] {
        assert!(text.contains(key), "starter lacks {key}");
    }
}

#[test]
fn starter_examples_parse_when_uncommented() {
    // Uncommenting the rich sources block and every optional top level
    // section must give a valid file.
    let text = starter_config();
    let mut out = String::new();
    let mut in_block = false;
    let mut in_simple_sources = false;
    for line in text.lines() {
        if line == "sources:" {
            in_simple_sources = true;
            continue;
        }
        if in_simple_sources && line.starts_with("  - ") {
            continue;
        }
        in_simple_sources = false;
        let rest = line.strip_prefix("# ");
        let header = rest.is_some_and(|r| {
            let sections = [
                "sources",
                "exclude_if_present",
                "chunker",
                "cache_dir",
                "xattrs",
                "retention",
                "limits",
                "hooks",
                "check",
                "schedule",
                "notify",
            ];
            r.split_once(':').is_some_and(|(key, _)| sections.contains(&key))
        });
        let continuation = in_block && rest.is_some_and(|r| r.starts_with("  "));
        in_block = header || continuation;
        out.push_str(if in_block { rest.unwrap_or(line) } else { line });
        out.push('\n');
    }
    let env = common::env_with(&[("HEALTHCHECK_ID", "abc")]);
    let config = vger_config::Config::from_yaml_str_in(&out, std::path::Path::new("/tmp/vger.yaml"), &env);
    let config = config.unwrap_or_else(|e| unreachable!("{e}\n{out}"));
    assert_eq!(config.sources()[0].label(), "home");
    assert!(config.schedule.unwrap().enabled);
    assert_eq!(config.chunker.unwrap().avg_size, 2 << 20);
    assert_eq!(config.notify[0].url, "https://hc-ping.com/abc");
    assert_eq!(config.retention.unwrap().keep_within.as_deref(), Some("2d"));
    assert_eq!(config.limits.unwrap().threads, Some(2));
    assert_eq!(config.check.unwrap().max_percent, Some(10));
    assert_eq!(config.hooks.unwrap().finally_backup, ["systemctl start myapp"]);
}
