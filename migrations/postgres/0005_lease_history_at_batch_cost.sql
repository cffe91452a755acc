-- The lease-history trigger at batch cost. Keep in step with
-- migrations/sqlite/0005_lease_history_at_batch_cost.sql.
--
-- The trigger of 0003 joined its transition tables (`old_rows`, `new_rows`) in SQL.
-- The planner has no statistics for them and estimates one row each, so it joined
-- them by a nested loop that rescans `new_rows` for every row of `old_rows`: a claim
-- or completion of 400 tasks spent about 0.2 s in the trigger (n² tuplestore reads).
-- Here each transition table is read once into arrays ordered by task id. An UPDATE
-- of tasks never changes ids, so both tables hold the same ids and the arrays line
-- up by position; `unnest` zips them, and the history rows to close are found
-- through the partial index of open leases. Same rows written as before.
CREATE OR REPLACE FUNCTION meridian_lease_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
    o_ids BIGINT[];
    o_tokens TEXT[];
    n_ids BIGINT[];
    n_tokens TEXT[];
    n_workers TEXT[];
    n_states TEXT[];
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(lease_token ORDER BY id)
      INTO o_ids, o_tokens FROM old_rows;
    IF o_ids IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(id ORDER BY id), array_agg(lease_token ORDER BY id),
           array_agg(worker_id ORDER BY id), array_agg(state ORDER BY id)
      INTO n_ids, n_tokens, n_workers, n_states FROM new_rows;
    IF o_ids IS DISTINCT FROM n_ids THEN
        RAISE EXCEPTION 'lease history: an UPDATE of tasks changed task ids';
    END IF;
    UPDATE lease_history h SET ended_at = now_ms, end_state = e.state
      FROM unnest(o_ids, o_tokens, n_tokens, n_states) AS e(id, old_token, new_token, state)
     WHERE e.old_token IS NOT NULL AND e.old_token IS DISTINCT FROM e.new_token
       AND h.task_id = e.id AND h.ended_at IS NULL;
    INSERT INTO lease_history (task_id, lease_token, worker_id, leased_at)
    SELECT e.id, e.new_token, e.worker, now_ms
      FROM unnest(n_ids, n_tokens, o_tokens, n_workers) AS e(id, new_token, old_token, worker)
     WHERE e.new_token IS NOT NULL AND e.new_token IS DISTINCT FROM e.old_token;
    RETURN NULL;
END
$$;
