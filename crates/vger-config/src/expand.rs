//! `${VAR}` and `${VAR:-default}` expansion in the raw config text.
//!
//! Expansion is textual and happens before YAML parsing, so a value holding
//! YAML-special characters (`#`, `: `, quotes) should be quoted in the file.
//! `$$` writes a literal `$`. Comments are left alone, so commented examples
//! may mention variables that are not set.

/// Where expansion failed, 1-based, and why.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Expands every `${...}` in `text` with values from `lookup`.
pub(crate) fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        expand_line(line, index as u64 + 1, lookup, &mut out)?;
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    line_no: u64,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ExpandError> {
    let mut quote: Option<char> = None;
    let mut previous: Option<char> = None;
    let mut chars = line.char_indices().enumerate().peekable();
    while let Some((column, (offset, c))) = chars.next() {
        let error = |message: String| ExpandError { line: line_no, column: column as u64 + 1, message };
        let after_separator = previous.is_none_or(|p| p.is_whitespace() || "[{,:".contains(p));
        match c {
            '#' if quote.is_none() && previous.is_none_or(char::is_whitespace) => {
                out.push_str(line.get(offset..).unwrap_or_default());
                return Ok(());
            }
            '\'' | '"' if quote == Some(c) => quote = None,
            '\'' | '"' if quote.is_none() && after_separator => quote = Some(c),
            '$' => {
                match chars.peek().map(|(_, (_, next))| *next) {
                    Some('$') => {
                        chars.next();
                        out.push('$');
                        previous = Some('$');
                        continue;
                    }
                    Some('{') => {
                        let rest = line.get(offset..).unwrap_or_default();
                        let close = rest.find('}').ok_or_else(|| {
                            error("unterminated `${`; close it with `}` or write `$$` for a literal `$`".to_owned())
                        })?;
                        let inner = rest.get(2..close).unwrap_or_default();
                        out.push_str(&substitute(inner, lookup).map_err(error)?);
                        // Skip the rest of `${...}`.
                        while chars.next_if(|(_, (o, _))| *o <= offset + close).is_some() {}
                        previous = Some('}');
                        continue;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        out.push(c);
        previous = Some(c);
    }
    Ok(())
}

/// The value of `NAME` or `NAME:-default` (the default also replaces an empty value).
fn substitute(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`${{{inner}}}` is not a variable reference; write `${{NAME}}` or `${{NAME:-default}}`, or `$$` for a literal `$`"
        ));
    }
    let value = lookup(name);
    match (value, default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set; set it, add it to an `env_file`, or write `${{{name}:-default}}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn set_default_and_escape() {
        assert_eq!(expand("a: ${HOME}/x\n", &env).unwrap(), "a: /home/me/x\n");
        assert_eq!(expand("a: ${NOPE:-/tmp}\n", &env).unwrap(), "a: /tmp\n");
        assert_eq!(expand("a: ${HOME:-/tmp}\n", &env).unwrap(), "a: /home/me\n");
        assert_eq!(expand("a: ${EMPTY:-d}\n", &env).unwrap(), "a: d\n");
        assert_eq!(expand("a: ${EMPTY}\n", &env).unwrap(), "a: \n");
        assert_eq!(expand("a: ${NOPE:-}\n", &env).unwrap(), "a: \n");
        assert_eq!(expand("a: pa$$word $x\n", &env).unwrap(), "a: pa$word $x\n");
        assert_eq!(expand("a: $${HOME}\n", &env).unwrap(), "a: ${HOME}\n");
        assert_eq!(expand("a: ${HOME}${HOME}", &env).unwrap(), "a: /home/me/home/me");
    }

    #[test]
    fn comments_are_not_expanded() {
        let text = "# key: ${UNSET}\na: 1 # ${UNSET}\nb: \"x # ${HOME}\"\n";
        assert_eq!(expand(text, &env).unwrap(), "# key: ${UNSET}\na: 1 # ${UNSET}\nb: \"x # /home/me\"\n");
    }

    #[test]
    fn unset_variable_names_line_and_column() {
        let err = expand("a: 1\nb:\n  c: x-${MISSING}\n", &env).unwrap_err();
        assert_eq!((err.line, err.column), (3, 8));
        assert_eq!(
            err.message,
            "environment variable `MISSING` is not set; set it, add it to an `env_file`, or write `${MISSING:-default}`"
        );
    }

    #[test]
    fn malformed_references() {
        assert!(expand("a: ${HOME\n", &env).unwrap_err().message.contains("unterminated"));
        assert!(expand("a: ${1X}\n", &env).unwrap_err().message.contains("not a variable"));
    }
}
