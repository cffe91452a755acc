//! The unified view of a job across its sites, and the rule that derives its
//! overall state (documented in docs/federation.md):
//!
//! 1. Every site finished (its child job is terminal, or the site refused or never
//!    received the job):
//!    all `COMPLETED` → `COMPLETED`; all `CANCELLED` → `CANCELLED`; all failed
//!    (`FAILED` or refused) → `FAILED`; at least one `COMPLETED` among other
//!    outcomes → `PARTIALLY_COMPLETED`; otherwise (failed and cancelled sites) →
//!    `CANCELLED` if a cancel was asked, else `FAILED`.
//! 2. Otherwise: a cancel was asked → `CANCELLING`; some site has started or
//!    finished → `RUNNING`; else `PENDING`.
//!
//! Staleness never changes the state; it is shown next to it. A site's status is
//! stale when the site is `UNREACHABLE` or was last heard from more than two poll
//! intervals ago, and the view then says so (per site and overall) with the age.

use std::collections::BTreeMap;

use meridian_wire::states::JobState;
use meridian_wire::time::rfc3339_from_millis;
use meridian_wire::{FindingCounts, ObjectCounts};
use serde::{Deserialize, Serialize};

use crate::store::{CancelState, DispatchState, JobRow, SiteJobRow, SiteRow};

/// The overall state of a federated job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OverallState {
    Pending,
    Running,
    Cancelling,
    Completed,
    PartiallyCompleted,
    Failed,
    Cancelled,
}

impl OverallState {
    pub fn as_str(self) -> &'static str {
        match self {
            OverallState::Pending => "PENDING",
            OverallState::Running => "RUNNING",
            OverallState::Cancelling => "CANCELLING",
            OverallState::Completed => "COMPLETED",
            OverallState::PartiallyCompleted => "PARTIALLY_COMPLETED",
            OverallState::Failed => "FAILED",
            OverallState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OverallState> {
        ALL_STATES.iter().copied().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OverallState::Completed
                | OverallState::PartiallyCompleted
                | OverallState::Failed
                | OverallState::Cancelled
        )
    }
}

pub const ALL_STATES: [OverallState; 7] = [
    OverallState::Pending,
    OverallState::Running,
    OverallState::Cancelling,
    OverallState::Completed,
    OverallState::PartiallyCompleted,
    OverallState::Failed,
    OverallState::Cancelled,
];

/// What one site contributes to the overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Waiting,
    Started,
    Completed,
    Failed,
    Cancelled,
}

fn outcome(sj: &SiteJobRow) -> Outcome {
    match sj.dispatch_state {
        DispatchState::Rejected => return Outcome::Failed,
        DispatchState::Skipped => return Outcome::Cancelled,
        DispatchState::Pending | DispatchState::Dispatched => {}
    }
    match sj.status.as_ref().map(|s| s.state) {
        None | Some(JobState::Pending) => Outcome::Waiting,
        Some(JobState::Running) | Some(JobState::Cancelling) => Outcome::Started,
        Some(JobState::Completed) => Outcome::Completed,
        Some(JobState::Failed) => Outcome::Failed,
        Some(JobState::Cancelled) => Outcome::Cancelled,
    }
}

/// The rule of the module comment.
pub fn overall_state(site_jobs: &[SiteJobRow], cancel_requested: bool) -> OverallState {
    let outcomes: Vec<Outcome> = site_jobs.iter().map(outcome).collect();
    let finished =
        |o: &Outcome| matches!(o, Outcome::Completed | Outcome::Failed | Outcome::Cancelled);
    if !outcomes.is_empty() && outcomes.iter().all(finished) {
        let all = |x: Outcome| outcomes.iter().all(|o| *o == x);
        return if all(Outcome::Completed) {
            OverallState::Completed
        } else if all(Outcome::Cancelled) {
            OverallState::Cancelled
        } else if all(Outcome::Failed) {
            OverallState::Failed
        } else if outcomes.contains(&Outcome::Completed) {
            OverallState::PartiallyCompleted
        } else if cancel_requested {
            OverallState::Cancelled
        } else {
            OverallState::Failed
        };
    }
    if cancel_requested {
        OverallState::Cancelling
    } else if outcomes.iter().any(|o| *o != Outcome::Waiting) {
        OverallState::Running
    } else {
        OverallState::Pending
    }
}

/// One site's line in the unified view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteView {
    pub site: String,
    pub data_sources: Vec<String>,
    /// The child job's state; `DISPATCHING`, `REJECTED` or `SKIPPED` before the site holds one.
    pub state: String,
    pub dispatch: DispatchState,
    /// `start_job` calls made so far (more than one after a retry).
    pub dispatch_attempts: i64,
    pub cancel: CancelState,
    /// Terminal tasks / all tasks, 0..=1.
    pub progress: f64,
    pub tasks_total: i64,
    pub objects: ObjectCounts,
    pub findings: FindingCounts,
    pub site_reachability: String,
    pub last_polled_at: Option<String>,
    pub last_seen_at: Option<String>,
    /// Age of what is shown, in seconds since the site last answered.
    pub status_age_seconds: Option<f64>,
    pub stale: bool,
    pub error: Option<String>,
}

/// The unified view of a job (`GET /api/v1/jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub name: String,
    pub state: OverallState,
    pub cancel_requested: bool,
    pub created_at: String,
    pub request: serde_json::Value,
    pub tasks: TaskTotals,
    pub objects: ObjectCounts,
    pub findings: FindingCounts,
    /// True when any site's part is stale; `stale_sites` names them.
    pub stale: bool,
    pub stale_sites: Vec<String>,
    pub sites: Vec<SiteView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskTotals {
    pub total: i64,
    pub by_state: BTreeMap<String, i64>,
}

fn add_map(into: &mut BTreeMap<String, i64>, from: &BTreeMap<String, i64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Builds the view; `stale_after_ms` is two poll intervals.
pub fn job_view(
    job: &JobRow,
    site_jobs: &[SiteJobRow],
    sites: &[SiteRow],
    now_ms: i64,
    stale_after_ms: i64,
) -> JobView {
    let mut tasks = TaskTotals::default();
    let mut objects = ObjectCounts::default();
    let mut findings = FindingCounts::default();
    let mut views = Vec::with_capacity(site_jobs.len());
    for sj in site_jobs {
        let site = sites.iter().find(|s| s.name == sj.site);
        let reach = site
            .map(|s| s.reachability.clone())
            .unwrap_or_else(|| "UNKNOWN".into());
        let last_seen = site.and_then(|s| s.last_seen_at);
        let age_ms = last_seen.map(|t| (now_ms - t).max(0));
        let stale = reach == "UNREACHABLE" || age_ms.is_none_or(|a| a > stale_after_ms);
        let (state, progress, total, obj, fnd) = match &sj.status {
            Some(st) => {
                tasks.total += st.tasks.total;
                add_map(&mut tasks.by_state, &st.tasks.by_state);
                objects.discovered += st.objects.discovered;
                objects.processed += st.objects.processed;
                add_map(&mut objects.by_outcome, &st.objects.by_outcome);
                add_map(&mut objects.by_reason, &st.objects.by_reason);
                findings.total += st.findings.total;
                add_map(&mut findings.by_classifier, &st.findings.by_classifier);
                // Data source ids belong to one site each, so their summaries just join.
                findings
                    .by_data_source
                    .extend(st.findings.by_data_source.clone());
                let done: i64 = ["SUCCEEDED", "FAILED", "CANCELLED"]
                    .iter()
                    .filter_map(|k| st.tasks.by_state.get(*k))
                    .sum();
                let progress = if st.tasks.total > 0 {
                    done as f64 / st.tasks.total as f64
                } else {
                    0.0
                };
                (
                    st.state.as_str().to_owned(),
                    progress,
                    st.tasks.total,
                    st.objects.clone(),
                    st.findings.clone(),
                )
            }
            None => (
                match sj.dispatch_state {
                    DispatchState::Pending | DispatchState::Dispatched => "DISPATCHING",
                    DispatchState::Rejected => "REJECTED",
                    DispatchState::Skipped => "SKIPPED",
                }
                .to_owned(),
                0.0,
                0,
                ObjectCounts::default(),
                FindingCounts::default(),
            ),
        };
        views.push(SiteView {
            site: sj.site.clone(),
            data_sources: sj.data_sources.clone(),
            state,
            dispatch: sj.dispatch_state,
            dispatch_attempts: sj.dispatch_attempts,
            cancel: sj.cancel_state,
            progress,
            tasks_total: total,
            objects: obj,
            findings: fnd,
            site_reachability: reach,
            last_polled_at: site.and_then(|s| s.last_polled_at).map(rfc3339_from_millis),
            last_seen_at: last_seen.map(rfc3339_from_millis),
            status_age_seconds: age_ms.map(|a| a as f64 / 1000.0),
            stale,
            error: sj.last_error.clone().or_else(|| {
                if stale {
                    site.and_then(|s| s.last_error.clone())
                } else {
                    None
                }
            }),
        });
    }
    let stale_sites: Vec<String> = views
        .iter()
        .filter(|v| v.stale)
        .map(|v| v.site.clone())
        .collect();
    JobView {
        job_id: job.job_id.clone(),
        name: job.name.clone(),
        state: overall_state(site_jobs, job.cancel_requested),
        cancel_requested: job.cancel_requested,
        created_at: rfc3339_from_millis(job.created_at),
        request: job.request.clone(),
        tasks,
        objects,
        findings,
        stale: !stale_sites.is_empty(),
        stale_sites,
        sites: views,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sj(dispatch: DispatchState, state: Option<JobState>) -> SiteJobRow {
        SiteJobRow {
            job_id: "j".into(),
            site: "s".into(),
            data_sources: vec![],
            dispatch_state: dispatch,
            dispatch_attempts: 1,
            next_dispatch_at: 0,
            cancel_state: CancelState::None,
            cancel_attempts: 0,
            last_error: None,
            status: state.map(|s| meridian_wire::JobStatus::new("j", s, 1)),
            status_version: 1,
            status_at: None,
        }
    }

    use DispatchState::*;
    use JobState as J;

    #[test]
    fn all_completed_is_completed_and_mixed_is_partial() {
        let c = sj(Dispatched, Some(J::Completed));
        assert_eq!(
            overall_state(&[c.clone(), c.clone()], false),
            OverallState::Completed
        );
        let f = sj(Dispatched, Some(J::Failed));
        assert_eq!(
            overall_state(&[c.clone(), f.clone()], false),
            OverallState::PartiallyCompleted
        );
        assert_eq!(
            overall_state(&[f.clone(), sj(Rejected, None)], false),
            OverallState::Failed
        );
        let x = sj(Dispatched, Some(J::Cancelled));
        assert_eq!(
            overall_state(&[f.clone(), x.clone()], true),
            OverallState::Cancelled
        );
        assert_eq!(overall_state(&[f, x], false), OverallState::Failed);
    }

    #[test]
    fn unfinished_sites_keep_the_job_open() {
        let c = sj(Dispatched, Some(J::Completed));
        let p = sj(Pending, None);
        assert_eq!(
            overall_state(&[p.clone(), p.clone()], false),
            OverallState::Pending
        );
        assert_eq!(
            overall_state(&[c.clone(), p.clone()], false),
            OverallState::Running
        );
        assert_eq!(overall_state(&[c, p], true), OverallState::Cancelling);
        assert_eq!(
            overall_state(
                &[sj(Skipped, None), sj(Dispatched, Some(J::Cancelled))],
                true
            ),
            OverallState::Cancelled
        );
    }
}
