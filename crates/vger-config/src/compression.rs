//! The `compression` setting: `lz4`, `none`, `zstd` or `zstd:N`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Codec for new chunks. `zstd` alone means level 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Lz4,
    /// Zstandard with a level from 1 to 22.
    Zstd(i32),
}

/// The level `zstd` without a number stands for.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

impl FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hint =
            || format!("unknown compression `{text}`; use `lz4`, `none`, `zstd` or `zstd:N` with N from 1 to 22");
        match text.trim() {
            "none" => Ok(Self::None),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd(DEFAULT_ZSTD_LEVEL)),
            other => {
                let level = other.strip_prefix("zstd:").ok_or_else(hint)?;
                let level: i32 = level.trim().parse().map_err(|_| hint())?;
                if (1..=22).contains(&level) {
                    Ok(Self::Zstd(level))
                } else {
                    Err(format!("zstd level {level} is out of range; use 1 to 22 (3 is the default)"))
                }
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Lz4 => f.write_str("lz4"),
            Self::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Compression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Compression;

    #[test]
    fn parses_and_displays() {
        assert_eq!("lz4".parse::<Compression>().unwrap(), Compression::Lz4);
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd(3));
        assert_eq!("zstd:19".parse::<Compression>().unwrap(), Compression::Zstd(19));
        assert_eq!(Compression::Zstd(7).to_string(), "zstd:7");
        assert_eq!(Compression::default().to_string(), "lz4");
        assert!("zstd:0".parse::<Compression>().is_err());
        assert!("zstd:23".parse::<Compression>().is_err());
        assert!("zstd:x".parse::<Compression>().is_err());
        assert!("gzip".parse::<Compression>().is_err());
    }
}
