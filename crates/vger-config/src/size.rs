//! Byte sizes written as `512KiB`, `2MiB`, `8M`, `1GB` or a plain integer.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// Parses a size: an integer number of bytes with an optional unit.
///
/// `B`; `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` are powers of 1024;
/// `KB`, `MB`, `GB`, `TB` are powers of 1000. Units are case-insensitive and
/// may be separated from the number by spaces.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. `4096`, `512KiB` or `2MiB`"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
            "unknown size unit `{other}` in `{text}`; use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB for powers of 1000)"
        ))
        }
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("size `{text}` is too large"))
}

/// Serde helper: a size given as an integer or a string with a unit.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(SizeVisitor)
}

/// Serde helper: an optional size (absent or `null`: `None`).
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Size(#[serde(deserialize_with = "deserialize")] u64);
    Ok(<Option<Size> as serde::Deserialize>::deserialize(deserializer)?.map(|s| s.0))
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size such as `4096`, `512KiB` or `2MiB`")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom(format!("size `{value}` must not be negative")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
        parse_size(value).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_size;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert_eq!(parse_size("8m").unwrap(), 8 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("3KB").unwrap(), 3000);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("10B").unwrap(), 10);
        assert_eq!(parse_size("1_048_576").unwrap(), 1 << 20);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("-1").is_err());
        let err = parse_size("4 parsecs").unwrap_err();
        assert!(err.contains("unknown size unit `parsecs`"), "{err}");
        assert!(parse_size("99999999999TiB").unwrap_err().contains("too large"));
    }
}
