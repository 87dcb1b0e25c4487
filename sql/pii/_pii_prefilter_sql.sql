-- The PII scan's pre-filter as an SQL expression over the jsonb expression p_doc, for the ingest
-- paths' statements (lake_internal._tg_inbox, _tg_validate): true when the document, less the
-- fields the scan skips (lake_internal._pii_skip), could hold an identifier, by its JSON text and
-- the regular expression lake_internal._pii_prefilter. The fields and the pattern are literals
-- in it, so the check runs at C speed (≈ 1 µs a row) and only the documents it lets through are
-- gathered for lake_internal._pii_scan, which enters Python. Like _passes_sql: PL/pgSQL, called
-- once per statement.
CREATE FUNCTION lake_internal._pii_prefilter_sql(p_dataset text, p_doc text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format('((%s) - %L::text[])::text ~ %L', p_doc, lake_internal._pii_skip(p_dataset),
                  lake_internal._pii_prefilter());
END
$$;
ALTER FUNCTION lake_internal._pii_prefilter_sql(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_prefilter_sql(text, text) FROM PUBLIC;
