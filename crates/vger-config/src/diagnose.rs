//! Turns serde-saphyr errors into one-line messages with a hint: the key at
//! fault, what it expects, and a "did you mean" for misspelt keys and values.

use std::path::Path;

use serde_saphyr::Error as YamlError;

use crate::error::ConfigError;

/// Maps a parse error of `text` (the expanded config read from `file`).
pub(crate) fn yaml_error(error: &YamlError, text: &str, file: &Path) -> ConfigError {
    let error = error.without_snippet();
    let position = error.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    let key = position.and_then(|(line, column)| key_before(text, line, column));
    let subject = key.map_or_else(|| "this value".to_owned(), |k| format!("`{k}`"));
    let found = || {
        position
            .and_then(|(line, column)| scalar_at(text, line, column))
            .map_or_else(String::new, |v| format!(", found `{v}`"))
    };
    let message = match error {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            let place = context_of(expected);
            format!("unknown key `{field}` in {place}{}", suggestion(field, expected))
        }
        YamlError::SerdeUnknownVariant { variant, expected, .. } => format!(
            "unknown value `{variant}` for {subject}{}; expected one of {}",
            suggestion(variant, expected),
            quoted_list(expected)
        ),
        YamlError::SerdeMissingField { field, .. } => missing_field(field),
        YamlError::InvalidBooleanStrict { .. } => {
            format!("{subject} must be `true` or `false`{}; yes/no/on/off are not booleans in vger.yaml", found())
        }
        YamlError::InvalidScalar { ty, .. } => {
            format!("{subject} expects {}{}", describe_type(ty), found())
        }
        YamlError::Unexpected { expected, .. } => {
            format!("{subject} expects {}", describe_type(expected))
        }
        YamlError::SerdeInvalidType { unexpected, expected, .. }
        | YamlError::SerdeInvalidValue { unexpected, expected, .. } => {
            format!("{subject} expects {expected}, found {unexpected}")
        }
        YamlError::NullIntoString { .. } => format!("{subject} is empty; write a value"),
        YamlError::DuplicateMappingKey { key: dup, .. } => match dup {
            Some(dup) => format!("key `{dup}` is written twice; keep one"),
            None => "a key is written twice; keep one".to_owned(),
        },
        YamlError::Message { msg, .. } => match key {
            Some(key) => format!("`{key}`: {msg}"),
            None => msg.clone(),
        },
        other => strip_location(&other.to_string()),
    };
    ConfigError::invalid(file, position, message)
}

/// Names the config section a struct's field list belongs to.
fn context_of(expected: &[&str]) -> &'static str {
    const MARKERS: &[(&str, &str)] = &[
        ("repositories", "the top level"),
        ("allow_insecure_http", "repository"),
        ("one_file_system", "source"),
        ("keep_within", "retention"),
        ("threads", "limits"),
        ("before_backup", "hooks"),
        ("max_percent", "check"),
        ("cron", "schedule"),
        ("events", "notify"),
        ("min_size", "chunker"),
        ("passcommand", "encryption"),
        ("max_retries", "retry"),
        ("command", "command_dumps"),
        ("enabled", "xattrs"),
    ];
    MARKERS.iter().find(|(marker, _)| expected.contains(marker)).map_or("this section", |(_, name)| name)
}

/// `; did you mean `x`?` for the closest candidate, or nothing when none is close.
pub(crate) fn suggestion(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn missing_field(field: &str) -> String {
    let hint = match field {
        "repositories" => "add a `repositories:` list with at least one `url`",
        "url" => "every repository and notify target needs a `url`",
        "min_size" | "avg_size" | "max_size" => "a `chunker:` section sets all of min_size, avg_size and max_size",
        "name" | "command" => "each command dump needs a `name` and a `command`",
        _ => "add it",
    };
    format!("missing required key `{field}`; {hint}")
}

fn describe_type(ty: &str) -> String {
    match ty {
        "sequence start" => "a list".to_owned(),
        "mapping start" => "a map of keys".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "`true` or `false`".to_owned(),
        // The parser's "string scalar": one text value, not a list or a map.
        "string" | "str" | "string scalar" => "a single text value (not a list or a map)".to_owned(),
        other => other.to_owned(),
    }
}

/// The key the error is about: the `key:` before the error column (errors in
/// values) or starting at it (errors some visitors report at the key).
fn key_before(text: &str, line: u64, column: u64) -> Option<&str> {
    let source_line = nth_line(text, line)?;
    let split = source_line
        .char_indices()
        .nth(usize::try_from(column).ok()?.saturating_sub(1))
        .map_or(source_line.len(), |(i, _)| i);
    let (head, tail) = source_line.split_at(split);
    let before = head.trim_end().strip_suffix(':').map(|h| h.trim_start().trim_start_matches("- ").trim());
    let at = tail.split_once(':').map(|(key, _)| key.trim());
    [before, at]
        .into_iter()
        .flatten()
        .map(|key| key.trim_matches(|c| c == '"' || c == '\''))
        .find(|key| !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
}

/// The plain scalar starting at `column`, without a trailing comment.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<String> {
    let source_line = nth_line(text, line)?;
    let start = source_line.char_indices().nth(usize::try_from(column).ok()?.saturating_sub(1))?.0;
    let rest = source_line.get(start..)?;
    let rest = rest.split(" #").next().unwrap_or(rest).trim();
    let rest = rest.trim_matches(|c| c == '"' || c == '\'');
    (!rest.is_empty()).then(|| rest.to_owned())
}

fn nth_line(text: &str, line: u64) -> Option<&str> {
    text.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)
}

/// Drops serde-saphyr's ` at line L, column C` suffix; the position is printed in front.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("exlude", &["exclude", "paths"]), Some("exclude"));
        assert_eq!(closest("zzz", &["exclude", "paths"]), None);
        assert_eq!(closest("aes", &["auto", "aes256gcm"]), Some("aes256gcm"));
    }

    #[test]
    fn finds_key_and_value() {
        let text = "a:\n  - keep_daily: lots # many\n";
        assert_eq!(key_before(text, 2, 17), Some("keep_daily"));
        assert_eq!(scalar_at(text, 2, 17).as_deref(), Some("lots"));
        assert_eq!(key_before(text, 1, 1), Some("a"));
        assert_eq!(key_before("  - /home/me\n", 1, 5), None);
    }
}
