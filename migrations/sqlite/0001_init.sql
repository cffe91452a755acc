-- Meridian site schema, SQLite dialect. Keep in step with migrations/postgres/0001_init.sql:
-- same tables, same columns, same numbering. Times are epoch milliseconds from the
-- database's clock.

CREATE TABLE jobs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- list order and cursor
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    definition_hash TEXT    NOT NULL,                   -- idempotency of start_job
    data_sources    TEXT    NOT NULL,                   -- JSON array of ids
    options         TEXT    NOT NULL,                   -- JSON JobOptions
    priority        INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    status_version  INTEGER NOT NULL
);
CREATE INDEX jobs_active ON jobs (state) WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING');
CREATE INDEX jobs_status_version ON jobs (status_version);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           TEXT    NOT NULL REFERENCES jobs (id),
    data_source_id   TEXT    NOT NULL,
    phase            TEXT    NOT NULL,
    object_id        INTEGER,                  -- PROCESS tasks: the object they scan
    payload          TEXT    NOT NULL,         -- JSON
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       INTEGER NOT NULL DEFAULT 0,  -- retry backoff
    worker_id        TEXT,
    lease_node       TEXT,                     -- node whose worker holds the lease
    lease_token      TEXT,                     -- fencing token of the current lease
    lease_expires_at INTEGER,
    last_progress_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX tasks_pending ON tasks (job_id, id) WHERE state = 'PENDING';
CREATE INDEX tasks_running ON tasks (id) WHERE state = 'RUNNING';
CREATE INDEX tasks_job_state ON tasks (job_id, state);
CREATE UNIQUE INDEX tasks_process_object ON tasks (job_id, object_id) WHERE object_id IS NOT NULL;

CREATE TABLE progress_records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT    NOT NULL,
    task_id      INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    object_count INTEGER NOT NULL,
    processed    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    UNIQUE (task_id, attempt, seq)
);
CREATE INDEX progress_unprocessed ON progress_records (id) WHERE processed = FALSE;
CREATE INDEX progress_job_unprocessed ON progress_records (job_id) WHERE processed = FALSE;

CREATE TABLE discovered_objects (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id             TEXT    NOT NULL,
    data_source_id     TEXT    NOT NULL,
    object_key         TEXT    NOT NULL,
    size_bytes         INTEGER NOT NULL,
    modified_at        INTEGER,
    progress_record_id INTEGER NOT NULL,
    outcome            TEXT,                  -- COMPLETE | PARTIAL | SKIPPED once scanned
    reason             TEXT,
    UNIQUE (job_id, data_source_id, object_key)
);
CREATE INDEX objects_record ON discovered_objects (progress_record_id);
CREATE INDEX objects_job_outcome ON discovered_objects (job_id, outcome);

CREATE TABLE findings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        TEXT    NOT NULL,
    object_id     INTEGER NOT NULL,
    classifier    TEXT    NOT NULL,
    location      TEXT    NOT NULL,
    count         INTEGER NOT NULL,
    masked_sample TEXT    NOT NULL,
    confidence    REAL    NOT NULL,
    UNIQUE (job_id, object_id, classifier, location)
);
CREATE INDEX findings_job ON findings (job_id, id);

CREATE TABLE system_parameters (
    scope      TEXT    NOT NULL,   -- 'global' or a node id
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- One row per counter. status_version is taken with UPDATE ... RETURNING as the last
-- statement of a transaction, so its row lock orders versions by commit.
CREATE TABLE site_counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO site_counters (name, value) VALUES ('status_version', 0);
