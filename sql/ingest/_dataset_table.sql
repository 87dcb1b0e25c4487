-- Part of lake.create_dataset: the table user_data.<name> (monthly RANGE partitions on ts, the
-- owner column user_id, the record doc, its batch and ingest time), its (user_id, ts) index, and
-- its partitions: the registry row's run of months (partitions_from .. partitions_to) between
-- the two overflow partitions. A part of its own so each of the dataset's pieces has one home.
CREATE FUNCTION lake_internal._dataset_table(p_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    ds      lake.datasets;
    v_month timestamptz;
BEGIN
    SELECT * INTO STRICT ds FROM lake.datasets WHERE name = p_name;
    EXECUTE format($ddl$
        CREATE TABLE user_data.%1$I (
            id          bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000),
            user_id     text COLLATE "C" DEFAULT lake.current_user_id(),
            ts          timestamptz NOT NULL,
            doc         jsonb NOT NULL,
            batch_id    uuid NOT NULL
                        DEFAULT md5('lake:' || pg_current_xact_id()::text || ':' || %1$L)::uuid,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            pii         bytea,
            xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id()
        ) PARTITION BY RANGE (ts)$ddl$, ds.name);
    EXECUTE format('COMMENT ON COLUMN user_data.%I.id IS %L', ds.name,
                   'the record''s id, given by the lake (kept by rollback and restore)');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.user_id IS %L', ds.name,
                   'whose record it is: the session''s lake user (lake.current_user_id())');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.ts IS %L', ds.name,
                   'the record''s time, read from its ' || ds.time_field
                   || ' field; the monthly partition key (UTC)');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.doc IS %L', ds.name,
                   'the record as received (pii_fields masked), valid against its JSON Schema');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.batch_id IS %L', ds.name,
                   'the batch that brought the record (lake.batches)');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.ingested_at IS %L', ds.name,
                   'when the record was stored');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.pii IS %L', ds.name,
                   'the pii_fields in clear, encrypted (lake.pii_reveal); doc holds masks');
    EXECUTE format('COMMENT ON COLUMN user_data.%I.xact_id IS %L', ds.name,
                   'the transaction that wrote this row version (checkpoints, lake.rollback)');
    EXECUTE format('COMMENT ON TABLE user_data.%I IS %L', ds.name,
                   coalesce(ds.description, 'Dataset ' || ds.name) || ' (see lake.datasets)');
    EXECUTE format('CREATE INDEX %I ON user_data.%I (user_id, ts)', ds.name || '_user_ts', ds.name);

    PERFORM lake_internal._create_partition(ds.name, 'before', ds.partitions_from);
    FOR v_month IN SELECT generate_series(ds.partitions_from, ds.partitions_to - interval '1 month',
                                          interval '1 month')
    LOOP
        PERFORM lake_internal._create_partition(ds.name, 'month', v_month);
    END LOOP;
    PERFORM lake_internal._create_partition(ds.name, 'after', ds.partitions_to);
END
$$;
ALTER FUNCTION lake_internal._dataset_table(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._dataset_table(text) FROM PUBLIC;
