-- A job's tasks by state, in id order. Keep in step with
-- migrations/postgres/0006_pending_in_id_order.sql (why: there).
CREATE INDEX IF NOT EXISTS tasks_job_state_id ON tasks (job_id, state, id);
