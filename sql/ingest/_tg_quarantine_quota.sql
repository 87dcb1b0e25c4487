-- AFTER INSERT and AFTER DELETE statement trigger of lake.quarantine (quarantine_quota): the one
-- place quarantined bytes are counted, whichever path quarantined the records. New items are
-- charged to their owners' quarantine quota (lake_internal._quota_charge, which refuses the
-- statement past it, LK032, so nothing of it is written); deleted items (erasure, a dropped
-- dataset) free their bytes. An item's bytes: its doc as stored (pg_column_size) and its raw
-- bytes (octet_length, their length whether or not PostgreSQL compresses them). Items without an
-- owner are not counted.
CREATE FUNCTION lake_internal._tg_quarantine_quota()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM lake_internal._quota_charge(n.dataset, n.user_id, 0, 0,
                                            sum(coalesce(pg_column_size(n.doc), 0)
                                                + coalesce(octet_length(n.raw), 0)))
           FROM new_rows AS n
          WHERE n.user_id IS NOT NULL
          GROUP BY n.dataset, n.user_id;
    ELSE
        UPDATE lake.quota_usage AS u
           SET quarantined_bytes = u.quarantined_bytes - f.bytes
          FROM (SELECT o.dataset, o.user_id,
                       sum(coalesce(pg_column_size(o.doc), 0) + coalesce(octet_length(o.raw), 0))
                           AS bytes
                  FROM old_rows AS o WHERE o.user_id IS NOT NULL
                 GROUP BY o.dataset, o.user_id) AS f
         WHERE u.dataset = f.dataset AND u.user_id = f.user_id
           AND u.shard = (SELECT min(x.shard) FROM lake.quota_usage AS x
                           WHERE x.dataset = f.dataset AND x.user_id = f.user_id);
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_quarantine_quota() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_quarantine_quota() FROM PUBLIC;
