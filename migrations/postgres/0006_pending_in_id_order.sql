-- A job's tasks by state, in id order. Keep in step with
-- migrations/sqlite/0006_pending_in_id_order.sql.
--
-- The assigner pages through a job's pending tasks by id (`id > cursor ORDER BY id
-- LIMIT n`). A young queue has no statistics (autovacuum analyzes after a minute), so
-- the planner guessed one pending row and chose tasks_job_state (job_id, state), then
-- sorted: every refill read all of the job's pending tasks (0.1-0.2 s each at 50,000).
-- With id as its third column the same index hands them out in id order and the scan
-- stops at the limit, whichever of the two indexes the planner picks. It serves the
-- counts by (job, state) as before.
CREATE INDEX tasks_job_state_id ON tasks (job_id, state, id);
DROP INDEX tasks_job_state;
