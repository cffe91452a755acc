-- The W3C trace id each job's work is logged under, so that one grep follows a job
-- from the master's logs through the site's to the worker that scanned an object.
-- Expand-only: a nullable column that older versions neither read nor write.
ALTER TABLE jobs ADD COLUMN trace_id TEXT;
