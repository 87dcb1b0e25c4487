-- The tiering step of lake.apply_retention for one dataset, as of p_now: record each monthly
-- partition's tier (lake.partition_tiers) and move a partition (and its indexes) to the
-- tablespace configured for its tier (tablespace_hot, _warm, _cold; expired counts as cold).
-- A tier is where a month's data lives, not a ban: cold months take records like any other (a
-- person's first import is mostly history). Returns {"tiers_changed", "moved", "errors"}. A move
-- that cannot get its lock within lock_timeout is left for the next run (in errors).
CREATE FUNCTION lake_internal._apply_tiers(p_dataset text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    ds         lake.datasets;
    p          record;
    v_tier     text;
    v_old      text;
    v_space    text;
    v_cur      name;
    v_moved_to name;
    v_idx      regclass;
    v_cold     boolean;
    v_changed  integer := 0;
    v_moved    integer := 0;
    v_errors   jsonb := '[]';
    v_default  oid := (SELECT d.dattablespace FROM pg_catalog.pg_database AS d
                        WHERE d.datname = current_database());
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    PERFORM set_config('lock_timeout', lake_internal._setting('lock_timeout'), true);

    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname, b.range_from, b.range_to,
               (SELECT t.spcname FROM pg_catalog.pg_tablespace AS t
                 WHERE t.oid = CASE WHEN c.reltablespace = 0 THEN v_default
                                    ELSE c.reltablespace END) AS space
          FROM pg_catalog.pg_inherits AS i
          JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
          CROSS JOIN LATERAL lake_internal._partition_bounds(c.oid::regclass) AS b
         WHERE i.inhparent = format('user_data.%I', ds.name)::regclass
           AND b.range_from IS NOT NULL AND b.range_to IS NOT NULL
         ORDER BY b.range_from
    LOOP
        v_tier := lake_internal._tier(ds.tiers, p.range_to, p_now);
        v_cold := v_tier IN ('cold', 'expired');

        v_moved_to := NULL;
        v_space := nullif(lake_internal._setting('tablespace_' || CASE WHEN v_cold THEN 'cold'
                                                              ELSE v_tier END), '');
        IF v_space IS NOT NULL AND v_space IS DISTINCT FROM p.space THEN
            BEGIN
                EXECUTE format('ALTER TABLE user_data_partitions.%I SET TABLESPACE %I',
                               p.relname, v_space);
                FOR v_idx IN SELECT x.indexrelid::regclass FROM pg_catalog.pg_index AS x
                              WHERE x.indrelid = p.rel LOOP
                    EXECUTE format('ALTER INDEX %s SET TABLESPACE %I', v_idx, v_space);
                END LOOP;
                v_moved := v_moved + 1;
                v_moved_to := v_space;
            EXCEPTION WHEN lock_not_available OR deadlock_detected OR insufficient_privilege
                           OR undefined_object THEN
                v_errors := v_errors || jsonb_build_object(
                    'partition', p.relname, 'tablespace', v_space, 'error', SQLERRM);
            END;
        END IF;

        SELECT t.tier INTO v_old FROM lake.partition_tiers AS t
         WHERE t.dataset = ds.name AND t.month = p.range_from;
        IF v_old IS DISTINCT FROM v_tier THEN
            v_changed := v_changed + 1;
        END IF;
        INSERT INTO lake.partition_tiers AS t (dataset, month, partition, tier, tablespace, as_of)
        VALUES (ds.name, p.range_from, p.relname, v_tier, coalesce(v_moved_to, p.space), p_now)
        ON CONFLICT (dataset, month) DO UPDATE
           SET tier = excluded.tier, tablespace = excluded.tablespace, as_of = excluded.as_of,
               changed_at = CASE WHEN t.tier = excluded.tier THEN t.changed_at ELSE now() END;
    END LOOP;
    DELETE FROM lake.partition_tiers AS t
     WHERE t.dataset = ds.name
       AND to_regclass(format('user_data_partitions.%I', t.partition)) IS NULL;

    IF v_changed > 0 OR v_moved > 0 THEN
        PERFORM lake_internal._audit('retention.tiers', ds.name,
                            jsonb_build_object('now', p_now, 'tiers_changed', v_changed,
                                               'moved', v_moved));
    END IF;
    RETURN jsonb_build_object('tiers_changed', v_changed, 'moved', v_moved,
                              'errors', v_errors);
END
$$;
ALTER FUNCTION lake_internal._apply_tiers(text, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._apply_tiers(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._apply_tiers(text, timestamptz) TO lake_admin;
