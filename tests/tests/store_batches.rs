//! Batched `PROCESS` tasks, on SQLite and on PostgreSQL by the same test bodies:
//! discovery groups objects into tasks by count and bytes, exactly once; a batch
//! completes with an outcome per object; a batch that keeps failing is split until the
//! object at fault is alone, and its neighbours complete.

use std::collections::{BTreeMap, HashMap, HashSet};

use meridian_store::{
    ClaimedTask, Completion, CreateOutcome, DiscoveryBatch, FailedObject, Failure, Lease,
    NewFinding, NewObject, ObjectResult, ReportOutcome, Store, TaskBounds,
};
use meridian_tests::store::{TestStore as Db, lease_of, lease_spec, new_job, open};
use meridian_wire::states::ObjectOutcome;
use serde_json::Value;

meridian_tests::on_both!(
    open: open;
    objects_are_grouped_into_tasks_by_count_and_bytes_exactly_once,
    a_batch_completes_with_an_outcome_per_object,
    a_batch_that_keeps_failing_is_split_until_the_poison_object_is_alone,
    a_batch_whose_workers_keep_dying_is_split_by_the_reaper,
    a_batch_stopped_by_its_cancelling_job_is_not_split,
    an_object_that_can_never_be_scanned_fails_alone_and_counts_as_one,
);

const BOUNDS: TaskBounds = TaskBounds {
    objects: 4,
    bytes: 1000,
};

fn object(key: &str, size_bytes: i64) -> NewObject {
    NewObject {
        key: key.into(),
        size_bytes,
        modified_at: None,
        skipped_reason: None,
    }
}

/// The (object id, key) pairs a claimed `PROCESS` task covers.
fn covered(t: &ClaimedTask) -> Vec<(i64, String)> {
    let payload: Value = serde_json::from_str(&t.payload).unwrap();
    payload["objects"]
        .as_array()
        .expect("a batched payload")
        .iter()
        .map(|o| {
            (
                o["object_id"].as_i64().unwrap(),
                o["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Creates job `id` and leases its discovery task.
async fn discovering(s: &dyn Store, id: &str) -> Lease {
    let CreateOutcome::Created(_) = s.create_job(&new_job(id, "h")).await.unwrap() else {
        panic!("created")
    };
    let ids = s.pending_task_ids(id, 0, 10).await.unwrap();
    lease_of(&s.claim(&ids, &lease_spec("w", 60_000)).await.unwrap()[0])
}

async fn record(s: &dyn Store, lease: &Lease, attempt: i64, objects: Vec<NewObject>) -> u64 {
    let batch = DiscoveryBatch {
        attempt,
        seq: 0,
        objects,
    };
    let r = s.record_discovery(lease, &batch, &BOUNDS).await.unwrap();
    assert_eq!(r.outcome, ReportOutcome::Accepted);
    r.tasks_created
}

async fn claim_all(s: &dyn Store, job: &str, lease_ms: i64) -> Vec<ClaimedTask> {
    let ids = s.pending_task_ids(job, 0, 1000).await.unwrap();
    let mut tasks = s.claim(&ids, &lease_spec("w", lease_ms)).await.unwrap();
    tasks.sort_by_key(|t| t.id);
    tasks
}

fn done(task: &ClaimedTask, outcomes: Vec<ObjectResult>, findings: Vec<NewFinding>) -> Completion {
    done_with(lease_of(task), outcomes, findings)
}

fn done_with(lease: Lease, outcomes: Vec<ObjectResult>, findings: Vec<NewFinding>) -> Completion {
    Completion {
        failed: vec![],
        lease,
        objects: outcomes,
        findings,
    }
}

fn complete_all(task: &ClaimedTask) -> Completion {
    let outcomes = covered(task)
        .into_iter()
        .map(|(object_id, _)| ObjectResult {
            object_id,
            outcome: ObjectOutcome::Complete,
            reason: None,
        })
        .collect();
    done(task, outcomes, vec![])
}

fn outcomes(counts: &meridian_store::JobCounts) -> BTreeMap<String, i64> {
    counts.objects_by_outcome.iter().cloned().collect()
}

fn tasks_in(counts: &meridian_store::JobCounts, state: &str) -> i64 {
    counts
        .tasks
        .iter()
        .filter(|(p, s, _)| p == "PROCESS" && s == state)
        .map(|t| t.2)
        .sum()
}

async fn objects_are_grouped_into_tasks_by_count_and_bytes_exactly_once(db: Db) {
    let s = &*db.store;
    let lease = discovering(s, "g").await;
    // Nine small objects (three tasks of at most four), one skipped (no task), one of
    // 600 bytes that does not fit beside 500 more (a task of its own), one too large
    // for any task (alone).
    let mut batch: Vec<NewObject> = (0..9).map(|i| object(&format!("small-{i}"), 10)).collect();
    batch.push(NewObject {
        skipped_reason: Some("too large".into()),
        ..object("skipped", 10)
    });
    batch.push(object("mid-a", 500));
    batch.push(object("mid-b", 600));
    batch.push(object("huge", 5000));
    assert_eq!(record(s, &lease, 1, batch.clone()).await, 5);

    let tasks = claim_all(s, "g", 60_000).await;
    let sizes: Vec<usize> = tasks.iter().map(|t| covered(t).len()).collect();
    assert_eq!(sizes, [4, 4, 2, 1, 1], "{sizes:?}");
    let keys: Vec<String> = tasks.iter().flat_map(covered).map(|o| o.1).collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), 12, "every object once: {keys:?}");
    assert_eq!(unique.len(), 12);
    assert!(!unique.contains(&"skipped".to_owned()));

    // The discovery task's retry walks the same objects again, and two more: only the
    // new ones get a task, together.
    batch.push(object("late-1", 10));
    batch.push(object("late-2", 10));
    assert_eq!(record(s, &lease, 2, batch).await, 1);
    let late = claim_all(s, "g", 60_000).await;
    let late: Vec<String> = late.iter().flat_map(covered).map(|o| o.1).collect();
    assert_eq!(late, ["late-1", "late-2"]);
    let counts = s.job_counts("g", 60_000).await.unwrap();
    assert_eq!(counts.objects_discovered, 15);
}

async fn a_batch_completes_with_an_outcome_per_object(db: Db) {
    let s = &*db.store;
    let lease = discovering(s, "c").await;
    let objects: Vec<NewObject> = (0..4).map(|i| object(&format!("f{i}"), 10)).collect();
    assert_eq!(record(s, &lease, 1, objects).await, 1);
    let task = claim_all(s, "c", 60_000).await.remove(0);
    let ids: Vec<i64> = covered(&task).iter().map(|o| o.0).collect();
    let outcome = |i: usize, outcome, reason: Option<&str>| ObjectResult {
        object_id: ids[i],
        outcome,
        reason: reason.map(str::to_owned),
    };
    let finding = |i: usize, location: &str| NewFinding {
        object_id: ids[i],
        classifier: "email".into(),
        location: location.into(),
        count: 2,
        masked_sample: "j***@example.com".into(),
        confidence: 0.9,
    };
    let completion = done(
        &task,
        vec![
            outcome(0, ObjectOutcome::Complete, None),
            outcome(1, ObjectOutcome::Complete, None),
            outcome(2, ObjectOutcome::Skipped, Some("binary file")),
            outcome(3, ObjectOutcome::Partial, Some("truncated")),
        ],
        // The same finding twice (same object, classifier, location): recorded and
        // counted once.
        vec![
            finding(0, "line:1"),
            finding(1, "line:3"),
            finding(3, "line:9"),
            finding(3, "line:9"),
        ],
    );
    assert_eq!(
        s.complete(std::slice::from_ref(&completion)).await.unwrap(),
        [ReportOutcome::Accepted]
    );
    // Sent again (a retry after a lost answer): the lease is over, nothing twice.
    assert_eq!(
        s.complete(&[completion]).await.unwrap(),
        [ReportOutcome::LeaseLost]
    );
    let counts = s.job_counts("c", 60_000).await.unwrap();
    assert_eq!(
        outcomes(&counts),
        BTreeMap::from([
            ("COMPLETE".into(), 2),
            ("PARTIAL".into(), 1),
            ("SKIPPED".into(), 1)
        ])
    );
    assert_eq!(counts.findings, [("email".to_owned(), 6)]);
    assert_eq!(counts.objects_with_findings, [("ds1".to_owned(), 3)]);
    assert_eq!(tasks_in(&counts, "SUCCEEDED"), 1);
}

async fn a_batch_that_keeps_failing_is_split_until_the_poison_object_is_alone(db: Db) {
    let s = &*db.store;
    let lease = discovering(s, "p").await;
    let objects: Vec<NewObject> = (0..4).map(|i| object(&format!("o{i}"), 10)).collect();
    assert_eq!(record(s, &lease, 1, objects).await, 1);
    let failure = Failure {
        error: "scanner crashed on o2".into(),
        retryable: true,
        split: true,
        max_retries: 3,
        backoff_ms: 0,
    };
    let mut failed_attempts = HashMap::<i64, u32>::new();
    for round in 0.. {
        assert!(round < 40, "the job never settles");
        let tasks = claim_all(s, "p", 60_000).await;
        if tasks.is_empty() {
            break;
        }
        for t in &tasks {
            let objects = covered(t);
            if objects.iter().any(|o| o.1 == "o2") {
                *failed_attempts.entry(t.id).or_default() += 1;
                s.fail(&lease_of(t), &failure).await.unwrap();
            } else {
                let c = complete_all(t);
                assert_eq!(s.complete(&[c]).await.unwrap(), [ReportOutcome::Accepted]);
            }
        }
    }
    let counts = s.job_counts("p", 60_000).await.unwrap();
    assert_eq!(
        outcomes(&counts),
        BTreeMap::from([("COMPLETE".into(), 3)]),
        "every neighbour of the poison object completes"
    );
    assert_eq!(tasks_in(&counts, "FAILED"), 1, "{:?}", counts.tasks);
    assert_eq!(
        tasks_in(&counts, "PENDING") + tasks_in(&counts, "RUNNING"),
        0
    );
    // 4 objects: split at 2 failures (2 + 2), again (1 + 1), then the poison object
    // alone uses its 3 attempts: 7 failed attempts, over 3 tasks (each split keeps
    // the task's first half in it).
    assert_eq!(
        failed_attempts.values().sum::<u32>(),
        7,
        "{failed_attempts:?}"
    );
}

async fn a_batch_whose_workers_keep_dying_is_split_by_the_reaper(db: Db) {
    let s = &*db.store;
    let lease = discovering(s, "r").await;
    let objects: Vec<NewObject> = (0..2).map(|i| object(&format!("k{i}"), 10)).collect();
    assert_eq!(record(s, &lease, 1, objects).await, 1);
    for _ in 0..2 {
        let tasks = claim_all(s, "r", 1).await;
        assert_eq!(tasks.len(), 1);
        assert_eq!(covered(&tasks[0]).len(), 2);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(s.reap_expired(100, 3).await.unwrap().requeued, 1);
    }
    let tasks = claim_all(s, "r", 60_000).await;
    let split: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| covered(t).into_iter().map(|o| o.1).collect())
        .collect();
    assert_eq!(split, [vec!["k0".to_owned()], vec!["k1".to_owned()]]);
    assert!(tasks.iter().all(|t| t.attempts == 1), "counted afresh");
    let done: Vec<Completion> = tasks.iter().map(complete_all).collect();
    assert_eq!(
        s.complete(&done).await.unwrap(),
        [ReportOutcome::Accepted, ReportOutcome::Accepted]
    );
    let counts = s.job_counts("r", 60_000).await.unwrap();
    assert_eq!(outcomes(&counts), BTreeMap::from([("COMPLETE".into(), 2)]));
}

async fn an_object_that_can_never_be_scanned_fails_alone_and_counts_as_one(db: Db) {
    let s = &*db.store;
    for (job, threshold, expected) in [("t1", 10.0, "FAILED"), ("t2", 30.0, "COMPLETED")] {
        let lease = discovering(s, job).await;
        let objects: Vec<NewObject> = (0..4).map(|i| object(&format!("x{i}"), 10)).collect();
        assert_eq!(record(s, &lease, 1, objects).await, 1);
        let discovered = done_with(lease, vec![], vec![]);
        assert_eq!(
            s.complete(&[discovered]).await.unwrap(),
            [ReportOutcome::Accepted]
        );
        let task = claim_all(s, job, 60_000).await.remove(0);
        let mut c = complete_all(&task);
        let poison = c.objects.remove(3);
        c.failed.push(FailedObject {
            object_id: poison.object_id,
            error: "x3: unreadable for good".into(),
        });
        assert_eq!(s.complete(&[c]).await.unwrap(), [ReportOutcome::Accepted]);
        let counts = s.job_counts(job, 60_000).await.unwrap();
        assert_eq!(tasks_in(&counts, "SUCCEEDED"), 1);
        assert_eq!(tasks_in(&counts, "FAILED"), 1, "its own failed task");
        assert_eq!(outcomes(&counts), BTreeMap::from([("COMPLETE".into(), 3)]));
        // Five units (the discovery and four objects), one failed: 20 %.
        let finished = s.finish_jobs(threshold).await.unwrap();
        let state: Vec<String> = finished
            .iter()
            .filter(|f| f.id == job)
            .map(|f| f.state.to_string())
            .collect();
        assert_eq!(state, [expected], "threshold {threshold}");
    }
}

async fn a_batch_stopped_by_its_cancelling_job_is_not_split(db: Db) {
    let s = &*db.store;
    let lease = discovering(s, "k").await;
    let objects: Vec<NewObject> = (0..4).map(|i| object(&format!("c{i}"), 10)).collect();
    assert_eq!(record(s, &lease, 1, objects).await, 1);
    // How the engine reports a task stopped because its job is being cancelled:
    // retryable, no limit, no backoff, and nothing the objects did.
    let stopped = Failure {
        error: "job cancelled".into(),
        retryable: true,
        split: false,
        max_retries: u32::MAX,
        backoff_ms: 0,
    };
    for _ in 0..3 {
        let tasks = claim_all(s, "k", 60_000).await;
        assert_eq!(tasks.len(), 1, "still one task");
        assert_eq!(covered(&tasks[0]).len(), 4, "with its four objects");
        s.fail(&lease_of(&tasks[0]), &stopped).await.unwrap();
    }
}
