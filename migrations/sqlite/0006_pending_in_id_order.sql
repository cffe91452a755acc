-- A job's tasks by state, in id order. Keep in step with
-- migrations/postgres/0006_pending_in_id_order.sql (why: there).
CREATE INDEX tasks_job_state_id ON tasks (job_id, state, id);
DROP INDEX tasks_job_state;
