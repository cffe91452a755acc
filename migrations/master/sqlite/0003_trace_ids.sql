-- The W3C trace id of each job (the creating caller's `traceparent`, or a new one),
-- sent to the sites on dispatch and cancel. Expand-only: older versions ignore it.
ALTER TABLE jobs ADD COLUMN trace_id TEXT;
