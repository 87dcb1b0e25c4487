-- The pass test: the one SQL expression that decides, set-based, which rows need no further
-- look. It is the compiled JSON Schema predicate (over the column doc) and the lake's cheap
-- checks on the row alias p_row, against the dataset's limits (lake_internal.limits, made by
-- lake_internal._limits): a time where it may be stored (the window and the partitions), the size,
-- and the nesting depth of large documents. It is true only for rows that are surely valid; the
-- others are suspects, for which lake_internal._lake_reasons (the same limits) says why.
-- The caller binds the limits as one parameter, number p_limits: the three ingest paths use the
-- same expression with one value, not seven positional bounds (in a one-shot EXECUTE plan,
-- ($n).field folds to a constant, so this costs the same as separate parameters).
-- PL/pgSQL, not SQL: the validation triggers call it once per statement, and an SQL function
-- with SET is parsed and planned again in every transaction (≈ 0.15 ms of a single-row INSERT).
CREATE FUNCTION lake_internal._passes_sql(p_predicate text, p_row text, p_limits integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format(
        'coalesce(coalesce((%1$s), false)'
        ' AND %2$s.ts >= ($%3$s).accept_from AND %2$s.ts < ($%3$s).accept_before'
        ' AND CASE WHEN pg_column_size(%2$s.doc) > ($%3$s).deep_bytes'
        ' THEN pg_column_size(%2$s.doc) <= ($%3$s).max_record_bytes'
        ' AND NOT %2$s.doc @? ($%3$s).too_deep'
        ' ELSE true END, false)',
        coalesce(p_predicate, 'false'), quote_ident(p_row), p_limits);
END
$$;
ALTER FUNCTION lake_internal._passes_sql(text, text, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._passes_sql(text, text, integer) FROM PUBLIC;
