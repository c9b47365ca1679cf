//! The daemon's timetable: for each scheduled repository, its next slot and
//! when it is due (the slot plus jitter). Pure logic on wall-clock times,
//! so that missed runs, clock jumps and reloads are decided in one place.
//!
//! - A run missed while the daemon was down (its last run, from the state
//!   file, is a full period ago) or while the machine slept (its due time
//!   is in the past at wake-up) runs once, and the next slot is then the
//!   first one after the run: missed slots are never run one by one.
//! - When the wall clock moves backwards, `every` slots move with it (the
//!   remaining wait stays the same) and cron slots are recomputed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use vger_config::RepositoryConfig;

use super::schedule::Schedule;

/// Why a repository's cycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunReason {
    Schedule,
    /// A slot was missed while the daemon was stopped or the machine slept.
    CatchUp,
    /// `on_startup: true`.
    Startup,
    /// SIGUSR1.
    Signal,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub repo: RepositoryConfig,
    pub schedule: Schedule,
    /// The slot the next run belongs to.
    pub slot: DateTime<Utc>,
    /// The slot plus jitter: when it runs.
    pub due: DateTime<Utc>,
    pub reason: RunReason,
    /// SIGUSR1 asked for a run now; the timetable itself is unchanged.
    pub run_now: bool,
}

impl Job {
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.run_now || self.due <= now
    }

    /// The reason of the run that starts now.
    pub fn current_reason(&self, now: DateTime<Utc>) -> RunReason {
        if self.run_now && self.due > now {
            RunReason::Signal
        } else {
            self.reason
        }
    }

    fn set_slot(&mut self, slot: DateTime<Utc>, reason: RunReason) {
        self.slot = slot;
        self.due = slot + self.schedule.random_jitter();
        self.reason = reason;
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
}

impl Plan {
    /// Plans each repository from its last run (`last_run` reads the state
    /// file). `startup` honours `on_startup` (not on a reload).
    pub fn new(
        scheduled: Vec<(RepositoryConfig, Schedule)>,
        last_run: impl Fn(&RepositoryConfig) -> Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        startup: bool,
    ) -> Plan {
        let jobs = scheduled
            .into_iter()
            .map(|(repo, schedule)| {
                let last = last_run(&repo);
                let mut job = Job { repo, schedule, slot: now, due: now, reason: RunReason::Schedule, run_now: false };
                if startup && job.schedule.on_startup {
                    job.set_slot(now, RunReason::Startup);
                } else if last.is_some_and(|l| l <= now && job.schedule.missed_since(l, now)) {
                    job.set_slot(now, RunReason::CatchUp);
                } else {
                    let anchor = last.filter(|l| *l <= now).map(|l| job.schedule.next_slot_after(None, l));
                    let slot = match anchor {
                        Some(a) if !job.schedule.is_cron() => a,
                        _ => job.schedule.next_slot_after(None, now),
                    };
                    job.set_slot(slot, RunReason::Schedule);
                }
                job
            })
            .collect();
        Plan { jobs }
    }

    /// After a reload: repositories whose URL, label and schedule did not
    /// change keep their timetable; the others are planned afresh.
    pub fn merge_reloaded(&self, mut fresh: Plan) -> Plan {
        for job in &mut fresh.jobs {
            let same = self.jobs.iter().find(|old| {
                old.repo.url == job.repo.url
                    && old.repo.label() == job.repo.label()
                    && old.schedule.text == job.schedule.text
            });
            if let Some(old) = same {
                job.slot = old.slot;
                job.due = old.due;
                job.reason = old.reason;
                job.run_now = old.run_now;
            }
        }
        fresh
    }

    /// The job due first among those due at `now`.
    pub fn first_due(&self, now: DateTime<Utc>) -> Option<usize> {
        self.jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.is_due(now))
            .min_by_key(|(_, j)| if j.run_now { DateTime::<Utc>::MIN_UTC } else { j.due })
            .map(|(i, _)| i)
    }

    /// When the next job is due (`None`: nothing is scheduled).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.jobs.iter().map(|j| j.due).min()
    }

    /// SIGUSR1: every repository runs now, one after the other.
    pub fn run_all_now(&mut self) {
        for job in &mut self.jobs {
            job.run_now = true;
        }
    }

    /// Reschedules a job after its run ended at `finished`. A run asked for
    /// by SIGUSR1 before the job's own time leaves the timetable as it was.
    pub fn after_run(&mut self, index: usize, finished: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(index) else { return };
        let was_early = job.run_now && job.due > finished;
        job.run_now = false;
        if was_early {
            return;
        }
        let anchor = (!job.schedule.is_cron()).then_some(job.slot);
        let next = job.schedule.next_slot_after(anchor, finished.max(job.slot));
        job.set_slot(next, RunReason::Schedule);
    }

    /// The wall clock moved back by `by`: `every` slots move back with it;
    /// cron slots are recomputed from the new time.
    pub fn clock_moved_back(&mut self, by: chrono::Duration, now: DateTime<Utc>) {
        for job in &mut self.jobs {
            if job.schedule.is_cron() {
                let slot = job.schedule.next_slot_after(None, now);
                job.set_slot(slot, job.reason);
            } else {
                job.slot -= by;
                job.due -= by;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use vger_config::ScheduleConfig;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn job(label: &str, every: &str, on_startup: bool) -> (RepositoryConfig, Schedule) {
        let repo = RepositoryConfig { url: format!("/r/{label}"), label: Some(label.into()), ..Default::default() };
        let schedule = Schedule::parse(&ScheduleConfig {
            enabled: true,
            every: Some(every.into()),
            on_startup,
            ..Default::default()
        })
        .unwrap();
        (repo, schedule)
    }

    #[test]
    fn first_start_waits_one_period_unless_on_startup() {
        let now = utc("2026-03-01T12:00:00Z");
        let plan = Plan::new(vec![job("a", "1h", false), job("b", "1h", true)], |_| None, now, true);
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T13:00:00Z"));
        assert_eq!(plan.jobs[1].due, now);
        assert_eq!(plan.jobs[1].reason, RunReason::Startup);
        assert_eq!(plan.first_due(now), Some(1));
    }

    #[test]
    fn a_run_missed_while_down_runs_once() {
        let now = utc("2026-03-01T12:00:00Z");
        let last = utc("2026-02-27T00:00:00Z"); // ~60 slots ago
        let mut plan = Plan::new(vec![job("a", "1h", false)], |_| Some(last), now, true);
        assert_eq!(plan.jobs[0].reason, RunReason::CatchUp);
        assert_eq!(plan.first_due(now), Some(0));
        plan.after_run(0, utc("2026-03-01T12:00:05Z"));
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T13:00:00Z"), "the next slot, not the missed ones");
        assert_eq!(plan.first_due(utc("2026-03-01T12:59:59Z")), None);
    }

    #[test]
    fn a_recent_run_keeps_its_cadence_across_restarts() {
        let now = utc("2026-03-01T12:00:00Z");
        let plan = Plan::new(vec![job("a", "1h", false)], |_| Some(utc("2026-03-01T11:40:00Z")), now, true);
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T12:40:00Z"));
    }

    #[test]
    fn sleeping_through_many_slots_runs_once() {
        let start = utc("2026-03-01T12:00:00Z");
        let mut plan = Plan::new(vec![job("a", "10m", false)], |_| None, start, true);
        let wake = utc("2026-03-01T18:03:00Z");
        assert_eq!(plan.first_due(wake), Some(0));
        plan.after_run(0, wake);
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T18:10:00Z"));
    }

    #[test]
    fn signal_runs_leave_the_timetable_alone() {
        let now = utc("2026-03-01T12:00:00Z");
        let mut plan = Plan::new(vec![job("a", "1h", false)], |_| None, now, true);
        plan.run_all_now();
        assert_eq!(plan.jobs[0].current_reason(now), RunReason::Signal);
        assert_eq!(plan.first_due(now), Some(0));
        plan.after_run(0, utc("2026-03-01T12:00:10Z"));
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T13:00:00Z"));
        assert_eq!(plan.first_due(utc("2026-03-01T12:30:00Z")), None);
    }

    #[test]
    fn clock_moving_back_keeps_the_remaining_wait() {
        let now = utc("2026-03-01T12:00:00Z");
        let mut plan = Plan::new(vec![job("a", "1h", false)], |_| None, now, true);
        let back = chrono::Duration::hours(5);
        plan.clock_moved_back(back, now - back);
        assert_eq!(plan.jobs[0].due, utc("2026-03-01T08:00:00Z"));
    }

    #[test]
    fn reload_keeps_unchanged_jobs() {
        let now = utc("2026-03-01T12:00:00Z");
        let old = Plan::new(vec![job("a", "1h", false), job("b", "1h", false)], |_| None, now, true);
        let later = utc("2026-03-01T12:30:00Z");
        let fresh = Plan::new(
            vec![job("a", "1h", false), job("b", "2h", false), job("c", "1h", false)],
            |_| None,
            later,
            false,
        );
        let merged = old.merge_reloaded(fresh);
        assert_eq!(merged.jobs[0].due, utc("2026-03-01T13:00:00Z"), "unchanged");
        assert_eq!(merged.jobs[1].due, utc("2026-03-01T14:30:00Z"), "new schedule");
        assert_eq!(merged.jobs[2].due, utc("2026-03-01T13:30:00Z"), "new repository");
    }
}
