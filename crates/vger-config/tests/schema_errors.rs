//! Strict parsing: unknown keys, wrong types and strict booleans, with exact positions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{error, parse, REPO};
use vger_config::ConfigError;

#[test]
fn unknown_top_level_key_suggests_the_closest() {
    let yaml = format!("{REPO}exlude_patterns: [\"*.tmp\"]\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:3:1: unknown key `exlude_patterns` in the top level; did you mean `exclude_patterns`?"
    );
}

#[test]
fn unknown_key_without_a_close_match_has_no_suggestion() {
    let yaml = format!("{REPO}frobnicate: 1\n");
    assert_eq!(error(&yaml), "vger.yaml:3:1: unknown key `frobnicate` in the top level");
}

#[test]
fn unknown_key_in_a_repository() {
    let yaml = "repositories:\n  - url: /srv/repo\n    lable: main\n";
    assert_eq!(error(yaml), "vger.yaml:3:5: unknown key `lable` in repository; did you mean `label`?");
}

#[test]
fn unknown_key_in_a_source() {
    let yaml = format!("{REPO}sources:\n  - path: /home/me/docs\n    exlude: [\"*.tmp\"]\n");
    assert_eq!(error(&yaml), "vger.yaml:5:5: unknown key `exlude` in source; did you mean `exclude`?");
}

#[test]
fn unknown_key_in_nested_sections() {
    let yaml = format!("{REPO}retention:\n  keep_dayly: 7\n");
    assert_eq!(error(&yaml), "vger.yaml:4:3: unknown key `keep_dayly` in retention; did you mean `keep_daily`?");
    let yaml = format!("{REPO}hooks:\n  before_bakup: echo hi\n");
    assert_eq!(error(&yaml), "vger.yaml:4:3: unknown key `before_bakup` in hooks; did you mean `before_backup`?");
    let yaml = format!("{REPO}schedule:\n  enabled: true\n  evry: 1h\n");
    assert_eq!(error(&yaml), "vger.yaml:5:3: unknown key `evry` in schedule; did you mean `every`?");
}

#[test]
fn wrong_type_for_a_list() {
    let yaml = format!("{REPO}sources:\n  - path: /home/me/docs\n    exclude: 5\n");
    assert_eq!(error(&yaml), "vger.yaml:5:14: `exclude` expects a list");
}

#[test]
fn wrong_type_for_a_number() {
    let yaml = format!("{REPO}retention:\n  keep_daily: \"lots\"\n");
    assert_eq!(error(&yaml), "vger.yaml:4:15: `keep_daily` expects a whole number (0 or more), found `lots`");
    let yaml = format!("{REPO}retention:\n  keep_daily: -3\n");
    assert_eq!(error(&yaml), "vger.yaml:4:15: `keep_daily` expects a whole number (0 or more), found `-3`");
}

#[test]
fn yes_is_not_a_boolean() {
    let yaml = format!("{REPO}sources:\n  - path: /home/me/docs\n    one_file_system: yes\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:5:22: `one_file_system` must be `true` or `false`, found `yes`; yes/no/on/off are not booleans in vger.yaml"
    );
}

#[test]
fn bad_enum_value_suggests() {
    let yaml = format!("{REPO}encryption:\n  mode: aes256\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:4:9: unknown value `aes256` for `mode`; did you mean `aes256gcm`?; expected one of `auto`, `aes256gcm`, `chacha20poly1305`, `none`"
    );
}

#[test]
fn bad_compression() {
    let yaml = format!("{REPO}compression: gzip\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:3:14: `compression`: unknown compression `gzip`; use `lz4`, `none`, `zstd` or `zstd:N` with N from 1 to 22"
    );
    let yaml = format!("{REPO}compression: zstd:30\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:3:14: `compression`: zstd level 30 is out of range; use 1 to 22 (3 is the default)"
    );
}

#[test]
fn missing_required_url() {
    let yaml = "repositories:\n  - label: main\n";
    assert_eq!(
        error(yaml),
        "vger.yaml:2:5: missing required key `url`; every repository and notify target needs a `url`"
    );
}

#[test]
fn missing_repositories() {
    let err = parse("sources: [/home/me]\n").unwrap_err();
    assert!(err.to_string().contains("missing required key `repositories`; add a `repositories:` list"), "{err}");
}

#[test]
fn bad_period_and_interval_and_cron() {
    let yaml = format!("{REPO}retention:\n  keep_within: 2 days\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:4:16: `keep_within`: `2 days` is not a period; write a number and a unit h, d, w, m (months) or y, e.g. `2d`, `3w`, `6m`, `1y`"
    );
    let yaml = format!("{REPO}schedule:\n  every: 1w\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:4:10: `every`: `1w` is not an interval; write a number and a unit s, m (minutes), h or d, e.g. `30m`, `6h`, `1d`"
    );
    let yaml = format!("{REPO}schedule:\n  cron: \"0 3 * *\"\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:4:9: `cron`: cron expression `0 3 * *` has 4 fields; write 5 (minute hour day-of-month month day-of-week), e.g. `0 3 * * *`"
    );
}

#[test]
fn bad_size() {
    let yaml = format!("{REPO}chunker:\n  min_size: 1 parsec\n  avg_size: 2MiB\n  max_size: 8MiB\n");
    assert_eq!(
        error(&yaml),
        "vger.yaml:4:13: `min_size`: unknown size unit `parsec` in `1 parsec`; use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB for powers of 1000)"
    );
}

#[test]
fn duplicate_key() {
    let yaml = format!("{REPO}compression: lz4\ncompression: none\n");
    assert_eq!(error(&yaml), "vger.yaml:4:1: key `compression` is written twice; keep one");
}

#[test]
fn syntax_error_has_a_position() {
    let err = parse("repositories: [\n").unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { line: Some(_), .. }), "{err}");
    assert!(err.to_string().starts_with("vger.yaml:1:"), "{err}");
}

#[test]
fn hook_string_or_list() {
    let yaml =
        format!("{REPO}hooks:\n  before: echo one\n  after: [echo two, echo three]\n  before_backup: echo four\n");
    let config = parse(&yaml).unwrap_or_else(|e| unreachable!("{e}"));
    let hooks = config.hooks.unwrap_or_default();
    assert_eq!(hooks.before, ["echo one"]);
    assert_eq!(hooks.after, ["echo two", "echo three"]);
    let backup = hooks.for_command(vger_config::HookCommand::Backup);
    assert_eq!(backup.before, ["echo one", "echo four"]);
    let yaml = format!("{REPO}hooks:\n  before: 5\n");
    assert_eq!(error(&yaml), "vger.yaml:4:3: `before` expects a string or a list of strings, found integer `5`");
}

/// A list where one value belongs is named in words a user can act on,
/// not in the parser's ("string scalar").
#[test]
fn a_list_where_a_value_belongs() {
    assert_eq!(
        error("repositories:\n  - url: [not, a, string]\n"),
        "vger.yaml:2:10: `url` expects a single text value (not a list or a map)"
    );
}
