//! The master's store, every method on SQLite and on a real PostgreSQL.

use meridian_master::store::{CancelState, CreateOutcome, DispatchState, NewJob, Store};
use meridian_tests::{Backend, database_url, on_both};
use meridian_wire::states::JobState;
use meridian_wire::{DataSourceInfo, JobStatus};

async fn store(backend: Backend) -> (Store, tempfile::TempDir) {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    (Store::open(&url, 4).await.expect("open"), dir)
}

fn new_job(id: &str, key: Option<&str>, hash: &str, sites: &[&str]) -> NewJob {
    NewJob {
        job_id: id.into(),
        name: format!("job {id}"),
        request: format!(r#"{{"name":"job {id}","options":{{}}}}"#),
        request_hash: hash.into(),
        idempotency_key: key.map(String::from),
        sites: sites
            .iter()
            .map(|s| (s.to_string(), vec![format!("ds_{s}_01")]))
            .collect(),
        now_ms: 1_000,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    }
}

fn status(id: &str, state: JobState, version: i64) -> JobStatus {
    JobStatus::new(id, state, version)
}

async fn creates_are_idempotent_on_their_key(backend: Backend) {
    let (s, _d) = store(backend).await;
    assert_eq!(
        s.create_job(&new_job("a", Some("k"), "h1", &["london", "tokyo"]))
            .await
            .unwrap(),
        CreateOutcome::Created("a".into())
    );
    assert_eq!(
        s.create_job(&new_job("b", Some("k"), "h1", &["london"]))
            .await
            .unwrap(),
        CreateOutcome::Existing("a".into())
    );
    assert_eq!(
        s.create_job(&new_job("c", Some("k"), "h2", &["london"]))
            .await
            .unwrap(),
        CreateOutcome::Conflict("a".into())
    );
    assert_eq!(
        s.create_job(&new_job("d", None, "h1", &["london"]))
            .await
            .unwrap(),
        CreateOutcome::Created("d".into())
    );
    assert!(
        s.job("b").await.unwrap().is_none(),
        "the losing create left nothing behind"
    );
    let parts = s.site_jobs("a").await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.site.as_str()).collect::<Vec<_>>(),
        ["london", "tokyo"]
    );
    assert!(
        parts
            .iter()
            .all(|p| p.dispatch_state == DispatchState::Pending && p.dispatch_attempts == 0)
    );
    assert_eq!(parts[0].data_sources, ["ds_london_01"]);
    assert_eq!(s.job("a").await.unwrap().unwrap().request["name"], "job a");
}

async fn a_dispatch_attempt_is_claimed_once(backend: Backend) {
    let (s, _d) = store(backend).await;
    s.create_job(&new_job("a", None, "h", &["london"]))
        .await
        .unwrap();
    let due = s.due_dispatches(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(s.begin_dispatch(&due[0], 5_000).await.unwrap());
    assert!(
        !s.begin_dispatch(&due[0], 5_000).await.unwrap(),
        "a second claim of the same attempt loses"
    );
    assert!(
        s.due_dispatches(4_999, 10).await.unwrap().is_empty(),
        "not due before its backoff"
    );
    let again = s.due_dispatches(5_000, 10).await.unwrap();
    assert_eq!(again[0].dispatch_attempts, 1);
    s.end_dispatch("a", "london", DispatchState::Pending, Some("timed out"))
        .await
        .unwrap();
    assert_eq!(
        s.site_jobs("a").await.unwrap()[0].last_error.as_deref(),
        Some("timed out")
    );
    s.end_dispatch("a", "london", DispatchState::Dispatched, None)
        .await
        .unwrap();
    assert!(s.due_dispatches(i64::MAX, 10).await.unwrap().is_empty());
    s.end_dispatch("a", "london", DispatchState::Rejected, Some("late"))
        .await
        .unwrap();
    assert_eq!(
        s.site_jobs("a").await.unwrap()[0].dispatch_state,
        DispatchState::Dispatched,
        "only a pending dispatch ends"
    );
}

async fn cancel_skips_parts_never_sent_and_waits_for_the_rest(backend: Backend) {
    let (s, _d) = store(backend).await;
    s.create_job(&new_job("a", None, "h", &["london", "tokyo"]))
        .await
        .unwrap();
    let due = s.due_dispatches(1_000, 10).await.unwrap();
    let london = due.iter().find(|d| d.site == "london").unwrap();
    assert!(s.begin_dispatch(london, 2_000).await.unwrap());
    assert!(s.request_cancel("a", 3_000).await.unwrap());
    assert!(!s.request_cancel("nope", 3_000).await.unwrap());
    let parts = s.site_jobs("a").await.unwrap();
    assert_eq!(
        parts[1].dispatch_state,
        DispatchState::Skipped,
        "tokyo never got a request"
    );
    assert_eq!(parts[1].cancel_state, CancelState::Acknowledged);
    assert_eq!(parts[0].cancel_state, CancelState::Requested);
    assert!(
        s.due_cancels(i64::MAX, 10).await.unwrap().is_empty(),
        "london may hold the job: cancel once dispatched"
    );
    assert!(
        !s.begin_dispatch(&due.iter().find(|d| d.site == "tokyo").unwrap().clone(), 0)
            .await
            .unwrap()
    );
    s.end_dispatch("a", "london", DispatchState::Dispatched, None)
        .await
        .unwrap();
    let cancels = s.due_cancels(3_000, 10).await.unwrap();
    assert_eq!(cancels.len(), 1);
    s.end_cancel("a", "london", false, 9_000, Some("down"))
        .await
        .unwrap();
    assert!(s.due_cancels(8_999, 10).await.unwrap().is_empty());
    s.end_cancel("a", "london", true, 0, None).await.unwrap();
    assert!(s.due_cancels(i64::MAX, 10).await.unwrap().is_empty());
    let parts = s.site_jobs("a").await.unwrap();
    assert_eq!(
        (parts[0].cancel_state, parts[0].cancel_attempts),
        (CancelState::Acknowledged, 2)
    );
    assert!(s.job("a").await.unwrap().unwrap().cancel_requested);
}

async fn statuses_only_move_forward_and_confirm_dispatch(backend: Backend) {
    let (s, _d) = store(backend).await;
    s.create_job(&new_job("a", None, "h", &["london"]))
        .await
        .unwrap();
    let changed = s
        .apply_statuses(
            "london",
            &[
                status("a", JobState::Running, 5),
                status("unknown", JobState::Running, 6),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(changed, ["a"], "jobs the master does not know are ignored");
    let part = &s.site_jobs("a").await.unwrap()[0];
    assert_eq!(
        part.dispatch_state,
        DispatchState::Dispatched,
        "a status proves the site holds the job"
    );
    assert_eq!(part.status.as_ref().unwrap().state, JobState::Running);
    assert!(
        s.apply_statuses("london", &[status("a", JobState::Pending, 4)], 11)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.apply_statuses("tokyo", &[status("a", JobState::Completed, 9)], 11)
            .await
            .unwrap()
            .is_empty(),
        "another site's word does not count"
    );
    s.apply_statuses("london", &[status("a", JobState::Completed, 7)], 12)
        .await
        .unwrap();
    let part = &s.site_jobs("a").await.unwrap()[0];
    assert_eq!((part.status_version, part.status_at), (7, Some(12)));
}

async fn sites_track_cursor_and_reachability(backend: Backend) {
    let (s, _d) = store(backend).await;
    s.sync_sites(&[
        ("london".into(), "https://l".into()),
        ("tokyo".into(), "https://t".into()),
    ])
    .await
    .unwrap();
    s.sync_sites(&[("london".into(), "https://l2".into())])
        .await
        .unwrap();
    let sites = s.sites().await.unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(
        (sites[0].url.as_str(), sites[0].reachability.as_str()),
        ("https://l2", "UNKNOWN")
    );
    s.site_polled("london", 40, 3, 100).await.unwrap();
    s.site_polled("london", 30, 3, 101).await.unwrap();
    assert_eq!(
        s.sites().await.unwrap()[0].since_version,
        40,
        "the cursor never moves back"
    );
    assert_eq!(
        s.site_poll_failed("london", "refused", 2, 102)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.sites().await.unwrap()[0].reachability, "REACHABLE");
    assert_eq!(
        s.site_poll_failed("london", "refused", 2, 103)
            .await
            .unwrap(),
        2
    );
    let london = &s.sites().await.unwrap()[0];
    assert_eq!(
        (
            london.reachability.as_str(),
            london.last_error.as_deref(),
            london.last_seen_at
        ),
        ("UNREACHABLE", Some("refused"), Some(101))
    );
    s.site_polled("london", 41, 3, 104).await.unwrap();
    let london = &s.sites().await.unwrap()[0];
    assert_eq!(
        (
            london.reachability.as_str(),
            london.consecutive_failures,
            london.last_error.clone()
        ),
        ("REACHABLE", 0, None)
    );
}

async fn the_catalog_is_replaced_per_site(backend: Backend) {
    let (s, _d) = store(backend).await;
    s.sync_sites(&[
        ("london".into(), "https://l".into()),
        ("tokyo".into(), "https://t".into()),
    ])
    .await
    .unwrap();
    let ds = |id: &str| DataSourceInfo {
        id: id.into(),
        kind: "filesystem".into(),
        site: "ignored".into(),
        description: "d".into(),
    };
    s.replace_catalog("london", &[ds("ds_a"), ds("ds_b")], 5)
        .await
        .unwrap();
    s.replace_catalog("tokyo", &[ds("ds_c")], 5).await.unwrap();
    s.replace_catalog("london", &[ds("ds_b")], 6).await.unwrap();
    let cat = s.catalog().await.unwrap();
    let ids: Vec<(&str, &str)> = cat
        .iter()
        .map(|c| (c.id.as_str(), c.site.as_str()))
        .collect();
    assert_eq!(ids, [("ds_b", "london"), ("ds_c", "tokyo")]);
    assert_eq!(s.sites().await.unwrap()[0].catalog_refreshed_at, Some(6));
}

async fn jobs_list_newest_first_by_state(backend: Backend) {
    let (s, _d) = store(backend).await;
    for id in ["01", "02", "03", "04", "05"] {
        s.create_job(&new_job(id, None, "h", &["london"]))
            .await
            .unwrap();
    }
    s.set_job_state("02", "COMPLETED", 9).await.unwrap();
    s.set_job_state("04", "COMPLETED", 9).await.unwrap();
    let page = s.list_jobs(None, None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        ["05", "04"]
    );
    let page = s.list_jobs(None, Some("04"), 10).await.unwrap();
    assert_eq!(
        page.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        ["03", "02", "01"]
    );
    let done = s.list_jobs(Some("COMPLETED"), None, 10).await.unwrap();
    assert_eq!(
        done.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
        ["04", "02"]
    );
    assert_eq!(s.active_job_ids().await.unwrap(), ["01", "03", "05"]);
}

async fn concurrent_creates_with_one_key_make_one_job(backend: Backend) {
    let (s, _d) = store(backend).await;
    let creates = (0..50).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            s.create_job(&new_job(
                &format!("j{i:02}"),
                Some("same"),
                "h",
                &["london", "tokyo"],
            ))
            .await
        })
    });
    let outcomes: Vec<CreateOutcome> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("no create fails"))
        .collect();
    let created: Vec<&CreateOutcome> = outcomes
        .iter()
        .filter(|o| matches!(o, CreateOutcome::Created(_)))
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    let CreateOutcome::Created(winner) = created[0] else {
        unreachable!()
    };
    assert!(
        outcomes
            .iter()
            .all(|o| o == created[0] || *o == CreateOutcome::Existing(winner.clone()))
    );
    assert_eq!(s.list_jobs(None, None, 100).await.unwrap().len(), 1);
    assert_eq!(s.site_jobs(winner).await.unwrap().len(), 2);
}

on_both!(
    concurrent_creates_with_one_key_make_one_job,
    creates_are_idempotent_on_their_key,
    a_dispatch_attempt_is_claimed_once,
    cancel_skips_parts_never_sent_and_waits_for_the_rest,
    statuses_only_move_forward_and_confirm_dispatch,
    sites_track_cursor_and_reachability,
    the_catalog_is_replaced_per_site,
    jobs_list_newest_first_by_state,
);
