-- A job's finding counts, kept with each completion instead of summed over its
-- findings (millions of rows for a large share) on every status read: the sum of
-- counts per (data source, classifier), and the objects with at least one finding
-- per data source. Filled here for the jobs that already have findings.
CREATE TABLE finding_totals (
    job_id         TEXT   NOT NULL,
    data_source_id TEXT   NOT NULL,
    classifier     TEXT   NOT NULL,
    total          BIGINT NOT NULL,
    PRIMARY KEY (job_id, data_source_id, classifier)
);

CREATE TABLE flagged_objects (
    job_id         TEXT   NOT NULL,
    data_source_id TEXT   NOT NULL,
    objects        BIGINT NOT NULL,
    PRIMARY KEY (job_id, data_source_id)
);

INSERT INTO finding_totals (job_id, data_source_id, classifier, total)
SELECT f.job_id, o.data_source_id, f.classifier, SUM(f.count)
FROM findings f JOIN discovered_objects o ON o.id = f.object_id
GROUP BY f.job_id, o.data_source_id, f.classifier;

INSERT INTO flagged_objects (job_id, data_source_id, objects)
SELECT f.job_id, o.data_source_id, COUNT(DISTINCT f.object_id)
FROM findings f JOIN discovered_objects o ON o.id = f.object_id
GROUP BY f.job_id, o.data_source_id;
