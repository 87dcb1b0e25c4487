-- Set each user's stored and quarantined bytes of a dataset (lake.quota_usage) to what the
-- dataset's table and the quarantine hold now, as stored. Usage is kept by the ingest paths and
-- the delete triggers, once a statement; what they do not see is set right here: months dropped
-- by retention or lake.rollback's changes, and records over about 2 kB that PostgreSQL
-- compresses, which are charged as sent and freed as stored. Reads the whole dataset: an
-- administrator's occasional call, best when no one writes (a statement in flight is not
-- counted). Records this hour are left as they are. Returns the users' rows. Audited.
CREATE FUNCTION lake.quota_recount(dataset text)
RETURNS TABLE (user_id text, stored_bytes bigint, quarantined_bytes bigint)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameter's name is the documented API; the body uses this alias.
    p_dataset ALIAS FOR dataset;
BEGIN
    IF NOT EXISTS (SELECT FROM lake.datasets AS d WHERE d.name = p_dataset) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100));
    END IF;
    UPDATE lake.quota_usage AS u SET stored_bytes = 0, quarantined_bytes = 0
     WHERE u.dataset = p_dataset;
    EXECUTE format($q$
        INSERT INTO lake.quota_usage AS u
               (dataset, user_id, shard, hour, stored_bytes, quarantined_bytes)
        SELECT $1, t.user_id, 0, date_trunc('hour', now(), 'UTC'), sum(t.s), sum(t.q)
          FROM (SELECT d.user_id, pg_column_size(d.doc)::bigint AS s, 0::bigint AS q
                  FROM user_data.%I AS d WHERE d.user_id IS NOT NULL
                UNION ALL
                SELECT q.user_id, 0, coalesce(pg_column_size(q.doc), 0)
                                     + coalesce(octet_length(q.raw), 0)
                  FROM lake.quarantine AS q
                 WHERE q.dataset = $1 AND q.user_id IS NOT NULL) AS t
         GROUP BY t.user_id
        ON CONFLICT (dataset, user_id, shard) DO UPDATE
           SET stored_bytes = excluded.stored_bytes,
               quarantined_bytes = excluded.quarantined_bytes$q$, p_dataset)
    USING p_dataset;
    PERFORM lake_internal._audit('quota.recount', p_dataset, NULL);
    RETURN QUERY
        SELECT u.user_id::text, sum(u.stored_bytes)::bigint, sum(u.quarantined_bytes)::bigint
          FROM lake.quota_usage AS u WHERE u.dataset = p_dataset
         GROUP BY u.user_id ORDER BY u.user_id;
END
$$;
ALTER FUNCTION lake.quota_recount(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quota_recount(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quota_recount(text) TO lake_admin;

COMMENT ON FUNCTION lake.quota_recount(text) IS
    'Set each user''s stored and quarantined bytes of a dataset to what the tables hold now (after retention, rollback, compressed records). Audited. Administrators.';
