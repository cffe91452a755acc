//! A fresh site store for the storage suites (`store_conformance.rs`,
//! `store_batches.rs`), which run the same bodies on SQLite and PostgreSQL, and the
//! small values they all build.

use std::sync::Arc;

use meridian_store::{ClaimedTask, Lease, LeaseSpec, NewJob, Store};

use crate::Backend;

/// A migrated store on a database of its own; the temporary directory holds the
/// SQLite file and lives as long as the store.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Opens a fresh store on `backend`, migrated.
pub async fn open(backend: Backend) -> TestStore {
    crate::init();
    let dir = tempfile::tempdir().unwrap();
    let url = crate::database_url(backend, dir.path()).await;
    let store = meridian_store::open(&url, 8)
        .await
        .expect("store opens and migrates");
    TestStore {
        store,
        url,
        _dir: dir,
    }
}

/// A store on `sqlite::memory:` (what unit-level uses take); nothing on disk.
pub async fn in_memory_sqlite() -> TestStore {
    crate::init();
    let url = "sqlite::memory:";
    let store = meridian_store::open(url, 4).await.expect("in-memory store");
    TestStore {
        store,
        url: url.into(),
        _dir: tempfile::tempdir().unwrap(),
    }
}

/// A job over data source `ds1`, whose definition hashes to `hash`.
pub fn new_job(id: &str, hash: &str) -> NewJob {
    NewJob {
        id: id.into(),
        name: "job".into(),
        definition_hash: hash.into(),
        data_sources: vec!["ds1".into()],
        options: "{}".into(),
        priority: 1,
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
    }
}

/// Leases for `worker` on node `node-a`, of `lease_ms`.
pub fn lease_spec(worker: &str, lease_ms: i64) -> LeaseSpec {
    LeaseSpec {
        worker_id: worker.into(),
        node: "node-a".into(),
        lease_ms,
    }
}

/// The lease a claim handed out.
pub fn lease_of(t: &ClaimedTask) -> Lease {
    Lease {
        task_id: t.id,
        lease_token: t.lease_token.clone(),
    }
}
