-- Distributed sites (several orchestrator replicas, remote workers), PostgreSQL
-- dialect. Keep in step with migrations/sqlite/0003_distributed.sql.

-- Lease history: one row per lease a task was ever given, written by a trigger in the
-- same statement that changes the task's lease token, so no code path can lease a
-- task without leaving a row. A lease ends when the token is replaced or cleared
-- (completion, failure, reap, hand-back); `end_state` is the task's state after.
-- Tests read it to prove that no task was ever leased to two workers at once.
CREATE TABLE lease_history (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT NOT NULL,
    lease_token TEXT   NOT NULL,
    worker_id   TEXT,
    leased_at   BIGINT NOT NULL,
    ended_at    BIGINT,
    end_state   TEXT
);
CREATE INDEX lease_history_task ON lease_history (task_id, id);
CREATE INDEX lease_history_open ON lease_history (task_id) WHERE ended_at IS NULL;

-- One statement-level trigger with transition tables rather than a row trigger: a
-- claim or completion of 100 tasks costs two set-based statements, not 100 calls.
-- (PostgreSQL does not allow a column list with transition tables, so it fires for
-- every UPDATE of tasks; statements that leave lease tokens alone match no row.)
CREATE FUNCTION meridian_lease_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    UPDATE lease_history h SET ended_at = now_ms, end_state = n.state
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     WHERE o.lease_token IS NOT NULL AND o.lease_token IS DISTINCT FROM n.lease_token
       AND h.task_id = o.id AND h.ended_at IS NULL;
    INSERT INTO lease_history (task_id, lease_token, worker_id, leased_at)
    SELECT n.id, n.lease_token, n.worker_id, now_ms
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.lease_token IS NOT NULL AND n.lease_token IS DISTINCT FROM o.lease_token;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_lease_history AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_lease_history();

-- New tasks wake idle workers long-polling any replica: NOTIFY is delivered at commit,
-- once per transaction whatever the number of rows. Replicas also poll, so a lost
-- notification costs latency only.
CREATE FUNCTION meridian_tasks_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('meridian_tasks', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_added AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_tasks_added();
