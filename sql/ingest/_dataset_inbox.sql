-- Part of lake.create_dataset: the COPY inbox inbox.<name> (see sql/schemas/inbox.sql): the
-- record columns, no owner column (the owner is the session's lake user), insert-only for
-- applications. Its trigger (lake_internal._dataset_triggers) validates the rows and stores the
-- valid ones, so a row whose time is missing (ts NULL) is accepted here and quarantined there
-- with its reason; ref, when given, names the record in its batch (e.g. "line 17") for the
-- quarantine.
CREATE FUNCTION lake_internal._dataset_inbox(p_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ds lake.datasets;
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lake_internal._dataset_inbox: no dataset %', p_name;
    END IF;
    EXECUTE format($ddl$
        CREATE UNLOGGED TABLE inbox.%1$I (
            ts          timestamptz,
            doc         jsonb NOT NULL,
            batch_id    uuid NOT NULL
                        DEFAULT md5('lake:' || pg_current_xact_id()::text || ':' || %1$L)::uuid,
            ref         text,
            xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id()
        ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)$ddl$,
        p_name);
    EXECUTE format('CREATE INDEX %I ON inbox.%I (xact_id)', p_name || '_xact', p_name);
    EXECUTE format('COMMENT ON TABLE inbox.%I IS %L', p_name,
                   'COPY inbox for user_data.' || p_name || ': rows move there at once');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.ts IS %L', p_name,
                   'the record''s time, from its ' || ds.time_field
                   || ' field (a row without one is quarantined)');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.doc IS %L', p_name, 'the record');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.batch_id IS %L', p_name,
                   'the batch (lake.begin_batch), or one per transaction for plain COPY');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.ref IS %L', p_name,
                   'where the record was in its batch, e.g. line 17 (for the quarantine)');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.xact_id IS %L', p_name,
                   'the transaction that copied the row (set by the lake)');
    EXECUTE format('GRANT INSERT (ts, doc, batch_id, ref) ON inbox.%I TO lake_write, lake_admin',
                   p_name);
END
$$;
ALTER FUNCTION lake_internal._dataset_inbox(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._dataset_inbox(text) FROM PUBLIC;
