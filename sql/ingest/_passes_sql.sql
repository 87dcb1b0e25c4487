-- The one SQL test that decides, set-based, which rows need no further look: the compiled JSON
-- Schema predicate (over the column doc) and the lake's cheap checks on the row alias p_row
-- (time inside the window and the run of partitions; size, and nesting depth for large
-- documents). It is true only for rows that are surely valid; the others are suspects for
-- lake_internal._reasons. The caller binds, from parameter $p_first on: window start, window end,
-- partitions_from, partitions_to, 8 * max_depth (smaller documents cannot be too deep),
-- max_record_bytes, and the jsonpath 'strict $.**{max_depth + 1}'.
-- PL/pgSQL, not SQL: the validation triggers call it once per statement, and an SQL function
-- with SET is parsed and planned again in every transaction (≈ 0.15 ms of a single-row INSERT).
CREATE FUNCTION lake_internal._passes_sql(p_predicate text, p_row text, p_first integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format(
        'coalesce(coalesce((%1$s), false)'
        ' AND %2$s.ts >= $%3$s AND %2$s.ts <= $%4$s AND %2$s.ts >= $%5$s AND %2$s.ts < $%6$s'
        ' AND CASE WHEN pg_column_size(%2$s.doc) > $%7$s'
        ' THEN pg_column_size(%2$s.doc) <= $%8$s AND NOT %2$s.doc @? $%9$s'
        ' ELSE true END, false)',
        coalesce(p_predicate, 'false'), quote_ident(p_row),
        p_first, p_first + 1, p_first + 2, p_first + 3, p_first + 4, p_first + 5, p_first + 6);
END
$$;
ALTER FUNCTION lake_internal._passes_sql(text, text, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._passes_sql(text, text, integer) FROM PUBLIC;
