-- The Debezium-style `source` of a change event (lake.data_changes.source): connector, database,
-- schema, table, the writing transaction, when the change was made and what kind of event it is
-- (row, truncate, batch). One definition for the row events (lake_internal._tg_capture) and the
-- batch events (lake_internal._tg_batch_commit), so both carry the same fields.
CREATE FUNCTION lake_internal._change_source(p_schema text, p_table text, p_ts_ms bigint, p_kind text)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN jsonb_build_object(
        'connector', 'datapunk-lake', 'db', current_database(), 'schema', p_schema,
        'table', p_table, 'txId', pg_current_xact_id()::text, 'ts_ms', p_ts_ms, 'kind', p_kind);
END
$$;
ALTER FUNCTION lake_internal._change_source(text, text, bigint, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._change_source(text, text, bigint, text) FROM PUBLIC;
