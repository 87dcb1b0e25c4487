-- Make sure every UTC month from from_ts to to_ts (both inclusive) has a partition, keeping the
-- months one contiguous run between the two overflow partitions. Used by create_dataset, by the
-- premake job and on demand by the ingest paths. Returns how many partitions it created.
-- When the months exist already it returns 0 without locking anything, so the ingest paths call
-- it for every statement. Otherwise the registry row is locked, so concurrent callers for one
-- dataset take turns; the short lock_timeout makes a caller that waits behind long transactions
-- fail fast and retry.
CREATE FUNCTION lake.ensure_partitions(dataset text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET lock_timeout = '10s'
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_from ALIAS FOR from_ts;
    p_to ALIAS FOR to_ts;
    ds        lake.datasets;
    v_from    timestamptz := lake.month_start(p_from);
    v_to      timestamptz := lake.month_start(p_to) + interval '1 month';
    v_month   timestamptz;
    v_created integer := 0;
    v_first   timestamptz;  -- the run of months after this call
    v_last    timestamptz;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_from > p_to THEN
        RAISE EXCEPTION 'ensure_partitions: invalid range % .. %', p_from, p_to;
    END IF;
    IF EXISTS (SELECT FROM lake.datasets
                WHERE name = p_dataset AND partitions_from <= v_from AND partitions_to >= v_to) THEN
        RETURN 0;
    END IF;
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;

    v_first := ds.partitions_from;
    v_last := ds.partitions_to;
    IF v_from < v_first THEN
        PERFORM lake_internal._drop_overflow(ds.name, 'before');
        FOR v_month IN SELECT generate_series(v_from, v_first - interval '1 month',
                                              interval '1 month')
        LOOP
            PERFORM lake_internal._create_partition(ds.name, 'month', v_month);
            v_created := v_created + 1;
        END LOOP;
        PERFORM lake_internal._create_partition(ds.name, 'before', v_from);
        v_first := v_from;
    END IF;

    IF v_to > v_last THEN
        PERFORM lake_internal._drop_overflow(ds.name, 'after');
        FOR v_month IN SELECT generate_series(v_last, v_to - interval '1 month',
                                              interval '1 month')
        LOOP
            PERFORM lake_internal._create_partition(ds.name, 'month', v_month);
            v_created := v_created + 1;
        END LOOP;
        PERFORM lake_internal._create_partition(ds.name, 'after', v_to);
        v_last := v_to;
    END IF;

    IF v_created > 0 THEN
        UPDATE lake.datasets
           SET partitions_from = v_first, partitions_to = v_last
         WHERE name = ds.name;
    END IF;
    RETURN v_created;
END
$$;
ALTER FUNCTION lake.ensure_partitions(text, timestamptz, timestamptz) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.ensure_partitions(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.ensure_partitions(text, timestamptz, timestamptz) TO lake_admin;

COMMENT ON FUNCTION lake.ensure_partitions(text, timestamptz, timestamptz) IS
    'Make sure every UTC month from from_ts to to_ts has a partition. Administrators.';
