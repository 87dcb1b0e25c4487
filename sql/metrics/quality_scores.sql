-- The data quality score per dataset and kind of check (data_quality_score in `lake serve`):
-- 1 - (records received that failed a check of that kind) / (records received), over the last
-- 24 hours and over all time. Records received are those of ingest batches (a release from the
-- quarantine re-counts records already received, so it is left out); a record fails a kind when
-- its quarantine entry has a reason of that kind. Kinds, from the rules: time (time_missing,
-- time_unparseable, time_in_future, partition_missing), owner (owner_missing), size (too_large,
-- too_deep, depth), encoding (json: not valid JSON text), schema (every JSON Schema keyword), and
-- all (any reason: the share of records stored). No row where no record was received.
CREATE VIEW lake.quality_scores AS
WITH windows (time_window, since) AS (
    VALUES ('24h', now() - interval '24 hours'), ('all', '-infinity'::timestamptz)
), received AS (
    SELECT w.time_window, b.dataset, sum(b.received) AS n, sum(b.quarantined) AS failed
      FROM windows AS w JOIN lake.batches AS b ON b.created_at >= w.since
     WHERE b.source <> 'release'
     GROUP BY 1, 2
), failed AS (
    SELECT w.time_window, q.dataset, k.check_type, count(DISTINCT q.id) AS n
      FROM windows AS w
      JOIN lake.quarantine AS q ON q.received_at >= w.since
      CROSS JOIN LATERAL (
            SELECT DISTINCT CASE
                       WHEN r ->> 'rule' IN ('time_missing', 'time_unparseable', 'time_in_future',
                                             'partition_missing') THEN 'time'
                       WHEN r ->> 'rule' = 'owner_missing' THEN 'owner'
                       WHEN r ->> 'rule' IN ('too_large', 'too_deep', 'depth') THEN 'size'
                       WHEN r ->> 'rule' = 'json' THEN 'encoding'
                       ELSE 'schema' END AS check_type
              FROM jsonb_array_elements(q.reasons) AS r) AS k
     GROUP BY 1, 2, 3
)
SELECT r.dataset, c.check_type, r.time_window, r.n AS received,
       CASE c.check_type WHEN 'all' THEN r.failed ELSE coalesce(f.n, 0) END AS failed,
       greatest(0, 1 - (CASE c.check_type WHEN 'all' THEN r.failed ELSE coalesce(f.n, 0) END)::float8
                       / r.n) AS score
  FROM received AS r
 CROSS JOIN (VALUES ('all'), ('schema'), ('time'), ('encoding'), ('owner'), ('size'))
            AS c(check_type)
  LEFT JOIN failed AS f USING (time_window, dataset, check_type)
 WHERE r.n > 0;
ALTER VIEW lake.quality_scores OWNER TO lake_owner;
GRANT SELECT ON lake.quality_scores TO lake_admin;

COMMENT ON VIEW lake.quality_scores IS
    'Data quality score (0-1) per dataset, kind of check and window (24h, all): data_quality_score.';
COMMENT ON COLUMN lake.quality_scores.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.quality_scores.check_type IS
    'all, schema, time, encoding, owner or size.';
COMMENT ON COLUMN lake.quality_scores.time_window IS '24h (the last 24 hours) or all (all time).';
COMMENT ON COLUMN lake.quality_scores.received IS 'Records received by ingest batches.';
COMMENT ON COLUMN lake.quality_scores.failed IS 'Of those, the ones that failed a check of the kind.';
COMMENT ON COLUMN lake.quality_scores.score IS '1 - failed / received.';
