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

/// The items of the top-level block list `key` (`sources:` then `- ...`
/// lines): the key's line, the dashes' indentation and each item's lines
/// `[start, end)` (comments and blank lines after an item stay with it).
/// `None` when the key is missing; `[]` written on the key's line is an
/// empty list.
#[allow(clippy::type_complexity)]
fn list_items(lines: &[&str], key: &str) -> Result<Option<(usize, usize, Vec<(usize, usize)>)>, EditError> {
    let unsupported = |why| EditError::Unsupported { key: key.to_string(), why };
    let Some(k) = (0..lines.len()).find(|&i| indent(lines[i]) == Some(0) && key_value(lines[i], 0, key).is_some())
    else {
        return Ok(None);
    };
    let (scalar, _) = split_comment(key_value(lines[k], 0, key).unwrap_or_default());
    let end = block_end(lines, k, 0);
    match scalar.trim() {
        "" => {}
        "[]" if (k + 1..end).all(|j| indent(lines[j]).is_none()) => return Ok(Some((k, 2, Vec::new()))),
        _ => return Err(unsupported("its list is written on one line")),
    }
    let dashes: Vec<usize> = (k + 1..end)
        .filter(|&j| indent(lines[j]).is_some() && lines[j].trim_start().starts_with('-'))
        .filter(|&j| {
            let at = indent(lines[j]).unwrap_or(0);
            (k + 1..j).all(|i| indent(lines[i]).is_none_or(|n| n >= at))
        })
        .collect();
    let at = dashes.first().and_then(|&j| indent(lines[j])).unwrap_or(2);
    let items: Vec<usize> = dashes.into_iter().filter(|&j| indent(lines[j]) == Some(at)).collect();
    if let Some(first) = (k + 1..end).find(|&j| indent(lines[j]).is_some()) {
        if items.first() != Some(&first) {
            return Err(unsupported("it is not a list of `- ` items"));
        }
    }
    // The last item ends at its last non-blank line, so that what follows
    // the list (blank lines, a comment about the next key) stays put.
    let last_end = (k + 1..end).rev().find(|&j| indent(lines[j]).is_some()).map_or(k + 1, |j| j + 1);
    let spans =
        items.iter().enumerate().map(|(n, &start)| (start, items.get(n + 1).copied().unwrap_or(last_end))).collect();
    Ok(Some((k, at, spans)))
}

/// `text` without item `index` of the top-level list `key`.
pub fn remove_item(text: &str, key: &str, index: usize) -> Result<String, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let missing = || EditError::Unsupported { key: format!("{key}[{index}]"), why: "there is no such item" };
    let (_, _, items) = list_items(&lines, key)?.ok_or_else(missing)?;
    let (start, end) = *items.get(index).ok_or_else(missing)?;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.drain(start..end);
    Ok(join(&out, text))
}

/// `text` with a new last item of the top-level list `key` (made if
/// missing): a mapping of `fields`, each a key and its YAML value (a
/// scalar, or a list written as several values).
pub fn append_item(text: &str, key: &str, fields: &[(&str, Value)]) -> Result<String, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let (place, at) = match list_items(&lines, key)? {
        Some((k, at, items)) => {
            if items.is_empty() {
                // `key: []` becomes a block list.
                let (_, comment) = split_comment(key_value(lines[k], 0, key).unwrap_or_default());
                out[k] = format!("{key}:{comment}");
            }
            (items.last().map_or(k + 1, |&(_, end)| end), at)
        }
        None => {
            let mut end = out.len();
            while end > 0 && out[end - 1].trim().is_empty() {
                end -= 1;
            }
            out.truncate(end);
            if end > 0 {
                out.push(String::new());
            }
            out.push(format!("{key}:"));
            (out.len(), 2)
        }
    };
    let mut item = Vec::new();
    for (n, (field, value)) in fields.iter().enumerate() {
        let lead = if n == 0 { format!("{}- ", " ".repeat(at)) } else { " ".repeat(at + 2) };
        match value {
            Value::Scalar(v) => item.push(format!("{lead}{field}: {v}")),
            Value::List(vs) => {
                item.push(format!("{lead}{field}:"));
                item.extend(vs.iter().map(|v| format!("{}- {v}", " ".repeat(at + 4))));
            }
        }
    }
    out.splice(place..place, item);
    Ok(join(&out, text))
}

/// A value [`append_item`] and [`set_in_item`] write.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A YAML scalar, already quoted if it needs it ([`scalar`]).
    Scalar(String),
    /// A block list of scalars, each already quoted.
    List(Vec<String>),
}

/// `text` with `field` of item `index` of the top-level list `key` set to
/// `value` (or removed with `None`); the item's other lines, and comments
/// on them, stay. A list value replaces the field's whole block. An item
/// that is a plain path (`- /home/me`) is rewritten as a mapping with
/// that path as `path:` first.
pub fn set_in_item(
    text: &str,
    key: &str,
    index: usize,
    field: &str,
    value: Option<&Value>,
) -> Result<String, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let name = format!("{key}[{index}].{field}");
    let missing = || EditError::Unsupported { key: name.clone(), why: "there is no such item" };
    let (_, at, items) = list_items(&lines, key)?.ok_or_else(missing)?;
    let (start, end) = *items.get(index).ok_or_else(missing)?;
    // The item as a mapping at `inner`: its first line without the dash.
    let inner = at + 2;
    let first = lines[start].get(at + 1..).unwrap_or_default().trim_start();
    let mut item: Vec<String> = Vec::new();
    if first.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
        return Err(EditError::Unsupported { key: name, why: "the item is not written as plain lines" });
    }
    let (head, comment) = split_comment(first);
    if first.is_empty() || head.contains(": ") || head.ends_with(':') {
        item.push(format!("{}{first}", " ".repeat(inner)));
    } else {
        // `- /home/me   # comment`: a path alone.
        item.push(format!("{}path: {}{comment}", " ".repeat(inner), head.trim()));
    }
    item.extend(lines[start + 1..end].iter().map(|l| l.to_string()));
    // The field's lines inside the item: its key line and what is indented under it.
    let refs: Vec<&str> = item.iter().map(String::as_str).collect();
    let found = (0..refs.len()).find(|&j| indent(refs[j]) == Some(inner) && key_value(refs[j], inner, field).is_some());
    // A scalar written over a scalar keeps the line's comment.
    let comment = found
        .and_then(|j| key_value(refs[j], inner, field))
        .map(|after| split_comment(after).1.to_string())
        .unwrap_or_default();
    let new_lines: Vec<String> = match value {
        None => Vec::new(),
        Some(Value::Scalar(v)) => vec![format!("{}{field}: {v}{comment}", " ".repeat(inner))],
        Some(Value::List(vs)) => std::iter::once(format!("{}{field}:", " ".repeat(inner)))
            .chain(vs.iter().map(|v| format!("{}- {v}", " ".repeat(inner + 2))))
            .collect(),
    };
    match found {
        Some(j) => {
            let end = block_end(&refs, j, inner);
            // Blank lines and comments at the end of the block belong to what follows.
            let end = (j + 1..end).rev().find(|&i| indent(refs[i]).is_some()).map_or(j + 1, |i| i + 1);
            item.splice(j..end, new_lines);
        }
        None => {
            let last = (0..item.len()).rev().find(|&i| indent(&item[i]).is_some()).map_or(0, |i| i + 1);
            item.splice(last..last, new_lines);
        }
    }
    if item.first().is_none_or(|l| indent(l).is_none()) {
        // The first line was the field removed: the next key line takes the dash.
        item.retain(|l| indent(l).is_some() || !l.trim().is_empty());
    }
    let Some(first) = item.first_mut().filter(|l| indent(l) == Some(inner)) else {
        return Err(EditError::Unsupported { key: name, why: "its lines are not indented as one mapping" });
    };
    first.replace_range(..inner, &format!("{}- ", " ".repeat(at)));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.splice(start..end, item);
    Ok(join(&out, text))
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

    const LISTS: &str = "# mine\nrepositories:\n  - label: nas   # at home\n    url: /srv/vger\n  # the cloud one\n  - label: cloud\n    url: s3://h/b\n\nsources:\n  - /home/me/Documents   # papers\n  - label: photos\n    path: /home/me/Photos\n    exclude:\n      - \"*.tmp\"   # junk\n    one_file_system: true\n\n# the end\n";

    #[test]
    fn list_items_are_added_and_removed_with_the_rest_kept() {
        let out = remove_item(LISTS, "repositories", 0).unwrap();
        assert_eq!(out, LISTS.replace("  - label: nas   # at home\n    url: /srv/vger\n  # the cloud one\n", ""));
        let out = remove_item(LISTS, "repositories", 1).unwrap();
        assert_eq!(out, LISTS.replace("  - label: cloud\n    url: s3://h/b\n", ""));
        assert!(remove_item(LISTS, "repositories", 2).is_err());
        let fields = [("label", Value::Scalar("usb".into())), ("url", Value::Scalar("/media/usb/vger".into()))];
        let out = append_item(LISTS, "repositories", &fields).unwrap();
        assert_eq!(out, LISTS.replace("url: s3://h/b\n", "url: s3://h/b\n  - label: usb\n    url: /media/usb/vger\n"));
        let fields = [("path", Value::Scalar("/srv".into())), ("exclude", Value::List(vec!["\"*.iso\"".into()]))];
        let out = append_item("sources: []   # none yet\n", "sources", &fields).unwrap();
        assert_eq!(out, "sources:   # none yet\n  - path: /srv\n    exclude:\n      - \"*.iso\"\n");
        let out = append_item("# only this\n", "sources", &fields[..1]).unwrap();
        assert_eq!(out, "# only this\n\nsources:\n  - path: /srv\n");
    }

    #[test]
    fn a_field_of_an_item_is_set_in_place_and_a_plain_path_becomes_a_mapping() {
        let list = Value::List(vec!["\"*.iso\"".into(), "cache/".into()]);
        let out = set_in_item(LISTS, "sources", 1, "exclude", Some(&list)).unwrap();
        assert_eq!(out, LISTS.replace("      - \"*.tmp\"   # junk\n", "      - \"*.iso\"\n      - cache/\n"));
        let out = set_in_item(LISTS, "sources", 1, "path", Some(&Value::Scalar("/data/photos".into()))).unwrap();
        assert_eq!(out, LISTS.replace("path: /home/me/Photos", "path: /data/photos"));
        let out = set_in_item(LISTS, "sources", 1, "exclude", None).unwrap();
        assert_eq!(out, LISTS.replace("    exclude:\n      - \"*.tmp\"   # junk\n", ""));
        let out = set_in_item(LISTS, "sources", 0, "exclude", Some(&list)).unwrap();
        assert_eq!(
            out,
            LISTS.replace(
                "  - /home/me/Documents   # papers\n",
                "  - path: /home/me/Documents   # papers\n    exclude:\n      - \"*.iso\"\n      - cache/\n"
            )
        );
        // The first field removed: the next one takes the dash.
        let out = set_in_item(LISTS, "sources", 1, "label", None).unwrap();
        assert_eq!(out, LISTS.replace("  - label: photos\n    path:", "  - path:"));
        assert!(set_in_item("sources: [/a]\n", "sources", 0, "path", None).is_err());
    }
}
