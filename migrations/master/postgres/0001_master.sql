-- The master's store (PostgreSQL). Times are Unix milliseconds; JSON is text.
-- The same statements run on SQLite (see ../sqlite), so types stay portable.

CREATE TABLE jobs (
    job_id            TEXT PRIMARY KEY,          -- UUIDv7: ordering by id is creation order
    name              TEXT NOT NULL,
    request           TEXT NOT NULL,             -- the create request as accepted (JSON)
    request_hash      TEXT NOT NULL,             -- sha-256 of its canonical form
    idempotency_key   TEXT UNIQUE,
    state             TEXT NOT NULL,             -- derived overall state, kept current by the poller
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX jobs_state ON jobs (state, job_id);

CREATE TABLE site_jobs (
    job_id             TEXT NOT NULL REFERENCES jobs (job_id),
    site               TEXT NOT NULL,
    data_sources       TEXT NOT NULL,            -- JSON array of this site's data source ids
    dispatch_state     TEXT NOT NULL,            -- PENDING | DISPATCHED | REJECTED | SKIPPED
    dispatch_attempts  BIGINT NOT NULL DEFAULT 0,
    next_dispatch_at   BIGINT NOT NULL,
    cancel_state       TEXT NOT NULL DEFAULT 'NONE', -- NONE | REQUESTED | ACKNOWLEDGED
    cancel_attempts    BIGINT NOT NULL DEFAULT 0,
    next_cancel_at     BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    status             TEXT,                     -- the site's last JobStatus (JSON)
    status_version     BIGINT NOT NULL DEFAULT -1,
    child_state        TEXT,
    status_at          BIGINT,
    PRIMARY KEY (job_id, site)
);
CREATE INDEX site_jobs_dispatch ON site_jobs (dispatch_state, next_dispatch_at);
CREATE INDEX site_jobs_cancel ON site_jobs (cancel_state, next_cancel_at);

CREATE TABLE sites (
    name                  TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    since_version         BIGINT NOT NULL DEFAULT 0, -- cursor of the site's delta status call
    reachability          TEXT NOT NULL DEFAULT 'UNKNOWN', -- UNKNOWN | REACHABLE | UNREACHABLE
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    last_seen_at          BIGINT,
    last_polled_at        BIGINT,
    last_latency_ms       BIGINT,
    last_error            TEXT,
    catalog_refreshed_at  BIGINT
);

CREATE TABLE catalog (
    site         TEXT NOT NULL,
    data_source  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    description  TEXT NOT NULL,
    PRIMARY KEY (site, data_source)
);
CREATE INDEX catalog_id ON catalog (data_source);
