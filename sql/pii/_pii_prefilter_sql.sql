-- The PII scan's pre-filter as an SQL expression, for the ingest paths' statements
-- (lake_internal._tg_inbox, _tg_validate): true for a row whose document, p_doc, could hold an
-- identifier by its JSON text less the fields the scan skips (lake_internal._pii_skip), matched
-- against the regular expression lake_internal._pii_prefilter; the fields and the pattern are
-- literals in it. Only the rows it lets through are gathered for lake_internal._pii_scan, which
-- enters Python. p_rows: a query for the statement's documents to scan (column doc). A regular
-- expression costs ≈ 1 µs a call before it reads a character, so the statement's documents are
-- first matched together, joined by newlines (which no match spans: jsonb's text escapes them):
-- when nothing matches, as in a statement of ordinary records, no row is looked at again. That
-- joined text is made only for statements of up to 4 MB of documents; larger ones are matched row
-- by row. Like _passes_sql: PL/pgSQL, called once per statement.
CREATE FUNCTION lake_internal._pii_prefilter_sql(p_dataset text, p_rows text, p_doc text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_skip    text := quote_literal(lake_internal._pii_skip(p_dataset));
    v_pattern text := quote_literal(lake_internal._pii_prefilter());
BEGIN
    RETURN format(
        '(CASE WHEN (SELECT sum(pg_column_size(r.doc)) FROM (%1$s) AS r) > 4194304 THEN true'
        ' ELSE coalesce((SELECT string_agg((r.doc - %2$s::text[])::text, E''\n'')'
        ' FROM (%1$s) AS r) ~ %3$s, false) END'
        ' AND ((%4$s) - %2$s::text[])::text ~ %3$s)',
        p_rows, v_skip, v_pattern, p_doc);
END
$$;
ALTER FUNCTION lake_internal._pii_prefilter_sql(text, text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_prefilter_sql(text, text, text) FROM PUBLIC;
