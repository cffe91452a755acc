//! Which workers this process runs and what each is doing (`GET /workers`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use meridian_wire::WorkerInfo;
use meridian_wire::time::{now_ms, rfc3339_from_millis};

#[derive(Debug, Clone)]
struct Entry {
    started_ms: i64,
    last_heartbeat_ms: Option<i64>,
    current: Option<i64>,
}

#[derive(Debug, Default)]
pub struct WorkerRegistry {
    workers: Mutex<BTreeMap<String, Entry>>,
}

impl WorkerRegistry {
    pub fn register(&self, id: &str) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.insert(
            id.to_owned(),
            Entry {
                started_ms: now_ms(),
                last_heartbeat_ms: None,
                current: None,
            },
        );
    }

    pub fn unregister(&self, id: &str) {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub fn set_current(&self, id: &str, task: Option<i64>) {
        if let Some(e) = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            e.current = task;
        }
    }

    pub fn heartbeat(&self, id: &str) {
        if let Some(e) = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            e.last_heartbeat_ms = Some(now_ms());
        }
    }

    pub fn len(&self) -> usize {
        self.workers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn list(&self) -> Vec<WorkerInfo> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, e)| WorkerInfo {
                worker_id: id.clone(),
                kind: "in_process".into(),
                slots: 1,
                started_at: rfc3339_from_millis(e.started_ms),
                last_heartbeat_at: e.last_heartbeat_ms.map(rfc3339_from_millis),
                current_tasks: e.current.into_iter().collect(),
            })
            .collect()
    }
}
