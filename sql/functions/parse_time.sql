-- Read a record's time from its JSON value without ever raising: NULL when the value is missing
-- or not a valid time. RFC 3339 text must carry Z or an offset (a time without one is
-- ambiguous) of at most 15:59 hours, PostgreSQL's limit; epoch formats take a JSON number of
-- seconds or milliseconds since 1970.
-- Each check guards the next inside CASE, the only construct whose order SQL guarantees.
CREATE FUNCTION lake.parse_time(p_value jsonb, p_format text DEFAULT 'rfc3339')
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_format = 'rfc3339' THEN
            CASE WHEN jsonb_typeof(p_value) = 'string'
                  AND (p_value #>> '{}') ~ ('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])'
                                            '[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)'
                                            '([.][0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$')
            THEN CASE WHEN substr(p_value #>> '{}', 1, 4)::integer >= 1
                       AND substr(p_value #>> '{}', 9, 2)::integer <= extract(day FROM
                               make_date(substr(p_value #>> '{}', 1, 4)::integer,
                                         substr(p_value #>> '{}', 6, 2)::integer, 1)
                               + interval '1 month - 1 day')
                  THEN (p_value #>> '{}')::timestamptz
                  END
            END
        WHEN p_format IN ('epoch_s', 'epoch_ms') THEN
            CASE WHEN jsonb_typeof(p_value) = 'number'
                  AND p_value::numeric BETWEEN 0
                      AND CASE p_format WHEN 'epoch_ms' THEN 253402300799999 ELSE 253402300799 END
            THEN to_timestamp((p_value::numeric
                               / CASE p_format WHEN 'epoch_ms' THEN 1000 ELSE 1 END)::double precision)
            END
    END
$$;
ALTER FUNCTION lake.parse_time(jsonb, text) OWNER TO lake_owner;
GRANT EXECUTE ON FUNCTION lake.parse_time(jsonb, text) TO PUBLIC;
