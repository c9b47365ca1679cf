//! `env_file:` files: `KEY=VALUE` lines whose values feed `${VAR}` expansion.

use std::collections::HashMap;
use std::path::Path;

use crate::error::ConfigError;

/// Parses one env file's text. Blank lines and `#` comments are skipped, an
/// `export ` prefix is allowed, and one pair of surrounding quotes is removed.
pub(crate) fn parse(text: &str, file: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let mut vars = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let invalid = |message: String| ConfigError::invalid(file, Some((index as u64 + 1, 0)), message);
        let (key, value) =
            line.split_once('=').ok_or_else(|| invalid(format!("expected `KEY=VALUE`, found `{line}`")))?;
        let key = key.trim();
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(format!("`{key}` is not a variable name; use letters, digits and `_`")));
        }
        vars.insert(key.to_owned(), unquote(value.trim()).to_owned());
    }
    Ok(vars)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_pairs() {
        let text = "# secrets\n\nA=1\nexport B = \"two words\"\nC='x=y'\nD=\n";
        let vars = parse(text, Path::new("e.env")).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars["D"], "");
    }

    #[test]
    fn reports_bad_line() {
        let err = parse("A=1\nnonsense\n", Path::new("e.env")).unwrap_err();
        assert_eq!(err.to_string(), "e.env:2: expected `KEY=VALUE`, found `nonsense`");
        let err = parse("1A=1\n", Path::new("e.env")).unwrap_err();
        assert_eq!(err.to_string(), "e.env:1: `1A` is not a variable name; use letters, digits and `_`");
    }
}
