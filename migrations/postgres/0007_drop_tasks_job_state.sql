-- no-transaction
-- tasks_job_state (job_id, state) is a prefix of tasks_job_state_id (0006), and the
-- planner, without statistics, preferred it and sorted (see 0006). No statement names
-- it, and it is not unique, so binaries of the previous release run the same without
-- it. Dropped CONCURRENTLY, alone in its file: a plain DROP INDEX takes a lock on
-- tasks that blocks reads and writes, and waits behind any long transaction with the
-- whole queue stalled behind it. Keep in step with migrations/sqlite/0007.
DROP INDEX CONCURRENTLY IF EXISTS tasks_job_state;
