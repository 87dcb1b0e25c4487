-- Read records' times from their JSON values, in order, without ever raising: NULL where a value is
-- missing or not a valid time. RFC 3339 text must carry Z or an offset (a time without one is
-- ambiguous) of at most 15:59 hours, PostgreSQL's limit; epoch formats take a JSON number of
-- seconds or milliseconds since 1970, or the same number as a JSON string of digits (Google
-- Takeout's "timestampMs": "1700000000000"). lake_internal._ingest_docs reads a whole statement's times
-- with one call: a function call per record cost more than the reading itself (≈ 27 µs a record,
-- now ≈ 5 µs for the usual shapes). Each check guards the next inside CASE, the only construct
-- whose order SQL guarantees. The regular expression costs ≈ 6 µs a value, so the usual shapes
-- (2026-11-27T08:15:00Z, with or without milliseconds) are recognised by their digits' places and
-- checked field by field, exactly as the expression would check them.
CREATE FUNCTION lake.parse_times(time_values jsonb[], format text DEFAULT 'rfc3339')
RETURNS timestamptz[]
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(CASE
        WHEN parse_times.format = 'rfc3339' THEN
            CASE WHEN jsonb_typeof(y.v) = 'string'
                  AND CASE
                      WHEN translate(y.s, '123456789', '000000000')
                           IN ('0000-00-00T00:00:00Z', '0000-00-00T00:00:00.000Z')
                      THEN substr(y.s, 6, 2) COLLATE "C" BETWEEN '01' AND '12'
                       AND substr(y.s, 9, 2) COLLATE "C" BETWEEN '01' AND '31'
                       AND substr(y.s, 12, 2) COLLATE "C" <= '23'
                       AND substr(y.s, 15, 2) COLLATE "C" <= '59'
                       AND substr(y.s, 18, 2) COLLATE "C" <= '60'
                      ELSE y.s ~ ('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])'
                                  '[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)'
                                  '([.][0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$')
                      END
            THEN CASE WHEN substr(y.s, 1, 4)::integer >= 1
                       AND substr(y.s, 9, 2)::integer <= extract(day FROM
                               make_date(substr(y.s, 1, 4)::integer, substr(y.s, 6, 2)::integer, 1)
                               + interval '1 month - 1 day')
                  THEN y.s::timestamptz
                  END
            END
        WHEN parse_times.format IN ('epoch_s', 'epoch_ms') THEN
            -- a JSON number, or a JSON string of digits (Takeout's timestampMs): the same number
            CASE WHEN jsonb_typeof(y.v) = 'number'
                      OR (jsonb_typeof(y.v) = 'string' AND y.s ~ '^[0-9]{1,20}$')
            THEN CASE WHEN y.s::numeric BETWEEN 0
                      AND CASE parse_times.format WHEN 'epoch_ms' THEN 253402300799999 ELSE 253402300799 END
                 THEN to_timestamp((y.s::numeric
                                    / CASE parse_times.format WHEN 'epoch_ms' THEN 1000 ELSE 1 END)::double precision)
                 END
            END
        END ORDER BY y.o), '{}')
      -- OFFSET 0: the value's text (s) is made once, not once each time it is used
      FROM (SELECT x.o, x.v, x.v #>> '{}' AS s
              FROM unnest(parse_times.time_values) WITH ORDINALITY AS x(v, o)
            OFFSET 0) AS y
$$;
ALTER FUNCTION lake.parse_times(jsonb[], text) OWNER TO lake_owner;
GRANT EXECUTE ON FUNCTION lake.parse_times(jsonb[], text) TO PUBLIC;

COMMENT ON FUNCTION lake.parse_times(jsonb[], text) IS
    'parse_time for many values in one call, in order.';
