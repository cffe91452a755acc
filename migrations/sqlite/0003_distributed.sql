-- Distributed sites, SQLite dialect. Keep in step with
-- migrations/postgres/0003_distributed.sql. SQLite sites never run replicas (the
-- distributed mode needs PostgreSQL), but the lease history is the same on both so
-- that one conformance suite checks it.

CREATE TABLE lease_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL,
    lease_token TEXT    NOT NULL,
    worker_id   TEXT,
    leased_at   INTEGER NOT NULL,
    ended_at    INTEGER,
    end_state   TEXT
);
CREATE INDEX lease_history_task ON lease_history (task_id, id);
CREATE INDEX lease_history_open ON lease_history (task_id) WHERE ended_at IS NULL;

CREATE TRIGGER tasks_lease_ended AFTER UPDATE OF lease_token ON tasks
WHEN OLD.lease_token IS NOT NULL AND OLD.lease_token IS NOT NEW.lease_token
BEGIN
    UPDATE lease_history SET ended_at = CAST(unixepoch('subsec') * 1000 AS INTEGER), end_state = NEW.state
     WHERE task_id = OLD.id AND ended_at IS NULL;
END;

CREATE TRIGGER tasks_lease_started AFTER UPDATE OF lease_token ON tasks
WHEN NEW.lease_token IS NOT NULL AND OLD.lease_token IS NOT NEW.lease_token
BEGIN
    INSERT INTO lease_history (task_id, lease_token, worker_id, leased_at)
    VALUES (NEW.id, NEW.lease_token, NEW.worker_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
