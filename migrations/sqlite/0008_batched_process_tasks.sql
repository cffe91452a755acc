-- A PROCESS task may cover several objects: each object names the task that scans
-- it (NULL for objects whose task names them in tasks.object_id, as tasks made before
-- this migration do). See migrations/postgres/0008_batched_process_tasks.sql.
ALTER TABLE discovered_objects ADD COLUMN task_id INTEGER;
