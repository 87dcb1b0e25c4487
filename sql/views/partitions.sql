-- Every partition of every dataset, for an admin in psql: its month (or overflow range), rows
-- (estimated from statistics; exact counts cost a scan), size, and age tier.
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
       CASE WHEN b.range_to IS NULL OR b.range_from IS NULL THEN NULL
            WHEN b.range_to > now() - (d.tiers ->> 'hot')::interval THEN 'hot'
            WHEN b.range_to > now() - (d.tiers ->> 'warm')::interval THEN 'warm'
            WHEN b.range_to > now() - (d.tiers ->> 'cold')::interval THEN 'cold'
            ELSE 'expired' END                  AS tier
  FROM lake.datasets AS d
  JOIN pg_catalog.pg_inherits AS i
    ON i.inhparent = format('user_data.%I', d.name)::regclass
  JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL lake._partition_bounds(c.oid::regclass) AS b;
ALTER VIEW lake.partitions OWNER TO lake_owner;
GRANT SELECT ON lake.partitions TO lake_admin;
