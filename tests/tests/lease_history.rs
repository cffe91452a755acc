//! The lease history (migration 0003), on SQLite and PostgreSQL: every lease a task
//! is given leaves one row, closed with the task's state when the lease ends, so that
//! "no task was ever leased to two workers at once" can be checked from the database.

use std::sync::Arc;
use std::time::Duration;

use meridian_store::{
    Completion, CreateOutcome, DiscoveryBatch, HandOff, HeartbeatOutcome, Lease, LeaseSpec, NewJob,
    NewObject, ReportOutcome, Store, TaskBounds, hand_off_pending_on,
};
use meridian_tests::{Backend, on_both};

async fn open(backend: Backend) -> (Arc<dyn Store>, tempfile::TempDir) {
    meridian_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let url = meridian_tests::database_url(backend, dir.path()).await;
    let store = meridian_store::open(&url, 4).await.expect("store opens");
    (store, dir)
}

fn spec(worker: &str, lease_ms: i64) -> LeaseSpec {
    LeaseSpec {
        worker_id: worker.into(),
        node: worker.into(),
        lease_ms,
    }
}

/// Job `j1` over `sources` (one DISCOVERY task each).
fn job_j1(sources: &[&str], options: &str) -> NewJob {
    NewJob {
        id: "j1".into(),
        name: "j1".into(),
        definition_hash: "h".into(),
        data_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        options: options.into(),
        priority: 1,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    }
}

/// A job with `n` pending PROCESS tasks.
async fn job(store: &dyn Store, n: usize) -> Vec<i64> {
    let job = job_j1(&["ds"], "{}");
    let CreateOutcome::Created(_) = store.create_job(&job).await.unwrap() else {
        panic!("created")
    };
    let discovery = store.pending_task_ids("j1", 0, 10).await.unwrap();
    let claimed = store.claim(&discovery, &spec("d", 60_000)).await.unwrap();
    let lease = Lease {
        task_id: claimed[0].id,
        lease_token: claimed[0].lease_token.clone(),
    };
    let objects = (0..n)
        .map(|i| NewObject {
            key: format!("o{i}"),
            size_bytes: 1,
            modified_at: None,
            skipped_reason: None,
        })
        .collect();
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects,
    };
    assert_eq!(
        store
            .record_discovery(&lease, &batch, &TaskBounds::ONE)
            .await
            .unwrap()
            .outcome,
        ReportOutcome::Accepted
    );
    store
        .complete(&[Completion {
            failed: vec![],
            lease,
            objects: vec![],
            findings: vec![],
        }])
        .await
        .unwrap();
    store.pending_task_ids("j1", 0, 100).await.unwrap()
}

async fn every_lease_leaves_one_closed_row(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let ids = job(store.as_ref(), 2).await;
    // Task 0: leased, expires, reaped, leased again, completed.
    let first = store.claim(&ids[..1], &spec("w1", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.reap_expired(100, 5).await.unwrap().requeued, 1);
    let second = store.claim(&ids[..1], &spec("w2", 60_000)).await.unwrap();
    let done = store
        .complete(&[Completion {
            failed: vec![],
            lease: Lease {
                task_id: ids[0],
                lease_token: second[0].lease_token.clone(),
            },
            objects: vec![],
            findings: vec![],
        }])
        .await
        .unwrap();
    assert_eq!(done, [ReportOutcome::Accepted]);
    let history = store.lease_history(ids[0]).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].lease_token, first[0].lease_token);
    assert_eq!(history[0].worker_id.as_deref(), Some("w1"));
    assert_eq!(history[0].end_state.as_deref(), Some("PENDING"));
    assert_eq!(history[1].worker_id.as_deref(), Some("w2"));
    assert_eq!(history[1].end_state.as_deref(), Some("SUCCEEDED"));
    assert!(history[1].leased_at >= history[0].ended_at.unwrap());
    // Task 1: still held, so its lease is open; heartbeats do not add rows.
    let held = store.claim(&ids[1..], &spec("w3", 60_000)).await.unwrap();
    let lease = Lease {
        task_id: ids[1],
        lease_token: held[0].lease_token.clone(),
    };
    store.heartbeat(&lease, 60_000).await.unwrap();
    let open_lease = store.lease_history(ids[1]).await.unwrap();
    assert_eq!(open_lease.len(), 1);
    assert_eq!(open_lease[0].ended_at, None);
    assert_eq!(store.overlapping_leases().await.unwrap(), 0);
}

async fn handed_back_leases_are_closed(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let ids = job(store.as_ref(), 3).await;
    store.claim(&ids, &spec("w1", 60_000)).await.unwrap();
    assert_eq!(store.release_node_leases("w1", false, 3).await.unwrap(), 3);
    for id in &ids {
        let h = store.lease_history(*id).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].end_state.as_deref(), Some("PENDING"));
        assert!(h[0].ended_at.is_some());
    }
    assert_eq!(store.overlapping_leases().await.unwrap(), 0);
}

/// Leases handed to waiting workers by the transaction that creates the job are
/// ordinary leases: fresh tokens, one history row each, fenced, the job started and
/// its status version moved; a repeated create hands off nothing.
async fn leases_handed_off_at_creation_are_fenced_and_recorded(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let job = job_j1(&["a", "b", "c"], "{}");
    let to = [
        HandOff {
            lease: spec("w1", 60_000),
            max: 2,
        },
        HandOff {
            lease: spec("w2", 60_000),
            max: 1,
        },
    ];
    let before = store.jobs_changed_since(0, 100).await.unwrap();
    assert!(before.is_empty());
    let (outcome, handed) = store.create_job_handing_off(&job, &to).await.unwrap();
    let CreateOutcome::Created(row) = outcome else {
        panic!("created")
    };
    assert_eq!(
        row.state, "RUNNING",
        "a job whose tasks were handed off has started"
    );
    assert!(row.started_at.is_some());
    // One task each per round: w1 gets the first and the third, w2 the second.
    let mut got: Vec<(usize, i64)> = handed.iter().map(|(w, t)| (*w, t.id)).collect();
    got.sort_by_key(|g| g.1);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1, 0]);
    assert!(
        store
            .pending_task_ids("j1", 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let changed = store.jobs_changed_since(0, 100).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, "RUNNING");
    for (w, t) in &handed {
        assert_eq!(t.attempts, 1);
        let h = store.lease_history(t.id).await.unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].lease_token, t.lease_token);
        assert_eq!(h[0].worker_id.as_deref(), Some(["w1", "w2"][*w]));
        assert_eq!(h[0].ended_at, None);
        // Nobody else can claim a handed-off task.
        assert!(
            store
                .claim(&[t.id], &spec("thief", 60_000))
                .await
                .unwrap()
                .is_empty()
        );
    }
    // Fenced: a wrong token is refused and writes nothing; the right one completes.
    let (_, first) = &handed[0];
    let forged = Lease {
        task_id: first.id,
        lease_token: "not-the-token".into(),
    };
    assert_eq!(
        store.heartbeat(&forged, 60_000).await.unwrap(),
        HeartbeatOutcome::Lost
    );
    let complete = |lease: Lease| Completion {
        failed: vec![],
        lease,
        objects: vec![],
        findings: vec![],
    };
    assert_eq!(
        store.complete(&[complete(forged)]).await.unwrap(),
        [ReportOutcome::LeaseLost]
    );
    let real = Lease {
        task_id: first.id,
        lease_token: first.lease_token.clone(),
    };
    assert_eq!(
        store.complete(&[complete(real)]).await.unwrap(),
        [ReportOutcome::Accepted]
    );
    let h = store.lease_history(first.id).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].end_state.as_deref(), Some("SUCCEEDED"));
    // The same create again finds the job and leases nothing.
    let (again, none) = store.create_job_handing_off(&job, &to).await.unwrap();
    assert!(matches!(again, CreateOutcome::Existing(_)));
    assert!(none.is_empty());
    assert_eq!(store.overlapping_leases().await.unwrap(), 0);
}

/// A job's pending tasks handed to the long-polls of another replica (after its
/// announcement, so PostgreSQL only): one task each per round, lowest id first,
/// ordinary leases with a history row each, the job started; tasks someone already
/// holds are skipped, and with nothing left pending nothing is leased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_tasks_handed_to_announced_waiters() {
    meridian_tests::init();
    let url = meridian_tests::pg::fresh_database().await;
    let store = meridian_store::open(&url, 4).await.unwrap();
    let conn = sqlx::PgPool::connect(&url).await.unwrap();
    let job = job_j1(&["a", "b", "c", "d"], r#"{"ocr":false}"#);
    let CreateOutcome::Created(row) = store.create_job(&job).await.unwrap() else {
        panic!("created")
    };
    assert_eq!(row.state, "PENDING");
    let ids = store.pending_task_ids("j1", 0, 10).await.unwrap();
    assert_eq!(ids.len(), 4);
    // Someone else already holds the lowest.
    let taken = store
        .claim(&ids[..1], &spec("other", 60_000))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let to = [
        HandOff {
            lease: spec("w1", 60_000),
            max: 2,
        },
        HandOff {
            lease: spec("w2", 60_000),
            max: 2,
        },
    ];
    let (context, handed) = hand_off_pending_on(&conn, "j1", &to).await.unwrap();
    assert_eq!(context.options, job.options);
    assert_eq!(
        context.trace_id.as_deref(),
        Some(job.trace_id.as_str()),
        "handed-off packets lose the job's trace"
    );
    let mut got: Vec<(usize, i64)> = handed.iter().map(|(w, t)| (*w, t.id)).collect();
    got.sort_by_key(|g| g.1);
    assert_eq!(got, [(0, ids[1]), (1, ids[2]), (0, ids[3])]);
    for (w, t) in &handed {
        assert_eq!(t.job_id, "j1");
        assert_eq!(t.phase, "DISCOVERY");
        assert_eq!(t.attempts, 1);
        let h = store.lease_history(t.id).await.unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].lease_token, t.lease_token);
        assert_eq!(h[0].worker_id.as_deref(), Some(["w1", "w2"][*w]));
    }
    let started = store.job("j1").await.unwrap().unwrap();
    assert_eq!(started.state, "RUNNING");
    assert!(started.status_version > row.status_version);
    let (context, none) = hand_off_pending_on(&conn, "j1", &to).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(context, meridian_store::JobContext::default());
    assert_eq!(store.overlapping_leases().await.unwrap(), 0);
}

on_both!(
    every_lease_leaves_one_closed_row,
    handed_back_leases_are_closed,
    leases_handed_off_at_creation_are_fenced_and_recorded,
);
