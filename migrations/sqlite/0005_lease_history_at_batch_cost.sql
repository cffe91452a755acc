-- The lease-history trigger at batch cost: PostgreSQL's statement-level trigger reads
-- its transition tables once each instead of joining them by a nested loop
-- (migrations/postgres/0005_lease_history_at_batch_cost.sql). SQLite's row triggers
-- (0003) find the open lease through the partial index already: nothing changes here.
-- The file keeps both dialects' migrations numbered alike.
SELECT 1;
