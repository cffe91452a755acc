-- The index 0006 extends, dropped as on PostgreSQL
-- (migrations/postgres/0007_drop_tasks_job_state.sql). SQLite has one writer and its
-- migrations run before the site serves, so no concurrent form is needed.
DROP INDEX IF EXISTS tasks_job_state;
