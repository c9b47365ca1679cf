//! A repository's schedule: `every` (a fixed interval) or a five-field
//! `cron` expression in local time, plus `on_startup` and `jitter_seconds`.
//! A repository's own `schedule` replaces the top level one as a whole.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Local, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use vger_config::{Config, RepositoryConfig, ScheduleConfig};

/// How often a repository runs.
#[derive(Debug, Clone)]
pub enum Cadence {
    /// Every so long, counted from the last run.
    Every(Duration),
    /// At the times a cron expression matches (day of month OR day of week,
    /// as in Vixie cron, when both are restricted).
    Cron(Box<Cron>),
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub cadence: Cadence,
    pub on_startup: bool,
    pub jitter: Duration,
    /// As written in the config, for display and for noticing a change on reload.
    pub text: String,
}

impl Schedule {
    /// The repository's effective schedule; `None` when it is not scheduled.
    pub fn for_repository(config: &Config, repo: &RepositoryConfig) -> Result<Option<Schedule>> {
        let Some(written) = repo.schedule.as_ref().or(config.schedule.as_ref()) else { return Ok(None) };
        if !written.enabled {
            return Ok(None);
        }
        Schedule::parse(written).map(Some).map_err(|e| anyhow!("repository `{}`: {e}", repo.label()))
    }

    pub fn parse(written: &ScheduleConfig) -> Result<Schedule> {
        let cadence = match (&written.every, &written.cron) {
            (Some(every), None) => Cadence::Every(vger_config::parse_interval(every).map_err(|e| anyhow!(e))?),
            (None, Some(cron)) => Cadence::Cron(Box::new(parse_cron(cron)?)),
            (Some(_), Some(_)) => bail!("`schedule` sets both `every` and `cron`; keep one"),
            (None, None) => {
                bail!("`schedule` is enabled but sets neither `every` (e.g. `6h`) nor `cron` (e.g. `0 3 * * *`)")
            }
        };
        let text = match (&written.every, &written.cron) {
            (Some(every), _) => format!("every {every}"),
            (_, Some(cron)) => format!("cron `{cron}`"),
            _ => String::new(),
        };
        let jitter = Duration::from_secs(written.jitter_seconds);
        let text =
            if written.jitter_seconds > 0 { format!("{text} (+ up to {}s)", written.jitter_seconds) } else { text };
        Ok(Schedule { cadence, on_startup: written.on_startup, jitter, text })
    }

    /// The first slot strictly after `t`. For `every` the slots are
    /// `anchor + k * every`; without an anchor, `t + every`.
    pub fn next_slot_after(&self, anchor: Option<DateTime<Utc>>, t: DateTime<Utc>) -> DateTime<Utc> {
        match &self.cadence {
            Cadence::Every(every) => {
                let step = chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX).max(min_step());
                let Some(anchor) = anchor else { return t + step };
                if anchor > t {
                    return anchor;
                }
                let behind = (t - anchor).num_milliseconds();
                let steps = behind / step.num_milliseconds().max(1) + 1;
                anchor + step * i32::try_from(steps).unwrap_or(i32::MAX)
            }
            Cadence::Cron(cron) => cron
                .find_next_occurrence(&t.with_timezone(&Local), false)
                .map(|next| next.with_timezone(&Utc))
                // An expression that never matches again (e.g. 30 February): far away.
                .unwrap_or(t + chrono::Duration::days(366 * 100)),
        }
    }

    /// Whether a slot fell in `(last_run, now]`: the run was missed.
    pub fn missed_since(&self, last_run: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        match &self.cadence {
            Cadence::Every(_) => self.next_slot_after(Some(last_run), last_run) <= now,
            Cadence::Cron(_) => self.next_slot_after(None, last_run) <= now,
        }
    }

    /// A uniformly random delay in `[0, jitter]`.
    pub fn random_jitter(&self) -> chrono::Duration {
        let ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        chrono::Duration::milliseconds(i64::try_from(fastrand::u64(0..=ms)).unwrap_or(0))
    }

    pub fn is_cron(&self) -> bool {
        matches!(self.cadence, Cadence::Cron(_))
    }
}

fn min_step() -> chrono::Duration {
    chrono::Duration::seconds(1)
}

/// Five fields only; day of month and day of week are ORed when both are set.
fn parse_cron(text: &str) -> Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .build()
        .parse(text)
        .map_err(|e| anyhow!("cron expression `{text}` is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;

    use super::*;

    fn every(s: &str) -> Schedule {
        Schedule::parse(&ScheduleConfig { enabled: true, every: Some(s.into()), ..Default::default() }).unwrap()
    }

    fn cron(s: &str) -> Schedule {
        Schedule::parse(&ScheduleConfig { enabled: true, cron: Some(s.into()), ..Default::default() }).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Local.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_keeps_its_grid_and_skips_missed_slots() {
        let s = every("6h");
        let anchor = utc("2026-01-01T00:00:00Z");
        assert_eq!(s.next_slot_after(Some(anchor), utc("2025-12-31T00:00:00Z")), anchor);
        assert_eq!(s.next_slot_after(Some(anchor), anchor), utc("2026-01-01T06:00:00Z"));
        // Slept for a day and a bit: the next slot is the first one ahead, not the four missed.
        assert_eq!(s.next_slot_after(Some(anchor), utc("2026-01-02T01:00:00Z")), utc("2026-01-02T06:00:00Z"));
        assert_eq!(s.next_slot_after(None, anchor), utc("2026-01-01T06:00:00Z"));
    }

    #[test]
    fn missed_runs() {
        let s = every("1h");
        let last = utc("2026-01-01T00:00:00Z");
        assert!(!s.missed_since(last, utc("2026-01-01T00:59:59Z")));
        assert!(s.missed_since(last, utc("2026-01-01T01:00:00Z")));
        let c = cron("0 3 * * *");
        assert!(!c.missed_since(local(2026, 1, 1, 3, 30), local(2026, 1, 2, 2, 59)));
        assert!(c.missed_since(local(2026, 1, 1, 3, 30), local(2026, 1, 2, 3, 1)));
    }

    #[test]
    fn cron_day_of_month_or_day_of_week() {
        // The 1st of the month OR any Monday, as in Vixie cron. 2026-01-01 is a Thursday.
        let c = cron("0 3 1 * 1");
        let after_first = c.next_slot_after(None, local(2026, 1, 1, 4, 0));
        assert_eq!(after_first, local(2026, 1, 5, 3, 0), "the next Monday");
        assert_eq!(c.next_slot_after(None, local(2026, 1, 26, 4, 0)), local(2026, 2, 1, 3, 0), "the 1st");
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(Schedule::parse(&ScheduleConfig { enabled: true, ..Default::default() }).is_err());
        let bad = ScheduleConfig { enabled: true, cron: Some("61 * * * *".into()), ..Default::default() };
        assert!(Schedule::parse(&bad).is_err());
        let six = ScheduleConfig { enabled: true, cron: Some("0 0 3 * * *".into()), ..Default::default() };
        assert!(Schedule::parse(&six).is_err());
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let s = Schedule::parse(&ScheduleConfig {
            enabled: true,
            every: Some("1m".into()),
            jitter_seconds: 2,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..1000 {
            let j = s.random_jitter();
            assert!(j >= chrono::Duration::zero() && j <= chrono::Duration::seconds(2), "{j}");
        }
    }
}
