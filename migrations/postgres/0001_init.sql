-- Meridian site schema, PostgreSQL dialect. Keep in step with migrations/sqlite/0001_init.sql:
-- same tables, same columns, same numbering. Times are epoch milliseconds from the
-- database's clock.

CREATE TABLE jobs (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    definition_hash TEXT    NOT NULL,
    data_sources    TEXT    NOT NULL,
    options         TEXT    NOT NULL,
    priority        BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    status_version  BIGINT  NOT NULL
);
CREATE INDEX jobs_active ON jobs (state) WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING');
CREATE INDEX jobs_status_version ON jobs (status_version);

-- The queue. Heartbeats change only lease_expires_at, which no index covers, so they
-- stay HOT updates; fillfactor leaves room for them on the page.
CREATE TABLE tasks (
    id               BIGSERIAL PRIMARY KEY,
    job_id           TEXT    NOT NULL REFERENCES jobs (id),
    data_source_id   TEXT    NOT NULL,
    phase            TEXT    NOT NULL,
    object_id        BIGINT,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    not_before       BIGINT  NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_node       TEXT,
    lease_token      TEXT,
    lease_expires_at BIGINT,
    last_progress_at BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT
) WITH (fillfactor = 80,
        autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0,
        autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX tasks_pending ON tasks (job_id, id) WHERE state = 'PENDING';
CREATE INDEX tasks_running ON tasks (id) WHERE state = 'RUNNING';
CREATE INDEX tasks_job_state ON tasks (job_id, state);
CREATE UNIQUE INDEX tasks_process_object ON tasks (job_id, object_id) WHERE object_id IS NOT NULL;

CREATE TABLE progress_records (
    id           BIGSERIAL PRIMARY KEY,
    job_id       TEXT    NOT NULL,
    task_id      BIGINT  NOT NULL,
    attempt      BIGINT  NOT NULL,
    seq          BIGINT  NOT NULL,
    object_count BIGINT  NOT NULL,
    processed    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL,
    UNIQUE (task_id, attempt, seq)
);
CREATE INDEX progress_unprocessed ON progress_records (id) WHERE NOT processed;
CREATE INDEX progress_job_unprocessed ON progress_records (job_id) WHERE NOT processed;

CREATE TABLE discovered_objects (
    id                 BIGSERIAL PRIMARY KEY,
    job_id             TEXT    NOT NULL,
    data_source_id     TEXT    NOT NULL,
    object_key         TEXT    NOT NULL,
    size_bytes         BIGINT  NOT NULL,
    modified_at        BIGINT,
    progress_record_id BIGINT  NOT NULL,
    outcome            TEXT,
    reason             TEXT,
    UNIQUE (job_id, data_source_id, object_key)
);
CREATE INDEX objects_record ON discovered_objects (progress_record_id);
CREATE INDEX objects_job_outcome ON discovered_objects (job_id, outcome);

CREATE TABLE findings (
    id            BIGSERIAL PRIMARY KEY,
    job_id        TEXT    NOT NULL,
    object_id     BIGINT  NOT NULL,
    classifier    TEXT    NOT NULL,
    location      TEXT    NOT NULL,
    count         BIGINT  NOT NULL,
    masked_sample TEXT    NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL,
    UNIQUE (job_id, object_id, classifier, location)
);
CREATE INDEX findings_job ON findings (job_id, id);

CREATE TABLE system_parameters (
    scope      TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE site_counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO site_counters (name, value) VALUES ('status_version', 0);
