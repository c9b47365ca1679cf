//! Retention: which snapshots `prune` keeps, and why.
//!
//! Rules apply to each group of snapshots with the same source label and
//! host. Within a group, newest first: `keep_last` keeps the N newest;
//! `keep_hourly`/`daily`/`weekly`/`monthly`/`yearly` keep the newest
//! snapshot of each of the N most recent hours/days/... that have one
//! (calendar periods in UTC, ISO weeks); `keep_within` keeps everything
//! newer than now minus the duration. A snapshot is kept if any rule keeps
//! it; each kept snapshot lists the rules that keep it.

use chrono::{DateTime, Datelike, Months, Timelike, Utc};
use serde::Serialize;

use crate::snapshots::SnapshotInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// Keep everything newer than this (e.g. "2d", "3w", "6m", "1y").
    pub keep_within: Option<Within>,
}

/// A `keep_within` duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    Hours(u32),
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Within {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
        let n: u32 = num.parse().ok()?;
        Some(match unit {
            "h" => Within::Hours(n),
            "d" => Within::Days(n),
            "w" => Within::Weeks(n),
            "m" => Within::Months(n),
            "y" => Within::Years(n),
            _ => return None,
        })
    }

    fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            // A span past chrono's range (4294967295h is 490,000 years)
            // keeps everything rather than panicking on the subtraction.
            Within::Hours(n) => now.checked_sub_signed(chrono::Duration::hours(n.into())),
            Within::Days(n) => now.checked_sub_signed(chrono::Duration::days(n.into())),
            Within::Weeks(n) => now.checked_sub_signed(chrono::Duration::weeks(n.into())),
            Within::Months(n) => now.checked_sub_months(Months::new(n)),
            Within::Years(n) => now.checked_sub_months(Months::new(n.saturating_mul(12))),
        }
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }
}

/// The decision for one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub id: String,
    pub time: String,
    pub source_label: String,
    pub hostname: String,
    pub keep: bool,
    /// The rules that keep it (empty when it goes).
    pub reasons: Vec<String>,
}

/// Applies `policy` to `snapshots` (any order) at time `now`.
pub fn apply(policy: &RetentionPolicy, snapshots: &[SnapshotInfo], now: DateTime<Utc>) -> Vec<Decision> {
    type Group<'a> = Vec<(DateTime<Utc>, &'a SnapshotInfo)>;
    let mut groups: std::collections::BTreeMap<(String, String), Group<'_>> = Default::default();
    for s in snapshots {
        let t = DateTime::parse_from_rfc3339(&s.snapshot.time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        groups.entry((s.snapshot.source_label.clone(), s.snapshot.hostname.clone())).or_default().push((t, s));
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); group.len()];
        if let Some(n) = policy.keep_last {
            for r in reasons.iter_mut().take(n as usize) {
                r.push("last".into());
            }
        }
        type Bucket = fn(&DateTime<Utc>) -> i64;
        let periodic: [(&str, Option<u32>, Bucket); 5] = [
            ("hourly", policy.keep_hourly, |t| t.timestamp().div_euclid(3600)),
            ("daily", policy.keep_daily, |t| i64::from(t.year()) * 1000 + i64::from(t.ordinal())),
            ("weekly", policy.keep_weekly, |t| {
                let w = t.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }),
            ("monthly", policy.keep_monthly, |t| i64::from(t.year()) * 100 + i64::from(t.month())),
            ("yearly", policy.keep_yearly, |t| i64::from(t.year())),
        ];
        for (name, count, bucket) in periodic {
            let Some(mut left) = count else { continue };
            let mut last_bucket = None;
            for (i, (t, _)) in group.iter().enumerate() {
                if left == 0 {
                    break;
                }
                let b = bucket(t);
                if last_bucket != Some(b) {
                    last_bucket = Some(b);
                    reasons[i].push(format!("{name} ({})", describe_bucket(name, t)));
                    left -= 1;
                }
            }
        }
        if let Some(w) = policy.keep_within {
            let cutoff = w.cutoff(now);
            for (i, (t, _)) in group.iter().enumerate() {
                if *t >= cutoff {
                    reasons[i].push("within".into());
                }
            }
        }
        for ((_, s), r) in group.iter().zip(reasons) {
            out.push(Decision {
                id: s.id.to_hex(),
                time: s.snapshot.time.clone(),
                source_label: s.snapshot.source_label.clone(),
                hostname: s.snapshot.hostname.clone(),
                keep: !r.is_empty(),
                reasons: r,
            });
        }
    }
    out
}

fn describe_bucket(name: &str, t: &DateTime<Utc>) -> String {
    match name {
        "hourly" => format!("{}-{:02}", t.format("%Y-%m-%d"), t.hour()),
        "daily" => t.format("%Y-%m-%d").to_string(),
        "weekly" => {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        "monthly" => t.format("%Y-%m").to_string(),
        _ => t.format("%Y").to_string(),
    }
}

/// A snapshot with only what retention looks at, for tests.
#[cfg(test)]
pub(crate) fn test_snapshot(id: vger_format::id::SnapshotId, time: &str, label: &str, host: &str) -> SnapshotInfo {
    SnapshotInfo {
        id,
        snapshot: vger_format::snapshot::Snapshot {
            version: vger_format::snapshot::SNAPSHOT_VERSION,
            time: time.into(),
            end_time: String::new(),
            hostname: host.into(),
            username: String::new(),
            source_label: label.into(),
            paths: vec![],
            root: vger_format::id::ChunkId([0; 32]),
            stats: Default::default(),
            parent: None,
            tags: vec![],
            xattrs: false,
            copied_from: None,
        },
        stored_at: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use vger_format::id::SnapshotId;

    fn snap(i: u8, time: &str, label: &str) -> SnapshotInfo {
        test_snapshot(SnapshotId([i; 32]), time, label, "h")
    }

    fn kept(d: &[Decision]) -> Vec<String> {
        d.iter().filter(|d| d.keep).map(|d| d.time[..13].to_string()).collect()
    }

    #[test]
    fn daily_keeps_newest_of_each_day() {
        let snaps: Vec<_> =
            (0..10u8).map(|i| snap(i, &format!("2026-10-{:02}T{:02}:00:00Z", 1 + i / 2, 10 + i % 2), "a")).collect();
        let p = RetentionPolicy { keep_daily: Some(3), ..Default::default() };
        let d = apply(&p, &snaps, Utc::now());
        assert_eq!(kept(&d), vec!["2026-10-05T11", "2026-10-04T11", "2026-10-03T11"]);
    }

    #[test]
    fn last_and_monthly_combine_with_reasons() {
        let snaps = vec![
            snap(1, "2026-08-15T00:00:00Z", "a"),
            snap(2, "2026-09-01T00:00:00Z", "a"),
            snap(3, "2026-09-20T00:00:00Z", "a"),
            snap(4, "2026-10-01T00:00:00Z", "a"),
        ];
        let p = RetentionPolicy { keep_last: Some(1), keep_monthly: Some(2), ..Default::default() };
        let d = apply(&p, &snaps, Utc::now());
        assert_eq!(kept(&d), vec!["2026-10-01T00", "2026-09-20T00"]);
        assert_eq!(d[0].reasons, vec!["last".to_string(), "monthly (2026-10)".to_string()]);
    }

    #[test]
    fn groups_are_separate_and_within_uses_now() {
        let now = DateTime::parse_from_rfc3339("2026-10-10T00:00:00Z").unwrap().with_timezone(&Utc);
        let snaps = vec![
            snap(1, "2026-10-09T00:00:00Z", "a"),
            snap(2, "2026-10-01T00:00:00Z", "a"),
            snap(3, "2026-09-01T00:00:00Z", "b"),
        ];
        let p = RetentionPolicy { keep_within: Within::parse("2d"), keep_last: Some(1), ..Default::default() };
        let d = apply(&p, &snaps, now);
        assert_eq!(kept(&d), vec!["2026-10-09T00", "2026-09-01T00"]);
    }

    /// A span past chrono's range (from a config value) panicked on the
    /// subtraction; found while writing the fuzz targets.
    #[test]
    fn within_past_the_calendar_keeps_everything() {
        let snaps = vec![snap(1, "1970-01-01T00:00:00Z", "a"), snap(2, "2026-10-01T00:00:00Z", "a")];
        for spec in ["4294967295h", "4294967295d", "4294967295w", "4294967295m", "4294967295y"] {
            let p = RetentionPolicy { keep_within: Within::parse(spec), ..Default::default() };
            assert_eq!(kept(&apply(&p, &snaps, Utc::now())).len(), 2, "{spec}");
        }
    }

    #[test]
    fn within_parses() {
        assert_eq!(Within::parse("3w"), Some(Within::Weeks(3)));
        assert_eq!(Within::parse("1y"), Some(Within::Years(1)));
        assert_eq!(Within::parse("x"), None);
        assert_eq!(Within::parse("5"), None);
    }
}
