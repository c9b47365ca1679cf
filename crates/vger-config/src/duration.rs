//! Time spans in the config: schedule intervals (`30m`, `6h`) and retention
//! periods (`12h`, `2d`, `3w`, `6m`, `1y`, where `m` means months).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The unit of a [`Period`]. Months and years are calendar units, so the
/// retention code resolves them against real dates rather than fixed seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

/// A retention period such as `keep_within: 2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub unit: PeriodUnit,
}

/// Parses a period: a positive whole number followed by `h`, `d`, `w`, `m` (months) or `y`.
pub fn parse_period(text: &str) -> Result<Period, String> {
    let (count, unit) = split_number(text).ok_or_else(|| period_hint(text))?;
    let unit = match unit {
        "h" => PeriodUnit::Hours,
        "d" => PeriodUnit::Days,
        "w" => PeriodUnit::Weeks,
        "m" => PeriodUnit::Months,
        "y" => PeriodUnit::Years,
        _ => return Err(period_hint(text)),
    };
    Ok(Period { count, unit })
}

fn period_hint(text: &str) -> String {
    format!("`{text}` is not a period; write a number and a unit h, d, w, m (months) or y, e.g. `2d`, `3w`, `6m`, `1y`")
}

/// Parses a schedule interval: a positive whole number followed by `s`, `m` (minutes), `h` or `d`.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let hint = || {
        format!("`{text}` is not an interval; write a number and a unit s, m (minutes), h or d, e.g. `30m`, `6h`, `1d`")
    };
    let (count, unit) = split_number(text).ok_or_else(hint)?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(hint()),
    };
    Ok(Duration::from_secs(u64::from(count) * seconds_per_unit))
}

/// Splits `12h` into `(12, "h")`; `None` unless the number is a positive integer.
fn split_number(text: &str) -> Option<(u32, &str)> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits_end);
    let count: u32 = number.parse().ok()?;
    (count > 0).then_some((count, unit.trim()))
}

/// Checks a cron expression's shape only: five whitespace-separated fields.
pub(crate) fn check_cron(text: &str) -> Result<(), String> {
    let fields = text.split_whitespace().count();
    if fields == 5 {
        Ok(())
    } else {
        Err(format!(
            "cron expression `{text}` has {fields} fields; write 5 (minute hour day-of-month month day-of-week), e.g. `0 3 * * *`"
        ))
    }
}

/// Serde helper: an optional string that must parse as a [`Period`].
pub(crate) fn deserialize_period<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    checked_string(deserializer, |s| parse_period(s).map(drop))
}

/// Serde helper: an optional string that must parse as an interval.
pub(crate) fn deserialize_interval<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    checked_string(deserializer, |s| parse_interval(s).map(drop))
}

/// Serde helper: an optional five-field cron expression.
pub(crate) fn deserialize_cron<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    checked_string(deserializer, check_cron)
}

fn checked_string<'de, D: Deserializer<'de>>(
    deserializer: D,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &value {
        check(text).map_err(serde::de::Error::custom)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("2d").unwrap(), Period { count: 2, unit: PeriodUnit::Days });
        assert_eq!(parse_period("6m").unwrap().unit, PeriodUnit::Months);
        assert_eq!(parse_period("1y").unwrap().unit, PeriodUnit::Years);
        assert_eq!(parse_period("3w").unwrap().unit, PeriodUnit::Weeks);
        assert_eq!(parse_period("12h").unwrap().unit, PeriodUnit::Hours);
        for bad in ["", "d", "0d", "2", "2x", "-1d", "1.5d", "2 days"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_interval("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(parse_interval("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_interval("45s").unwrap(), Duration::from_secs(45));
        for bad in ["", "1w", "0m", "m", "1.5h"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_shape() {
        assert!(check_cron("0 3 * * *").is_ok());
        assert!(check_cron("0 3 * *").is_err());
        assert!(check_cron("0 0 3 * * *").is_err());
    }
}
