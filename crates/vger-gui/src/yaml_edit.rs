//! Changing one setting of `vger.yaml` in place: the line that holds it is
//! rewritten and every other byte of the file (comments, order, blank
//! lines, quoting of other values) stays as it was.
//!
//! vger-config reads YAML into a strict model and has no writer, and no
//! YAML library in the workspace keeps comments on a round trip; the
//! settings the app edits are scalars under top-level block mappings
//! (`schedule.every`, `retention.keep_daily`, `compression`), so a
//! targeted line edit is enough and is the smallest change to the file.
//! A key written in flow style (`schedule: {every: 6h}`) or spread over
//! several lines is refused with a message, never guessed at. The caller
//! checks the result with the CLI's loader before writing it.

/// Why a setting cannot be changed in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{key}` is written in a form the app does not edit ({why}); change it in the file by hand")]
    Unsupported { key: String, why: &'static str },
}

/// A line's indentation, or `None` for a blank or comment-only line.
fn indent(line: &str) -> Option<usize> {
    let trimmed = line.trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.starts_with('#') {
        None
    } else {
        Some(line.len() - trimmed.len())
    }
}

/// Whether `line` (at `indent`) is the mapping key `key`, and the text
/// after its colon.
fn key_value<'a>(line: &'a str, at: usize, key: &str) -> Option<&'a str> {
    let rest = line.get(at..)?;
    let rest = rest.strip_prefix(key)?;
    let rest = rest.trim_start_matches(' ');
    let value = rest.strip_prefix(':')?;
    (value.is_empty() || value.starts_with([' ', '\t'])).then_some(value)
}

/// The value part of `value` without its trailing comment, and the comment
/// (with the spaces before it).
fn split_comment(value: &str) -> (&str, &str) {
    let mut quote = None;
    for (i, c) in value.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i > 0 && value[..i].ends_with([' ', '\t']) => {
                let start = value[..i].trim_end().len();
                return (&value[..start], &value[start..]);
            }
            _ => {}
        }
    }
    (value.trim_end(), &value[value.trim_end().len()..])
}

/// The end (exclusive) of the block of lines under `start` (whose key is at
/// `at`): the next line indented at or left of `at`.
fn block_end(lines: &[&str], start: usize, at: usize) -> usize {
    (start + 1..lines.len()).find(|&i| indent(lines[i]).is_some_and(|n| n <= at)).unwrap_or(lines.len())
}

/// `text` with `path` (`["schedule", "every"]`, or `["compression"]`) set
/// to the YAML scalar `value` (already quoted if it needs it), or removed
/// with `None`. A missing key is added to its mapping, a missing mapping
/// at the end of the file.
pub fn set(text: &str, path: &[&str], value: Option<&str>) -> Result<String, EditError> {
    let unsupported = |why| EditError::Unsupported { key: path.join("."), why };
    let lines: Vec<&str> = text.lines().collect();
    // The mapping searched: lines [lo, hi), its keys indented `at`.
    let (mut lo, mut hi, mut at) = (0usize, lines.len(), 0usize);
    for (depth, key) in path.iter().enumerate() {
        let found = (lo..hi).find(|&i| indent(lines[i]) == Some(at) && key_value(lines[i], at, key).is_some());
        let Some(i) = found else {
            let Some(value) = value else { return Ok(text.to_string()) };
            return Ok(insert(text, &lines, (lo, hi, at), &path[depth..], value));
        };
        let after = key_value(lines[i], at, key).unwrap_or_default();
        let (scalar, comment) = split_comment(after);
        let end = block_end(&lines, i, at);
        let first_child = (i + 1..end).find(|&j| indent(lines[j]).is_some());
        if depth + 1 == path.len() {
            if first_child.is_some() {
                return Err(unsupported("its value spans several lines"));
            }
            if scalar.trim_start().starts_with(['{', '[', '|', '>', '&', '*', '!']) {
                return Err(unsupported("its value is not a plain scalar"));
            }
            let prefix = &lines[i][..lines[i].len() - after.len()];
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            match value {
                Some(v) => out[i] = format!("{prefix} {v}{comment}"),
                None => {
                    out.remove(i);
                }
            }
            return Ok(join(&out, text));
        }
        if !scalar.trim().is_empty() {
            return Err(unsupported("its mapping is written on one line"));
        }
        match first_child {
            Some(j) if lines[j].trim_start().starts_with("- ") => return Err(unsupported("it is a list")),
            Some(j) => (lo, hi, at) = (i + 1, end, indent(lines[j]).unwrap_or(at + 2)),
            // An empty mapping (`schedule:` alone): its keys go right below.
            None => (lo, hi, at) = (i + 1, i + 1, at + 2),
        }
    }
    Ok(text.to_string())
}

/// `text` with the missing keys `rest` (the last one set to `value`) added
/// to the mapping `[lo, hi)` indented `at`: after its last line, or at the
/// end of the file for a top-level key.
fn insert(text: &str, lines: &[&str], (lo, hi, at): (usize, usize, usize), rest: &[&str], value: &str) -> String {
    let mut add = Vec::new();
    for (d, k) in rest.iter().enumerate() {
        let pad = " ".repeat(at + 2 * d);
        if d + 1 == rest.len() {
            add.push(format!("{pad}{k}: {value}"));
        } else {
            add.push(format!("{pad}{k}:"));
        }
    }
    let place = if at == 0 {
        let mut end = lines.len();
        while end > 0 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        if end > 0 {
            add.insert(0, String::new());
        }
        end
    } else {
        (lo..hi).rev().find(|&j| indent(lines[j]).is_some()).map_or(lo, |j| j + 1)
    };
    let mut out: Vec<String> = lines[..place].iter().map(|l| l.to_string()).collect();
    out.extend(add);
    out.extend(lines[place..].iter().map(|l| l.to_string()));
    join(&out, text)
}

fn join(lines: &[String], original: &str) -> String {
    let newline = if original.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = lines.join(newline);
    if original.ends_with('\n') || original.is_empty() {
        out.push_str(newline);
    }
    out
}

/// A YAML scalar for `s`: as it is when plain YAML reads it back as the
/// same string, else double-quoted (with `$` doubled so the loader's
/// `${VAR}` expansion leaves it as typed).
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        && !s.starts_with(['-', ':'])
        && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(&s.to_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(&s.replace('$', "$$")).unwrap_or_else(|_| "\"\"".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "# my backups\nrepositories:\n  - url: /srv/vger   # the NAS\n\nschedule:\n  # how often\n  every: 6h   # was 12h\n  enabled: true\n\nretention:\n    keep_daily: 7\n\n# the end\n";

    #[test]
    fn a_value_is_replaced_on_its_line_and_nothing_else_moves() {
        let out = set(TEXT, &["schedule", "every"], Some("2h")).unwrap();
        assert_eq!(out, TEXT.replace("every: 6h   # was 12h", "every: 2h   # was 12h"));
        let out = set(TEXT, &["retention", "keep_daily"], Some("14")).unwrap();
        assert_eq!(out, TEXT.replace("keep_daily: 7", "keep_daily: 14"));
    }

    #[test]
    fn a_missing_key_goes_into_its_mapping_at_its_indentation() {
        let out = set(TEXT, &["retention", "keep_weekly"], Some("4")).unwrap();
        assert_eq!(out, TEXT.replace("    keep_daily: 7\n", "    keep_daily: 7\n    keep_weekly: 4\n"));
        let out = set(TEXT, &["compression"], Some("zstd")).unwrap();
        assert_eq!(out, format!("{TEXT}\ncompression: zstd\n"));
        let out = set("repositories: []\n", &["schedule", "every"], Some("1d")).unwrap();
        assert_eq!(out, "repositories: []\n\nschedule:\n  every: 1d\n");
        let out = set("schedule:\nx: 1\n", &["schedule", "every"], Some("1d")).unwrap();
        assert_eq!(out, "schedule:\n  every: 1d\nx: 1\n");
    }

    #[test]
    fn a_key_is_removed_with_none_and_a_missing_one_is_left_alone() {
        let out = set(TEXT, &["schedule", "enabled"], None).unwrap();
        assert_eq!(out, TEXT.replace("  enabled: true\n", ""));
        assert_eq!(set(TEXT, &["schedule", "cron"], None).unwrap(), TEXT);
    }

    #[test]
    fn forms_it_does_not_edit_are_refused() {
        let flow = "schedule: {every: 6h}\n";
        assert!(set(flow, &["schedule", "every"], Some("1h")).unwrap_err().to_string().contains("by hand"));
        let block = "schedule:\n  every: >\n    6h\n";
        assert!(set(block, &["schedule", "every"], Some("1h")).is_err());
        // A key inside a nested mapping of the same name is not the top-level one.
        let nested = "repositories:\n  - url: x\n    schedule:\n      every: 1h\n";
        let out = set(nested, &["schedule", "every"], Some("2h")).unwrap();
        assert_eq!(out, format!("{nested}\nschedule:\n  every: 2h\n"));
    }

    #[test]
    fn scalars_are_quoted_when_plain_yaml_would_change_them() {
        assert_eq!(scalar("6h"), "6h");
        assert_eq!(scalar("0 3 * * *"), "\"0 3 * * *\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("a$b"), "\"a$$b\"");
        assert_eq!(scalar(""), "\"\"");
    }
}
