//! Override rules: repository over top level, source over repository.

#![allow(clippy::unwrap_used)]

mod common;

use common::parse;
use vger_config::{Codec, ConfigError, EncryptionMode};

const YAML: &str = "
repositories:
  - url: /srv/local
    label: local
  - url: s3://s3.example.com/bucket/offsite
    encryption:
      passcommand: pass show offsite
    compression: zstd:9
    retention: { keep_daily: 30 }
    limits: { upload_mib_per_sec: 5, threads: 1 }
sources:
  - path: /home/me
    retention: { keep_last: 3 }
  - path: /etc
encryption:
  mode: chacha20poly1305
  passphrase: top-secret
compression: zstd
retention: { keep_daily: 7, keep_within: 2d }
limits: { threads: 4, nice: 10 }
";

#[test]
fn encryption_overrides_field_by_field() {
    let config = parse(YAML).unwrap();
    let [local, offsite] = config.repositories.as_slice() else { unreachable!() };
    let enc = config.effective_encryption(local);
    assert_eq!(enc.mode(), EncryptionMode::Chacha20Poly1305);
    assert_eq!(enc.passphrase.as_deref(), Some("top-secret"));
    let enc = config.effective_encryption(offsite);
    assert_eq!(enc.mode, Some(EncryptionMode::Chacha20Poly1305));
    assert_eq!(enc.passphrase.as_deref(), Some("top-secret"));
    assert_eq!(enc.passcommand.as_deref(), Some("pass show offsite"));
}

#[test]
fn compression_and_defaults() {
    let config = parse(YAML).unwrap();
    assert_eq!(config.effective_compression(&config.repositories[0]), Codec::Zstd(3));
    assert_eq!(config.effective_compression(&config.repositories[1]), Codec::Zstd(9));
    let bare = parse("repositories:\n  - url: /srv\n").unwrap();
    assert_eq!(bare.effective_compression(&bare.repositories[0]), Codec::Lz4);
    assert_eq!(bare.effective_encryption(&bare.repositories[0]).mode(), EncryptionMode::Auto);
}

#[test]
fn retention_takes_the_most_specific_whole_block() {
    let config = parse(YAML).unwrap();
    let [local, offsite] = config.repositories.as_slice() else { unreachable!() };
    let [home, etc] = config.sources() else { unreachable!() };
    assert_eq!(config.effective_retention(offsite, Some(home)).unwrap().keep_last, Some(3));
    let repo_level = config.effective_retention(offsite, Some(etc)).unwrap();
    assert_eq!((repo_level.keep_daily, repo_level.keep_within), (Some(30), None));
    let top = config.effective_retention(local, None).unwrap();
    assert_eq!(top.keep_within.as_deref(), Some("2d"));
}

#[test]
fn limits_override_field_by_field() {
    let config = parse(YAML).unwrap();
    let limits = config.effective_limits(&config.repositories[1]);
    assert_eq!(limits.threads, Some(1));
    assert_eq!(limits.nice, Some(10));
    assert_eq!(limits.upload_mib_per_sec, Some(5.0));
    assert_eq!(limits.connections, None);
}

#[test]
fn selecting_repositories() {
    let config = parse(YAML).unwrap();
    assert_eq!(config.find_repository("offsite").unwrap().label(), "offsite");
    assert_eq!(config.find_repository("/srv/local").unwrap().label(), "local");
    assert_eq!(config.select_repositories(None).unwrap().len(), 2);
    assert_eq!(config.select_repositories(Some("local")).unwrap()[0].url, "/srv/local");
    let err = config.select_repositories(Some("nas")).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownRepository { .. }));
    assert_eq!(err.to_string(), "no repository `nas`; available: local, offsite");
}
