//! The store conformance suite: every storage behaviour, run on SQLite and on
//! PostgreSQL by the same test bodies.

use std::collections::HashSet;
use std::time::Duration;

use meridian_store::{
    Completion, CreateOutcome, DiscoveryBatch, FailOutcome, Failure, FindingRow, FindingsRange,
    HeartbeatOutcome, LeaseSpec, NewFinding, NewObject, ObjectResult, ReportOutcome, Store,
    TaskBounds,
};
use meridian_tests::store::{
    TestStore as Db, in_memory_sqlite, lease_of, lease_spec, new_job, open,
};
use meridian_wire::states::ObjectOutcome;

meridian_tests::on_both!(
    open: open;
    create_job_is_idempotent_on_id,
    claim_leases_each_task_once,
    concurrent_claims_never_share_a_task,
    stale_lease_reports_write_nothing,
    reaper_fails_tasks_out_of_attempts,
    reaper_never_reopens_a_task_completed_during_the_reap,
    retryable_failures_back_off_until_attempts_run_out,
    discovery_reports_are_idempotent,
    discovery_creates_each_task_exactly_once,
    pipeline_creates_each_task_exactly_once,
    finished_jobs_apply_the_failure_threshold,
    cancel_cancels_pending_tasks_and_ends_cancelled,
    status_versions_increase_and_deltas_list_changes,
    node_parameters_override_global_ones,
    findings_are_unique_and_paginate,
    node_leases_are_handed_back,
    stalled_means_no_progress_whatever_the_heartbeats,
);

/// The embedded store also runs on `sqlite::memory:` (what unit-level uses take).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_store_passes_the_core_cases() {
    for body in [0, 1, 2] {
        let db = in_memory_sqlite().await;
        match body {
            0 => create_job_is_idempotent_on_id(db).await,
            1 => stale_lease_reports_write_nothing(db).await,
            _ => discovery_creates_each_task_exactly_once(db).await,
        }
    }
}

fn objects(n: usize, prefix: &str) -> Vec<NewObject> {
    (0..n)
        .map(|i| NewObject {
            key: format!("{prefix}{i:05}"),
            size_bytes: 10,
            modified_at: None,
            skipped_reason: None,
        })
        .collect()
}

/// A job whose discovery found `n` objects, each with its pending PROCESS task.
async fn job_with_tasks(store: &dyn Store, id: &str, n: usize) -> Vec<i64> {
    let CreateOutcome::Created(_) = store.create_job(&new_job(id, "h")).await.unwrap() else {
        panic!("created")
    };
    let discovery = store.pending_task_ids(id, 0, 10).await.unwrap();
    let claimed = store
        .claim(&discovery, &lease_spec("w", 60_000))
        .await
        .unwrap();
    let lease = lease_of(&claimed[0]);
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects: objects(n, "obj"),
    };
    let recorded = store
        .record_discovery(&lease, &batch, &TaskBounds::ONE)
        .await
        .unwrap();
    assert_eq!(recorded.outcome, ReportOutcome::Accepted);
    assert_eq!(recorded.tasks_created, n as u64);
    let done = store
        .complete(&[Completion {
            failed: vec![],
            lease,
            objects: vec![],
            findings: vec![],
        }])
        .await
        .unwrap();
    assert_eq!(done, [ReportOutcome::Accepted]);
    let p = store.pipeline(100).await.unwrap();
    assert_eq!(p.tasks_created, 0, "the batch's tasks came with it");
    let ids = store.pending_task_ids(id, 0, n as i64 + 10).await.unwrap();
    assert_eq!(ids.len(), n);
    ids
}

fn task_state(counts: &meridian_store::JobCounts, phase: &str, state: &str) -> i64 {
    counts
        .tasks
        .iter()
        .filter(|(p, s, _)| p == phase && s == state)
        .map(|t| t.2)
        .sum()
}

async fn create_job_is_idempotent_on_id(db: Db) {
    let s = &db.store;
    let CreateOutcome::Created(row) = s.create_job(&new_job("j1", "hash-a")).await.unwrap() else {
        panic!()
    };
    assert_eq!(row.state, "PENDING");
    assert!(matches!(
        s.create_job(&new_job("j1", "hash-a")).await.unwrap(),
        CreateOutcome::Existing(_)
    ));
    assert!(matches!(
        s.create_job(&new_job("j1", "hash-b")).await.unwrap(),
        CreateOutcome::Conflict(_)
    ));
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(
        task_state(&counts, "DISCOVERY", "PENDING"),
        1,
        "a retry creates no second task"
    );
}

async fn claim_leases_each_task_once(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 10).await;
    let first = s.claim(&ids, &lease_spec("w1", 60_000)).await.unwrap();
    assert_eq!(first.len(), 10);
    let tokens: HashSet<&str> = first.iter().map(|t| t.lease_token.as_str()).collect();
    assert_eq!(tokens.len(), 10, "every lease has its own token");
    assert!(first.iter().all(|t| t.attempts == 1));
    assert!(
        s.claim(&ids, &lease_spec("w2", 60_000))
            .await
            .unwrap()
            .is_empty()
    );
    let job = s.job("j1").await.unwrap().unwrap();
    assert_eq!(job.state, "RUNNING");
    assert!(job.started_at.is_some());
}

async fn concurrent_claims_never_share_a_task(db: Db) {
    let s = db.store.clone();
    let ids = job_with_tasks(s.as_ref(), "j1", 300).await;
    let mut handles = Vec::new();
    for w in 0..4 {
        let (s, ids) = (s.clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for chunk in ids.chunks(25) {
                mine.extend(
                    s.claim(chunk, &lease_spec(&format!("w{w}"), 60_000))
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| t.id),
                );
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a task was leased twice");
    assert_eq!(unique.len(), 300);
}

async fn stale_lease_reports_write_nothing(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 1).await;
    let first = s.claim(&ids, &lease_spec("w1", 1)).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let reaped = s.reap_expired(100, 3).await.unwrap();
    assert_eq!(reaped.requeued, 1);
    let second = s
        .claim(&ids, &lease_spec("w2", 60_000))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempts, 2);
    assert_ne!(first.lease_token, second.lease_token);

    let object_id: i64 =
        serde_json::from_str::<serde_json::Value>(&first.payload).unwrap()["objects"][0]["object_id"]
            .as_i64()
            .unwrap();
    let finding = |loc: &str| NewFinding {
        object_id,
        classifier: "email".into(),
        location: loc.into(),
        count: 1,
        masked_sample: "j***@example.com".into(),
        confidence: 0.9,
    };
    let late = Completion {
        failed: vec![],
        lease: lease_of(&first),
        objects: vec![ObjectResult {
            object_id,
            outcome: ObjectOutcome::Complete,
            reason: None,
        }],
        findings: vec![finding("line:1")],
    };
    assert_eq!(
        s.complete(&[late]).await.unwrap(),
        [ReportOutcome::LeaseLost]
    );
    assert_eq!(
        s.heartbeat(&lease_of(&first), 1000).await.unwrap(),
        HeartbeatOutcome::Lost
    );
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 5,
        objects: objects(3, "late"),
    };
    assert_eq!(
        s.record_discovery(&lease_of(&first), &batch, &TaskBounds::ONE)
            .await
            .unwrap()
            .outcome,
        ReportOutcome::LeaseLost
    );
    let fail = Failure {
        error: "x".into(),
        retryable: false,
        split: false,
        max_retries: 3,
        backoff_ms: 0,
    };
    assert_eq!(
        s.fail(&lease_of(&first), &fail).await.unwrap(),
        FailOutcome::LeaseLost
    );
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert!(
        counts.findings.is_empty(),
        "a stale completion wrote findings"
    );
    assert_eq!(counts.objects_discovered, 1, "a stale report wrote objects");
    assert_eq!(task_state(&counts, "PROCESS", "RUNNING"), 1);

    assert!(matches!(
        s.heartbeat(&lease_of(&second), 60_000).await.unwrap(),
        HeartbeatOutcome::Extended { .. }
    ));
    let good = Completion {
        failed: vec![],
        lease: lease_of(&second),
        objects: vec![ObjectResult {
            object_id,
            outcome: ObjectOutcome::Complete,
            reason: None,
        }],
        findings: vec![finding("line:1"), finding("line:2")],
    };
    assert_eq!(
        s.complete(&[good]).await.unwrap(),
        [ReportOutcome::Accepted]
    );
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(counts.findings, [("email".to_owned(), 2)]);
    assert_eq!(task_state(&counts, "PROCESS", "SUCCEEDED"), 1);
}

async fn reaper_fails_tasks_out_of_attempts(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 2).await;
    s.claim(&ids, &lease_spec("w1", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let reaped = s.reap_expired(100, 1).await.unwrap();
    assert_eq!((reaped.requeued, reaped.failed), (0, 2));
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(task_state(&counts, "PROCESS", "FAILED"), 2);
}

async fn reaper_never_reopens_a_task_completed_during_the_reap(db: Db) {
    let s = db.store.clone();
    let ids = job_with_tasks(s.as_ref(), "j1", 200).await;
    let claimed = s.claim(&ids, &lease_spec("w1", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    // Every lease has expired; completions and the reaper now race for each task.
    let completer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut accepted = HashSet::new();
            for chunk in claimed.chunks(10) {
                let batch: Vec<Completion> = chunk
                    .iter()
                    .map(|t| Completion {
                        failed: vec![],
                        lease: lease_of(t),
                        objects: vec![],
                        findings: vec![],
                    })
                    .collect();
                for (t, o) in chunk.iter().zip(s.complete(&batch).await.unwrap()) {
                    if o == ReportOutcome::Accepted {
                        accepted.insert(t.id);
                    }
                }
            }
            accepted
        })
    };
    let reaper = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut requeued = 0;
            for _ in 0..100 {
                requeued += s.reap_expired(7, 5).await.unwrap().requeued;
            }
            requeued
        })
    };
    let accepted = completer.await.unwrap();
    let requeued = reaper.await.unwrap();
    assert_eq!(
        accepted.len() as u64 + requeued,
        200,
        "each task was completed or reaped, never both"
    );
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(
        task_state(&counts, "PROCESS", "SUCCEEDED"),
        accepted.len() as i64
    );
    assert_eq!(task_state(&counts, "PROCESS", "PENDING"), requeued as i64);
}

async fn retryable_failures_back_off_until_attempts_run_out(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 1).await;
    let t = s
        .claim(&ids, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    let later = Failure {
        error: "disk busy".into(),
        retryable: true,
        split: true,
        max_retries: 3,
        backoff_ms: 60_000,
    };
    assert_eq!(
        s.fail(&lease_of(&t), &later).await.unwrap(),
        FailOutcome::Retrying
    );
    assert!(
        s.pending_task_ids("j1", 0, 10).await.unwrap().is_empty(),
        "backoff not respected"
    );
    assert!(
        s.claim(&ids, &lease_spec("w1", 60_000))
            .await
            .unwrap()
            .is_empty(),
        "claimed during backoff"
    );

    let ids2 = job_with_tasks(s.as_ref(), "j2", 1).await;
    let now = Failure {
        error: "disk busy".into(),
        retryable: true,
        split: true,
        max_retries: 3,
        backoff_ms: 0,
    };
    for attempt in 1..=3 {
        let t = s
            .claim(&ids2, &lease_spec("w1", 60_000))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(t.attempts, attempt);
        let expected = if attempt < 3 {
            FailOutcome::Retrying
        } else {
            FailOutcome::Failed
        };
        assert_eq!(s.fail(&lease_of(&t), &now).await.unwrap(), expected);
    }
    let permanent = Failure {
        error: "corrupt".into(),
        retryable: false,
        split: false,
        max_retries: 3,
        backoff_ms: 0,
    };
    let ids3 = job_with_tasks(s.as_ref(), "j3", 1).await;
    let t = s
        .claim(&ids3, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        s.fail(&lease_of(&t), &permanent).await.unwrap(),
        FailOutcome::Failed
    );
}

async fn discovery_reports_are_idempotent(db: Db) {
    let s = &db.store;
    let CreateOutcome::Created(_) = s.create_job(&new_job("j1", "h")).await.unwrap() else {
        panic!()
    };
    let ids = s.pending_task_ids("j1", 0, 10).await.unwrap();
    let t = s
        .claim(&ids, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    let mut first = objects(50, "a");
    first[7].skipped_reason = Some("symlink not followed".into());
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects: first,
    };
    let recorded = s
        .record_discovery(&lease_of(&t), &batch, &TaskBounds::ONE)
        .await
        .unwrap();
    assert_eq!(recorded.outcome, ReportOutcome::Accepted);
    assert_eq!(recorded.tasks_created, 49, "no task for a skipped object");
    let again = s
        .record_discovery(&lease_of(&t), &batch, &TaskBounds::ONE)
        .await
        .unwrap();
    assert_eq!(
        (again.outcome, again.tasks_created),
        (ReportOutcome::Duplicate, 0)
    );
    // A second attempt rediscovers the same objects plus new ones: no duplicates.
    let mut more = objects(50, "a");
    more.extend(objects(10, "b"));
    let batch2 = DiscoveryBatch {
        attempt: 2,
        seq: 0,
        objects: more,
    };
    let recorded = s
        .record_discovery(&lease_of(&t), &batch2, &TaskBounds::ONE)
        .await
        .unwrap();
    assert_eq!(recorded.outcome, ReportOutcome::Accepted);
    assert_eq!(recorded.tasks_created, 10, "tasks only for the new objects");
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(counts.objects_discovered, 60);
    assert_eq!(counts.objects_by_outcome, [("SKIPPED".to_owned(), 1)]);
    assert_eq!(task_state(&counts, "PROCESS", "PENDING"), 59);
    let p = s.pipeline(100).await.unwrap();
    assert_eq!((p.records, p.tasks_created), (0, 0), "nothing left over");
    // Each task names its object, once.
    let pending = s.pending_task_ids("j1", 0, 1000).await.unwrap();
    let claimed = s.claim(&pending, &lease_spec("w2", 60_000)).await.unwrap();
    let keys: HashSet<String> = claimed
        .iter()
        .filter(|c| c.phase == "PROCESS")
        .map(|c| {
            let p: serde_json::Value = serde_json::from_str(&c.payload).unwrap();
            p["objects"][0]["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 59);
    assert!(!keys.contains("a00007"));
}

/// Batches recorded concurrently, overlapping in objects: each object once, each
/// with one task.
async fn discovery_creates_each_task_exactly_once(db: Db) {
    let s = db.store.clone();
    let CreateOutcome::Created(_) = s.create_job(&new_job("j1", "h")).await.unwrap() else {
        panic!()
    };
    let ids = s.pending_task_ids("j1", 0, 10).await.unwrap();
    let t = s
        .claim(&ids, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    // Batch `seq` holds objects 25·seq .. 25·seq + 50: half of it is the next one's.
    let runs: Vec<_> = (0..20)
        .map(|seq: i64| {
            let s = s.clone();
            let lease = lease_of(&t);
            tokio::spawn(async move {
                let batch = DiscoveryBatch {
                    attempt: 1,
                    seq,
                    objects: (25 * seq..25 * seq + 50)
                        .map(|i| NewObject {
                            key: format!("o{i:05}"),
                            size_bytes: 1,
                            modified_at: None,
                            skipped_reason: None,
                        })
                        .collect(),
                };
                let r = s
                    .record_discovery(&lease, &batch, &TaskBounds::ONE)
                    .await
                    .unwrap();
                assert_eq!(r.outcome, ReportOutcome::Accepted);
                r.tasks_created
            })
        })
        .collect();
    let mut created = 0;
    for r in runs {
        created += r.await.unwrap();
    }
    assert_eq!(created, 525);
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(counts.objects_discovered, 525);
    assert_eq!(task_state(&counts, "PROCESS", "PENDING"), 525);
}

/// Records an older version wrote unprocessed (its discovery left the tasks to the
/// pipeliner) become tasks exactly once, with concurrent pipeliners.
async fn pipeline_creates_each_task_exactly_once(db: Db) {
    let s = db.store.clone();
    let CreateOutcome::Created(_) = s.create_job(&new_job("j1", "h")).await.unwrap() else {
        panic!()
    };
    let ids = s.pending_task_ids("j1", 0, 10).await.unwrap();
    let t = s
        .claim(&ids, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    for seq in 0..20 {
        let batch = DiscoveryBatch {
            attempt: 1,
            seq,
            objects: objects(25, &format!("s{seq}-")),
        };
        s.record_discovery(&lease_of(&t), &batch, &TaskBounds::ONE)
            .await
            .unwrap();
    }
    // As the older version left them: records unprocessed, no PROCESS task yet.
    as_an_older_version_wrote(&db.url).await;
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(task_state(&counts, "PROCESS", "PENDING"), 0);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut created = 0;
                for _ in 0..10 {
                    created += s.pipeline(3).await.unwrap().tasks_created;
                }
                created
            })
        })
        .collect();
    let mut created = 0;
    for r in runs {
        created += r.await.unwrap();
    }
    assert_eq!(created, 500);
    assert_eq!(s.pipeline(100).await.unwrap().tasks_created, 0);
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(task_state(&counts, "PROCESS", "PENDING"), 500);
}

async fn as_an_older_version_wrote(url: &str) {
    use sqlx::Connection;
    const SQL: [&str; 2] = [
        "DELETE FROM tasks WHERE phase = 'PROCESS'",
        "UPDATE progress_records SET processed = FALSE",
    ];
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        for q in SQL {
            sqlx::query(q).execute(&mut c).await.unwrap();
        }
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        for q in SQL {
            sqlx::query(q).execute(&mut c).await.unwrap();
        }
    }
}

async fn finished_jobs_apply_the_failure_threshold(db: Db) {
    let s = &db.store;
    let mut finished = Vec::new();
    for (job, failures) in [("ok", 1usize), ("bad", 3)] {
        let ids = job_with_tasks(s.as_ref(), job, 19).await;
        let claimed = s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap();
        let permanent = Failure {
            error: "corrupt".into(),
            retryable: false,
            split: false,
            max_retries: 3,
            backoff_ms: 0,
        };
        for t in &claimed[..failures] {
            s.fail(&lease_of(t), &permanent).await.unwrap();
        }
        let early = s.finish_jobs(10.0).await.unwrap();
        assert!(
            early.iter().all(|f| f.id != job),
            "finished with tasks running"
        );
        finished.extend(early);
        let rest: Vec<Completion> = claimed[failures..]
            .iter()
            .map(|t| Completion {
                failed: vec![],
                lease: lease_of(t),
                objects: vec![],
                findings: vec![],
            })
            .collect();
        s.complete(&rest).await.unwrap();
    }
    finished.extend(s.finish_jobs(10.0).await.unwrap());
    let state_of = |id: &str| {
        finished
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.state.as_str())
    };
    // 20 tasks each (discovery + 19): 1 failed is 5 %, 3 failed is 15 %.
    assert_eq!(state_of("ok"), Some("COMPLETED"));
    assert_eq!(state_of("bad"), Some("FAILED"));
    assert!(
        s.finish_jobs(10.0).await.unwrap().is_empty(),
        "a finished job finished twice"
    );
    assert!(s.job("ok").await.unwrap().unwrap().finished_at.is_some());
}

async fn cancel_cancels_pending_tasks_and_ends_cancelled(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 10).await;
    let running = s.claim(&ids[..2], &lease_spec("w", 60_000)).await.unwrap();
    let row = s.request_cancel("j1").await.unwrap().unwrap();
    assert_eq!(row.state, "CANCELLING");
    assert!(s.request_cancel("nope").await.unwrap().is_none());
    assert_eq!(
        s.heartbeat(&lease_of(&running[0]), 60_000).await.unwrap(),
        HeartbeatOutcome::Cancelled
    );
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(task_state(&counts, "PROCESS", "CANCELLED"), 8);
    assert!(
        s.finish_jobs(10.0).await.unwrap().is_empty(),
        "cancelled while tasks still run"
    );
    let done: Vec<Completion> = running
        .iter()
        .map(|t| Completion {
            failed: vec![],
            lease: lease_of(t),
            objects: vec![],
            findings: vec![],
        })
        .collect();
    s.complete(&done).await.unwrap();
    let finished = s.finish_jobs(10.0).await.unwrap();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].state.as_str(), "CANCELLED");
    assert_eq!(
        s.request_cancel("j1").await.unwrap().unwrap().state,
        "CANCELLED",
        "cancel is idempotent"
    );
}

async fn status_versions_increase_and_deltas_list_changes(db: Db) {
    let s = &db.store;
    let CreateOutcome::Created(a) = s.create_job(&new_job("a", "h")).await.unwrap() else {
        panic!()
    };
    let CreateOutcome::Created(b) = s.create_job(&new_job("b", "h")).await.unwrap() else {
        panic!()
    };
    assert!(b.status_version > a.status_version);
    let mark = b.status_version;
    assert!(s.jobs_changed_since(mark, 10).await.unwrap().is_empty());
    let ids = s.pending_task_ids("a", 0, 10).await.unwrap();
    s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap();
    let changed = s.jobs_changed_since(mark, 10).await.unwrap();
    assert_eq!(
        changed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert!(changed[0].status_version > mark);
    let all = s.jobs_changed_since(0, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.windows(2)
            .all(|w| w[0].status_version <= w[1].status_version)
    );
    let page = s.jobs_page(None, 0, 1).await.unwrap();
    assert_eq!(page[0].id, "a");
    let next = s.jobs_page(None, page[0].seq, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(s.jobs_page(Some("RUNNING"), 0, 10).await.unwrap().len(), 1);
}

async fn node_parameters_override_global_ones(db: Db) {
    let s = &db.store;
    s.set_parameter("global", "worker.max_retries", "5")
        .await
        .unwrap();
    s.set_parameter("node-a", "worker.max_retries", "7")
        .await
        .unwrap();
    s.set_parameter("node-b", "worker.max_retries", "9")
        .await
        .unwrap();
    s.set_parameter("global", "worker.max_retries", "6")
        .await
        .unwrap();
    let rows = s.parameters("node-a").await.unwrap();
    assert_eq!(rows.len(), 2);
    let layers = meridian_config::ConfigLayers::new().with_yaml("node:\n  id: node-a\n");
    let cfg = meridian_config::finalize(&layers, &rows, meridian_child::RunMode::Single).unwrap();
    assert_eq!(cfg.worker.max_retries, 7);
    let rows = s.parameters("node-c").await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(),
        ["6"]
    );
}

async fn findings_are_unique_and_paginate(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 3).await;
    let claimed = s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap();
    let mut batch = Vec::new();
    for t in &claimed {
        let object_id = serde_json::from_str::<serde_json::Value>(&t.payload).unwrap()["objects"]
            [0]["object_id"]
            .as_i64()
            .unwrap();
        let findings = (1..=5)
            .map(|line| NewFinding {
                object_id,
                classifier: if line % 2 == 0 { "email" } else { "us_ssn" }.into(),
                location: format!("line:{line}"),
                count: 2,
                masked_sample: "***-**-6789".into(),
                confidence: 0.8,
            })
            .collect();
        batch.push(Completion {
            failed: vec![],
            lease: lease_of(t),
            objects: vec![ObjectResult {
                object_id,
                outcome: ObjectOutcome::Complete,
                reason: None,
            }],
            findings,
        });
    }
    s.complete(&batch).await.unwrap();
    let counts = s.job_counts("j1", 1000).await.unwrap();
    assert_eq!(
        counts.findings,
        [("email".to_owned(), 12), ("us_ssn".to_owned(), 18)]
    );
    assert_eq!(counts.objects_by_outcome, [("COMPLETE".to_owned(), 3)]);
    let all = all_findings(s.as_ref(), &FindingsRange::after(0, 4)).await;
    assert_eq!(all.len(), 15);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        all.iter()
            .all(|f| f.object_key.starts_with("obj") && f.data_source_id == "ds1")
    );
    // Filtered pages hold only what matches, exactly once, in id order, however
    // short the run of findings a page may read.
    for scan_limit in [1, 3, 4, 1000] {
        let only = |classifier: Option<&str>, data_source: Option<&str>| FindingsRange {
            classifier: classifier.map(str::to_owned),
            data_source: data_source.map(str::to_owned),
            scan_limit,
            ..FindingsRange::after(0, 2)
        };
        let ssn = all_findings(s.as_ref(), &only(Some("us_ssn"), None)).await;
        let want: Vec<_> = all
            .iter()
            .filter(|f| f.classifier == "us_ssn")
            .cloned()
            .collect();
        assert_eq!(ssn, want, "scan limit {scan_limit}");
        let both = all_findings(s.as_ref(), &only(Some("email"), Some("ds1"))).await;
        assert_eq!(both.len(), 6, "scan limit {scan_limit}");
        let none = all_findings(s.as_ref(), &only(None, Some("ds2"))).await;
        assert!(none.is_empty(), "scan limit {scan_limit}");
    }
    // A page stops at its scan limit: a classifier that matches nothing in the first
    // three findings answers no row, and where to go on.
    let page = s
        .findings_page(
            "j1",
            &FindingsRange {
                classifier: Some("nothing".into()),
                scan_limit: 3,
                ..FindingsRange::after(0, 10)
            },
        )
        .await
        .unwrap();
    assert!(page.rows.is_empty());
    assert_eq!(page.scanned_to, Some(all[2].id));
}

/// Every finding of job j1 in `range`, page after page from its cursor.
async fn all_findings(s: &dyn Store, range: &FindingsRange) -> Vec<FindingRow> {
    let mut range = range.clone();
    let mut seen = Vec::new();
    loop {
        let page = s.findings_page("j1", &range).await.unwrap();
        let full = page.rows.len() as i64 == range.limit;
        let last = page.rows.last().map(|f| f.id);
        seen.extend(page.rows);
        range.after_id = match (full, last, page.scanned_to) {
            (true, Some(id), _) => id,
            (_, _, Some(to)) => to,
            _ => return seen,
        };
    }
}

async fn node_leases_are_handed_back(db: Db) {
    let s = &db.store;
    let ids = job_with_tasks(s.as_ref(), "j1", 4).await;
    s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap();
    let other = LeaseSpec {
        worker_id: "x".into(),
        node: "node-b".into(),
        lease_ms: 60_000,
    };
    let ids2 = job_with_tasks(s.as_ref(), "j2", 1).await;
    s.claim(&ids2, &other).await.unwrap();
    assert_eq!(s.release_node_leases("node-a", false, 3).await.unwrap(), 4);
    let again = s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap();
    assert!(
        again.iter().all(|t| t.attempts == 1),
        "a handed-back attempt does not count"
    );
    let counts = s.job_counts("j2", 1000).await.unwrap();
    assert_eq!(
        task_state(&counts, "PROCESS", "RUNNING"),
        1,
        "another node's leases are untouched"
    );
}

async fn stalled_means_no_progress_whatever_the_heartbeats(db: Db) {
    let s = &db.store;
    let CreateOutcome::Created(_) = s.create_job(&new_job("j1", "h")).await.unwrap() else {
        panic!()
    };
    let ids = s.pending_task_ids("j1", 0, 10).await.unwrap();
    let t = s
        .claim(&ids, &lease_spec("w1", 60_000))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(s.job_counts("j1", 60_000).await.unwrap().stalled_tasks, 0);
    // Thresholds well above what a statement takes on a loaded machine.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        s.heartbeat(&lease_of(&t), 60_000).await.unwrap(),
        HeartbeatOutcome::Extended { .. }
    ));
    assert_eq!(
        s.job_counts("j1", 200).await.unwrap().stalled_tasks,
        1,
        "a heartbeat is not progress"
    );
    let batch = DiscoveryBatch {
        attempt: 1,
        seq: 0,
        objects: objects(2, "p"),
    };
    s.record_discovery(&lease_of(&t), &batch, &TaskBounds::ONE)
        .await
        .unwrap();
    assert_eq!(
        s.job_counts("j1", 200).await.unwrap().stalled_tasks,
        0,
        "progress clears the flag"
    );
}
