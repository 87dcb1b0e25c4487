-- The session user's records of a dataset in time buckets (TimescaleDB's time_bucket over the
-- records' ts): per bucket, the number of records and an aggregate of one field of theirs.
--   bucket    a positive interval: of months (and years), or of days and time, not both (as
--             time_bucket buckets); at most 100 000 buckets in [from_ts, to_ts).
--   field     a top-level field of the records, or a path into them with dots (a.b): its
--             numbers are aggregated (other values are left out: a string is not summed). NULL:
--             the records are counted. Given as a value (a bind parameter), never as SQL.
--   agg       one of the allow-list below: count (records holding the field, or all records
--             without one), sum, avg, min, max, stddev, first and last (by ts: TimescaleDB's).
--   fill      true: every bucket of the range, one without records with records 0 and value
--             NULL (0 for count). The lake fills the gaps itself: TimescaleDB's
--             time_bucket_gapfill (and its locf and interpolate) are not in the Apache build.
--   timezone  buckets of days and months begin at midnight there (default UTC).
-- It runs with the caller's rights, and reads the rows of the session's user only (row-level
-- security, and the same condition written out so the (user_id, ts) index serves it): a service
-- sees the user it acts for. Bad arguments get LK120 (bucket, range, time zone) or LK121
-- (field, aggregate).
CREATE FUNCTION lake.series(dataset text, bucket interval, from_ts timestamptz,
                            to_ts timestamptz, field text DEFAULT NULL, agg text DEFAULT 'count',
                            fill boolean DEFAULT false, timezone text DEFAULT 'UTC')
RETURNS TABLE (bucket_start timestamptz, records bigint, value double precision)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- A placeholder that confines the caller's time zone (set_config below) to this call.
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_field ALIAS FOR field;
    p_agg ALIAS FOR agg;
    v_schema  jsonb;
    v_path    text[];
    v_type    jsonb;
    v_value   text;
    v_expr    text;
    -- The allow-list: each aggregate of the field's values (%s), as SQL.
    v_aggs    CONSTANT jsonb := jsonb_build_object(
                  'count', 'count(%s)', 'sum', 'sum(%s)', 'avg', 'avg(%s)', 'min', 'min(%s)',
                  'max', 'max(%s)', 'stddev', 'stddev_samp(%s)',
                  'first', 'public.first(%s, r.ts)', 'last', 'public.last(%s, r.ts)');
BEGIN
    IF lake.current_user_id() IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010', MESSAGE = 'no lake user in this session',
            HINT = 'Authenticate with a user''s key, or act for a user (lake.act_as).';
    END IF;
    SELECT s.json_schema INTO v_schema
      FROM lake.datasets AS d
      JOIN lake.dataset_schemas AS s ON s.dataset = d.name AND s.version = d.schema_version
     WHERE d.name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003', MESSAGE = format('no dataset %L', p_dataset),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;

    IF bucket IS NULL OR bucket <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120',
            MESSAGE = format('the bucket must be a positive interval, not %s',
                             coalesce(bucket::text, 'NULL'));
    END IF;
    IF extract(month FROM bucket) + extract(year FROM bucket) <> 0
       AND (extract(day FROM bucket) <> 0 OR bucket - date_trunc('month', bucket) <> '0') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120',
            MESSAGE = format('the bucket %s mixes months with days or time', bucket),
            HINT = 'A bucket is of months (1 month, 1 year) or of days and time (7 days, 1 hour).';
    END IF;
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts)
       OR from_ts >= to_ts THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120',
            MESSAGE = format('the range [%s, %s) is not a finite range of time',
                             coalesce(from_ts::text, 'NULL'), coalesce(to_ts::text, 'NULL'));
    END IF;
    -- A month counts as 30 days here: the limit is on the work, not a calendar.
    IF extract(epoch FROM to_ts - from_ts) / extract(epoch FROM bucket) > 100000 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120',
            MESSAGE = format('%s buckets of %s in [%s, %s): at most 100000',
                             ceil(extract(epoch FROM to_ts - from_ts) / extract(epoch FROM bucket)),
                             bucket, from_ts, to_ts),
            HINT = 'Ask for a larger bucket or a shorter range.';
    END IF;
    IF timezone IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120', MESSAGE = 'the time zone is NULL';
    END IF;
    BEGIN
        PERFORM set_config('TimeZone', timezone, true);
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION USING ERRCODE = 'LK120',
            MESSAGE = format('unknown time zone %L', left(timezone, 100)),
            HINT = 'A name of pg_timezone_names, e.g. Europe/Paris or UTC.';
    END;

    IF p_agg IS NULL OR NOT v_aggs ? p_agg THEN
        RAISE EXCEPTION USING ERRCODE = 'LK121',
            MESSAGE = format('unknown aggregate %L', left(coalesce(p_agg, 'NULL'), 100)),
            HINT = 'One of: ' || (SELECT string_agg(k, ', ' ORDER BY k)
                                    FROM jsonb_object_keys(v_aggs) AS k) || '.';
    END IF;
    IF p_field IS NULL THEN
        IF p_agg <> 'count' THEN
            RAISE EXCEPTION USING ERRCODE = 'LK121',
                MESSAGE = format('the aggregate %s needs a field', p_agg),
                HINT = 'Name a numeric field of the records (field => ''steps''); without one '
                       'the records are counted.';
        END IF;
        v_expr := 'count(*)';
    ELSE
        IF p_field !~ '^[^.\s]{1,200}(\.[^.\s]{1,200}){0,7}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'LK121',
                MESSAGE = format('invalid field %L', left(p_field, 100)),
                HINT = 'A field of the records, or a path with dots (location.accuracy): up to 8 '
                       'names without spaces.';
        END IF;
        v_path := string_to_array(p_field, '.');
        -- What the dataset's schema says of the field's top-level name, where it says anything.
        v_type := v_schema #> ARRAY['properties', v_path[1], 'type'];
        IF v_schema -> 'additionalProperties' = 'false'
           AND NOT coalesce(v_schema -> 'properties' ? v_path[1], false) THEN
            RAISE EXCEPTION USING ERRCODE = 'LK121',
                MESSAGE = format('dataset %L has no field %L', p_dataset, v_path[1]),
                HINT = 'Its JSON Schema lists the fields (lake.dataset_schemas).';
        END IF;
        IF cardinality(v_path) = 1 AND p_agg <> 'count' AND v_type IS NOT NULL
           AND NOT (v_type <@ '["number", "integer", "null"]'
                    OR v_type ?| ARRAY['number', 'integer']) THEN
            RAISE EXCEPTION USING ERRCODE = 'LK121',
                MESSAGE = format('field %L of dataset %L is %s, not a number: %s needs numbers',
                                 p_field, p_dataset, v_type, p_agg),
                HINT = 'count counts the records that hold it.';
        END IF;
        -- count: the records holding the field (JSON null is not holding it); the others:
        -- its numbers (a value of another type is NULL, left out as SQL aggregates do).
        v_value := CASE p_agg WHEN 'count' THEN 'nullif(r.doc #> $4, ''null'')'
                   ELSE 'CASE jsonb_typeof(r.doc #> $4) WHEN ''number'' THEN'
                        ' (r.doc #>> $4)::float8 END' END;
        v_expr := format(v_aggs ->> p_agg, v_value);
    END IF;

    -- Buckets with records; with fill, left-joined to every bucket of the range. The range's
    -- buckets are stepped in the time zone and put through time_bucket again, so that both
    -- sides agree where a day is 23 or 25 hours long.
    RETURN QUERY EXECUTE format($q$
        WITH data AS (
            SELECT public.time_bucket($1, r.ts, $5) AS b, count(*) AS n, %1$s AS v
              FROM user_data.%2$I AS r
             WHERE r.user_id = (SELECT lake.current_user_id()) AND r.ts >= $2 AND r.ts < $3
             GROUP BY 1
        ), range AS (
            SELECT DISTINCT public.time_bucket($1, g, $5) AS b
              FROM generate_series(public.time_bucket($1, $2, $5), $3 - interval '1 microsecond',
                                   $1) AS g
             WHERE $6
        )
        SELECT coalesce(d.b, g.b), coalesce(d.n, 0),
               (CASE WHEN d.b IS NULL AND $7 = 'count' THEN 0 ELSE d.v END)::float8
          FROM data AS d
          FULL JOIN range AS g ON g.b = d.b
         ORDER BY 1$q$,
        v_expr, p_dataset)
    USING bucket, from_ts, to_ts, v_path, timezone, fill, p_agg;
END
$$;
ALTER FUNCTION lake.series(text, interval, timestamptz, timestamptz, text, text, boolean, text)
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.series(text, interval, timestamptz, timestamptz, text, text, boolean,
                                   text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.series(text, interval, timestamptz, timestamptz, text, text,
                                      boolean, text) TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.series(text, interval, timestamptz, timestamptz, text, text, boolean,
                                text) IS
    'The session user''s records of a dataset in time buckets (time_bucket) over [from_ts, '
    'to_ts): per bucket the records and an aggregate (count, sum, avg, min, max, stddev, first, '
    'last) of a numeric field; fill => true gives every bucket. Users, services acting for one, '
    'administrators acting for one.';
