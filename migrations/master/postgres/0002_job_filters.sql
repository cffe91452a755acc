-- Indexes of the filtered job list (GET /api/v1/jobs): one per sort order, with the
-- job id as tie-breaker so a keyset page is one index range; the state index leads
-- with the state so `state=...` pages read only that state's entries; a site filter
-- probes site_jobs by (site, job_id).
CREATE INDEX jobs_created ON jobs (created_at, job_id);
CREATE INDEX jobs_state_created ON jobs (state, created_at, job_id);
CREATE INDEX jobs_name ON jobs (name, job_id);
CREATE INDEX site_jobs_site ON site_jobs (site, job_id);
