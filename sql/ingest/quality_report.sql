-- Per dataset: what came in, what was quarantined and why, and what awaits review.
CREATE VIEW lake.quality_report AS
SELECT d.name                                              AS dataset,
       coalesce(b.batches, 0)                              AS batches,
       coalesce(b.received, 0)                             AS received,
       coalesce(b.accepted, 0)                             AS accepted,
       coalesce(b.quarantined, 0)                          AS quarantined,
       coalesce(b.archived, 0)                             AS archived,
       round(100.0 * coalesce(b.quarantined, 0) / nullif(b.received, 0), 2) AS quarantined_pct,
       coalesce(q.pending, 0)                              AS pending_review,
       coalesce(q.overdue, 0)                              AS overdue_review,
       coalesce(q.expired, 0)                              AS expired_review,
       r.top_rules
  FROM lake.datasets AS d
  LEFT JOIN (SELECT dataset, count(*) AS batches, sum(received) AS received,
                    sum(accepted) AS accepted, sum(quarantined) AS quarantined,
                    sum(archived) AS archived
               FROM lake.batches GROUP BY dataset) AS b ON b.dataset = d.name
  LEFT JOIN (SELECT dataset,
                    count(*) FILTER (WHERE status IN ('pending', 'expired')) AS pending,
                    count(*) FILTER (WHERE status IN ('pending', 'expired')
                                       AND review_by < now()) AS overdue,
                    -- marked by the quarantine_review job; still awaiting a decision
                    count(*) FILTER (WHERE status = 'expired') AS expired
               FROM lake.quarantine GROUP BY dataset) AS q ON q.dataset = d.name
  LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(x.rule, x.n ORDER BY x.n DESC) AS top_rules
          FROM (SELECT r ->> 'rule' AS rule, count(*) AS n
                  FROM lake.quarantine AS qq, jsonb_array_elements(qq.reasons) AS r
                 WHERE qq.dataset = d.name
                 GROUP BY 1 ORDER BY 2 DESC LIMIT 5) AS x
  ) AS r ON true;
ALTER VIEW lake.quality_report OWNER TO lake_owner;
GRANT SELECT ON lake.quality_report TO lake_admin;

COMMENT ON VIEW lake.quality_report IS
    'Per dataset: batches, records received, accepted, quarantined, reviews, top rules.';
COMMENT ON COLUMN lake.quality_report.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.quality_report.batches IS 'Batches received.';
COMMENT ON COLUMN lake.quality_report.received IS 'Records received.';
COMMENT ON COLUMN lake.quality_report.accepted IS 'Records stored.';
COMMENT ON COLUMN lake.quality_report.quarantined IS 'Records quarantined.';
COMMENT ON COLUMN lake.quality_report.archived IS
    'Records older than the first month in the lake, written to their month''s archive.';
COMMENT ON COLUMN lake.quality_report.quarantined_pct IS
    'Quarantined records as a percentage of those received.';
COMMENT ON COLUMN lake.quality_report.pending_review IS
    'Quarantined items not decided yet (pending or expired).';
COMMENT ON COLUMN lake.quality_report.overdue_review IS
    'Of those, the ones past their review deadline.';
COMMENT ON COLUMN lake.quality_report.expired_review IS
    'Items the quarantine_review job marked expired.';
COMMENT ON COLUMN lake.quality_report.top_rules IS
    'The most frequent rules among quarantined records, with counts.';
