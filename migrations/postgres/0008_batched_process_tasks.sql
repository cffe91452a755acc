-- A PROCESS task may cover several objects: each object names the task that scans
-- it (NULL for objects whose task names them in tasks.object_id, as tasks made before
-- this migration do). No index: the column is read with the object's primary key, and
-- a task's objects are listed in its payload. Adding a nullable column without a
-- default only changes the catalog, so the table's lock is held for an instant.
ALTER TABLE discovered_objects ADD COLUMN IF NOT EXISTS task_id BIGINT;
