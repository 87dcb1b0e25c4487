-- The lake's own checks on one record, as structured reasons (an empty array when it passes):
-- an owner, a readable time not in the far future, a partition for it, and limits on size and
-- nesting depth. A time's age is no reason: a record in a cold month is stored there, and one
-- before the first month in the lake (lim.archive_before) goes to its month's archive. It takes
-- the same limits (lake_internal._limits) as the pass test (lake_internal._passes_sql), so the
-- two cannot disagree on a bound: the pass test says quickly that a record is fine, this says why
-- one is not.
CREATE FUNCTION lake_internal._lake_reasons(lim lake_internal.limits, p_user_id text,
                                            p_ts timestamptz, p_doc jsonb)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(v.reason ORDER BY v.ord), '[]')
      FROM (VALUES
        (1, CASE WHEN p_user_id IS NULL THEN jsonb_build_object(
                'path', '$', 'rule', 'owner_missing',
                'message', 'the record has no owner: user_id is NULL') END),
        (2, CASE
            WHEN p_ts IS NULL AND (jsonb_typeof(p_doc) <> 'object' OR NOT p_doc ? lim.time_field)
                THEN jsonb_build_object('path', '$.' || lim.time_field, 'rule', 'time_missing',
                    'message', format('the time field %L is missing', lim.time_field))
            WHEN p_ts IS NULL THEN jsonb_build_object(
                'path', '$.' || lim.time_field, 'rule', 'time_unparseable',
                'message', format('%s is not a valid time (%s)',
                                  coalesce(left((p_doc -> lim.time_field)::text, 100), 'the record'),
                                  CASE lim.time_format
                                      WHEN 'rfc3339' THEN 'expected RFC 3339 with Z or an offset, '
                                                          'e.g. 2026-11-26T08:15:00Z'
                                      WHEN 'epoch_s' THEN 'expected Unix seconds'
                                      ELSE 'expected Unix milliseconds' END))
            WHEN p_ts > lim.window_to THEN jsonb_build_object(
                'path', '$.' || lim.time_field, 'rule', 'time_in_future',
                'message', format('%s is more than %s in the future', p_ts, lim.max_future))
            WHEN p_ts >= lim.partitions_to THEN jsonb_build_object(
                'path', '$.' || lim.time_field, 'rule', 'partition_missing',
                'message', format('no partition holds %s yet: ingest it with lake.ingest, which '
                                  'makes one, or release it from quarantine', p_ts))
            END),
        (3, CASE
            WHEN pg_column_size(p_doc) > lim.max_record_bytes THEN jsonb_build_object(
                'path', '$', 'rule', 'too_large',
                'message', format('the record takes %s bytes, more than the limit of %s',
                                  pg_column_size(p_doc), lim.max_record_bytes))
            WHEN pg_column_size(p_doc) > lim.deep_bytes AND p_doc @? lim.too_deep
                THEN jsonb_build_object(
                'path', '$', 'rule', 'too_deep',
                'message', format('the record is nested deeper than %s levels', lim.max_depth))
            END)
      ) AS v(ord, reason)
     WHERE v.reason IS NOT NULL
$$;
ALTER FUNCTION lake_internal._lake_reasons(lake_internal.limits, text, timestamptz, jsonb)
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._lake_reasons(lake_internal.limits, text, timestamptz, jsonb)
    FROM PUBLIC;
