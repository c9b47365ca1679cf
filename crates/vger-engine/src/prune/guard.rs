//! The guard against retention flooding.
//!
//! A stolen client with an append token and the key can write many
//! snapshots with its victim's source label and host; count-based rules
//! (`keep_last`, and `keep_hourly` within the time a client may claim)
//! then rank the planted snapshots above the real ones, and the next
//! `prune` with a full token would delete the real ones.
//!
//! On storage that records when it received each object (vger-server),
//! the guard looks at those receipt times, which no client can set. Real
//! backups arrive at the pace of their schedule; a flood arrives in a
//! burst. For each group of snapshots (source label and host), arrivals
//! are counted per hour and per day; a period holding more than
//! [`BURST_FACTOR`] times the group's usual count for such a period (the
//! median over the periods that have any, and at least
//! [`BURST_FLOOR`]) is a burst, and the snapshots in it are suspicious.
//!
//! A normal run is the policy applied as if the suspicious snapshots were
//! not there. Any snapshot the real run would delete but the normal run
//! keeps is deleted only because of the burst: prune holds the whole run
//! back (without `--force`) and names the suspicious snapshots, their
//! receipt times and the tokens that wrote them.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use vger_format::id::SnapshotId;

use crate::retention::{apply, RetentionPolicy};
use crate::snapshots::{short_id, SnapshotInfo};

/// A period is a burst when it holds more than this many times the usual.
pub const BURST_FACTOR: usize = 3;
/// ... and more than this many snapshots, whatever the usual.
pub const BURST_FLOOR: usize = 3;

/// Periods over which arrivals are counted: an hour and a day, in seconds.
const PERIODS: [(i64, &str); 2] = [(3600, "hour"), (86_400, "day")];

/// A snapshot that arrived in a burst.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    pub id: String,
    pub source_label: String,
    pub hostname: String,
    /// When the server received it (unix seconds).
    pub received: u64,
    /// The token that wrote it, as the server recorded it.
    pub writer: Option<String>,
    /// Why it is suspicious, e.g. `12 snapshots in the hour from ...`.
    pub reason: String,
}

/// What the guard found in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodReport {
    pub suspects: Vec<Suspect>,
    /// Snapshots the policy would delete only because of the suspects.
    pub held: Vec<String>,
}

impl FloodReport {
    pub fn is_empty(&self) -> bool {
        self.suspects.is_empty() && self.held.is_empty()
    }

    /// Adds what the guard finds among `snapshots` (one source label) under
    /// `policy` at time `now`; `writers` names who wrote each snapshot.
    pub fn check(
        &mut self,
        policy: &RetentionPolicy,
        snapshots: &[SnapshotInfo],
        writers: &HashMap<SnapshotId, String>,
        now: DateTime<Utc>,
    ) {
        let mut groups: BTreeMap<&str, Vec<&SnapshotInfo>> = BTreeMap::new();
        for s in snapshots {
            groups.entry(s.snapshot.hostname.as_str()).or_default().push(s);
        }
        for group in groups.into_values() {
            let suspects = bursts(&group);
            if suspects.is_empty() {
                continue;
            }
            let all: Vec<SnapshotInfo> = group.iter().map(|s| (*s).clone()).collect();
            let clean: Vec<SnapshotInfo> = all.iter().filter(|s| !suspects.contains_key(&s.id)).cloned().collect();
            let kept_without: HashSet<String> =
                apply(policy, &clean, now).into_iter().filter(|d| d.keep).map(|d| d.id).collect();
            let held: Vec<String> = apply(policy, &all, now)
                .into_iter()
                .filter(|d| !d.keep && kept_without.contains(&d.id))
                .map(|d| d.id)
                .collect();
            for s in &group {
                if let Some(reason) = suspects.get(&s.id) {
                    self.suspects.push(Suspect {
                        id: s.id.to_hex(),
                        source_label: s.snapshot.source_label.clone(),
                        hostname: s.snapshot.hostname.clone(),
                        received: s.stored_at.unwrap_or(0),
                        writer: writers.get(&s.id).cloned(),
                        reason: reason.clone(),
                    });
                }
            }
            self.held.extend(held);
        }
    }
}

/// The snapshots of one group that arrived in a burst, with the reason.
fn bursts(group: &[&SnapshotInfo]) -> HashMap<SnapshotId, String> {
    let mut suspects = HashMap::new();
    for (seconds, name) in PERIODS {
        let mut periods: BTreeMap<i64, Vec<SnapshotId>> = BTreeMap::new();
        for s in group {
            let Some(received) = s.stored_at.and_then(|t| i64::try_from(t).ok()) else { continue };
            periods.entry(received.div_euclid(seconds)).or_default().push(s.id);
        }
        let mut counts: Vec<usize> = periods.values().map(Vec::len).collect();
        counts.sort_unstable();
        let usual = counts.get(counts.len() / 2).copied().unwrap_or(0);
        let limit = BURST_FLOOR.max(BURST_FACTOR * usual);
        for (period, ids) in periods {
            if ids.len() <= limit {
                continue;
            }
            let start = DateTime::from_timestamp(period * seconds, 0).unwrap_or_default();
            let reason = format!(
                "{} snapshots arrived in the {name} from {} (usually {usual})",
                ids.len(),
                start.format("%Y-%m-%d %H:%M UTC")
            );
            for id in ids {
                suspects.entry(id).or_insert_with(|| reason.clone());
            }
        }
    }
    suspects
}

/// One line per suspicious snapshot, for messages.
pub fn describe(suspect: &Suspect) -> String {
    let received = DateTime::from_timestamp(suspect.received as i64, 0).unwrap_or_default();
    let writer = suspect.writer.as_deref().map_or("an unknown token".to_owned(), |w| format!("token `{w}`"));
    let id = SnapshotId::from_hex(&suspect.id).map(|id| short_id(&id)).unwrap_or_else(|_| suspect.id.clone());
    format!(
        "{id} ({} on {}) received {} from {writer}: {}",
        suspect.source_label,
        suspect.hostname,
        received.format("%Y-%m-%d %H:%M:%S UTC"),
        suspect.reason
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::retention::test_snapshot;

    const DAY: u64 = 86_400;
    const START: u64 = 1_780_000_000;

    fn id(n: u16) -> SnapshotId {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        SnapshotId(bytes)
    }

    fn snap(n: u16, received: u64) -> SnapshotInfo {
        let time = DateTime::from_timestamp(received as i64, 0).unwrap().to_rfc3339();
        SnapshotInfo { stored_at: Some(received), ..test_snapshot(id(n), &time, "docs", "laptop") }
    }

    fn now(after: u64) -> DateTime<Utc> {
        DateTime::from_timestamp(after as i64, 0).unwrap()
    }

    fn keep_last(n: u32) -> RetentionPolicy {
        RetentionPolicy { keep_last: Some(n), ..Default::default() }
    }

    #[test]
    fn daily_backups_pruned_daily_raise_nothing() {
        let snaps: Vec<_> = (0..30u16).map(|i| snap(i, START + u64::from(i) * DAY)).collect();
        let mut report = FloodReport::default();
        report.check(&keep_last(7), &snaps, &HashMap::new(), now(START + 30 * DAY));
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn hourly_backups_pruned_weekly_raise_nothing() {
        let snaps: Vec<_> = (0..24 * 7u16).map(|i| snap(i, START + u64::from(i) * 3600 + 60)).collect();
        let policy = RetentionPolicy { keep_hourly: Some(24), keep_daily: Some(7), ..Default::default() };
        let mut report = FloodReport::default();
        report.check(&policy, &snaps, &HashMap::new(), now(START + 8 * DAY));
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn a_burst_that_pushes_real_snapshots_out_is_held() {
        let mut snaps: Vec<_> = (0..5u16).map(|i| snap(i, START + u64::from(i) * DAY)).collect();
        let flood_start = START + 5 * DAY;
        snaps.extend((0..10u16).map(|i| snap(100 + i, flood_start + u64::from(i) * 5)));
        let writers: HashMap<_, _> = (0..10u16).map(|i| (id(100 + i), "thief".to_owned())).collect();
        let mut report = FloodReport::default();
        report.check(&keep_last(5), &snaps, &writers, now(flood_start + 3600));
        assert_eq!(report.suspects.len(), 10, "{report:?}");
        assert!(report.suspects.iter().all(|s| s.writer.as_deref() == Some("thief")));
        assert!(report.suspects[0].reason.contains("10 snapshots arrived in the hour"), "{report:?}");
        let real: HashSet<String> = (0..5u16).map(|i| id(i).to_hex()).collect();
        assert_eq!(report.held.iter().cloned().collect::<HashSet<_>>(), real);
        assert!(describe(&report.suspects[0]).contains("token `thief`"));
    }

    #[test]
    fn a_burst_that_pushes_nothing_out_only_names_itself() {
        let mut snaps: Vec<_> = (0..5u16).map(|i| snap(i, START + u64::from(i) * DAY)).collect();
        snaps.extend((0..10u16).map(|i| snap(100 + i, START + 5 * DAY + u64::from(i))));
        let policy = RetentionPolicy { keep_daily: Some(30), ..Default::default() };
        let mut report = FloodReport::default();
        report.check(&policy, &snaps, &HashMap::new(), now(START + 6 * DAY));
        assert_eq!(report.suspects.len(), 10);
        assert!(report.held.is_empty(), "{report:?}");
    }
}
