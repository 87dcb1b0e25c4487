-- Every partition of every dataset, for an admin in psql: its month (or overflow range), rows
-- (estimated from statistics; exact counts cost a scan), size, tablespace and tier. The tier is
-- the one the tiering step of lake.apply_retention recorded (lake.partition_tiers; tiered_at
-- says as of when); a month it has not seen yet shows the tier its age gives now (tiered_at
-- NULL). Every month in the lake takes records, whatever its tier.
CREATE VIEW lake.partitions AS
SELECT d.name                                   AS dataset,
       c.relname                                AS partition,
       CASE WHEN c.relname = d.name || '_p_before' THEN 'overflow (before)'
            WHEN c.relname = d.name || '_p_after' THEN 'overflow (after)'
            ELSE 'month' END                    AS kind,
       b.range_from,
       b.range_to,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS rows_estimate,
       pg_total_relation_size(c.oid)            AS bytes,
       CASE WHEN b.range_from IS NULL OR b.range_to IS NULL THEN NULL
            ELSE coalesce(t.tier, lake_internal._tier(d.tiers, b.range_to, now())) END AS tier,
       t.as_of                                  AS tiered_at,
       coalesce(s.spcname,
                (SELECT ds.spcname FROM pg_catalog.pg_database AS db
                   JOIN pg_catalog.pg_tablespace AS ds ON ds.oid = db.dattablespace
                  WHERE db.datname = current_database())) AS tablespace
  FROM lake.datasets AS d
  JOIN pg_catalog.pg_inherits AS i
    ON i.inhparent = format('user_data.%I', d.name)::regclass
  JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL lake_internal._partition_bounds(c.oid::regclass) AS b
  LEFT JOIN lake.partition_tiers AS t ON t.dataset = d.name AND t.month = b.range_from
  LEFT JOIN pg_catalog.pg_tablespace AS s ON s.oid = c.reltablespace;
ALTER VIEW lake.partitions OWNER TO lake_owner;
GRANT SELECT ON lake.partitions TO lake_admin;

COMMENT ON VIEW lake.partitions IS
    'Every partition of every dataset: range, size, tier, tablespace.';
COMMENT ON COLUMN lake.partitions.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.partitions.partition IS 'The partition''s table (in user_data_partitions).';
COMMENT ON COLUMN lake.partitions.kind IS 'month, overflow (before) or overflow (after).';
COMMENT ON COLUMN lake.partitions.range_from IS 'Lower bound of the partition.';
COMMENT ON COLUMN lake.partitions.range_to IS 'Upper bound (exclusive).';
COMMENT ON COLUMN lake.partitions.rows_estimate IS
    'Estimated rows (planner statistics; NULL before the first ANALYZE).';
COMMENT ON COLUMN lake.partitions.bytes IS 'Size on disk with indexes.';
COMMENT ON COLUMN lake.partitions.tier IS
    'hot, warm, cold or expired: as recorded by the tiering step, else by age.';
COMMENT ON COLUMN lake.partitions.tiered_at IS 'The now of the tiering run that recorded the tier.';
COMMENT ON COLUMN lake.partitions.tablespace IS 'Where the partition is stored.';
