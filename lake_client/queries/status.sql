-- The status page (`lake serve`, GET /status): lake_client/status_page.py.

-- name: status_quality_daily
-- The quality score per dataset and day, from the ingest batches as they were recorded (the same
-- figure as lake.quality_scores' check_type 'all': 1 - quarantined / received; releases from the
-- quarantine re-count records already received, so they are left out). The last 90 days.
SELECT dataset, (date_trunc('day', created_at AT TIME ZONE 'UTC'))::date AS day,
       sum(received)::bigint AS received, sum(quarantined)::bigint AS quarantined
  FROM lake.batches
 WHERE source <> 'release' AND created_at >= now() - interval '90 days'
 GROUP BY 1, 2
HAVING sum(received) > 0
 ORDER BY 1, 2

-- name: status_quality_now
SELECT dataset, time_window, received, failed, score
  FROM lake.quality_scores
 WHERE check_type = 'all'
 ORDER BY dataset, time_window

-- name: status_quarantine_rules
-- The quarantine queue (items awaiting a decision) by dataset and rule; an item with two
-- reasons of different rules counts under each.
SELECT q.dataset, coalesce(r ->> 'rule', '(none)') AS rule, count(DISTINCT q.id) AS items
  FROM lake.quarantine AS q
 CROSS JOIN LATERAL jsonb_array_elements(q.reasons) AS r
 WHERE q.status = 'pending'
 GROUP BY 1, 2
 ORDER BY 3 DESC, 1, 2

-- name: status_jobs
-- Each job with its last run and the outcomes of its last 10 runs through lake.run_maintenance,
-- oldest first.
SELECT j.job, j.schedule, j.scheduled, j.last_start, j.last_end, j.last_status, j.last_error,
       j.failures_24h,
       coalesce((SELECT array_agg(x.status ORDER BY x.id)
                   FROM (SELECT r.id, r.status FROM lake.job_runs AS r
                          WHERE r.job = j.job ORDER BY r.id DESC LIMIT 10) AS x),
                '{}') AS recent
  FROM lake.jobs AS j
  JOIN lake.job_defs AS d ON d.name = j.job
 ORDER BY d.position

-- name: status_storage_months
-- Bytes per month of data and tier: the partitions as they are now, and the months whose
-- partition was dropped after archiving (their archive file is the copy: tier archive).
SELECT (p.range_from AT TIME ZONE 'UTC')::date AS month, coalesce(p.tier, 'overflow') AS tier,
       sum(p.bytes)::bigint AS bytes
  FROM lake.partitions AS p
 WHERE p.kind = 'month'
 GROUP BY 1, 2
UNION ALL
SELECT (a.month AT TIME ZONE 'UTC')::date, 'archive', sum(a.bytes)::bigint
  FROM lake.archives AS a
 WHERE a.status = 'dropped'
 GROUP BY 1
 ORDER BY 1, 2

-- name: status_storage_history
-- Bytes of user data per tier and of the archive files, per day (UTC) of the last 90, as the
-- figures job sampled them (lake.figure_history): the day's last sample of each.
SELECT (public.time_bucket('1 day', h.at) AT TIME ZONE 'UTC')::date AS day,
       substr(h.subject, 6) AS tier, public.last(h.value, h.at)::bigint AS bytes
  FROM lake.figure_history AS h
 WHERE h.figure = 'storage_bytes' AND left(h.subject, 5) = 'tier_'
   AND h.at >= now() - interval '90 days'
 GROUP BY 1, 2
UNION ALL
SELECT (public.time_bucket('1 day', h.at) AT TIME ZONE 'UTC')::date, 'archive',
       public.last(h.value, h.at)::bigint
  FROM lake.figure_history AS h
 WHERE h.figure = 'storage_bytes' AND h.subject = 'archive'
   AND h.at >= now() - interval '90 days'
 GROUP BY 1
 ORDER BY 1, 2

-- name: status_storage_now
-- lake.storage_usage() now, PostgreSQL's schemas summed (/metrics has them one by one).
SELECT storage_type, sum(bytes)::bigint AS bytes, count(*) AS parts
  FROM lake.storage_usage()
 GROUP BY 1
 ORDER BY 1

-- name: status_bridges
-- As metrics_bridges: per bridge, the changes not yet forwarded, the age of the oldest of them,
-- and when its cursor last moved.
SELECT c.name AS bridge,
       greatest(coalesce((SELECT max(d.id) FROM lake.data_changes AS d), 0) - c.last_id, 0)
           AS behind,
       coalesce(extract(epoch FROM now() - (SELECT d.created_at FROM lake.data_changes AS d
                                              WHERE d.id > c.last_id ORDER BY d.id LIMIT 1)),
                0)::float8 AS age_s,
       c.updated_at AS advanced
  FROM lake.bridge_cursors AS c
 ORDER BY c.name
