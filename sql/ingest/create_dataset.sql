-- Register a dataset and create user_data.<name>: monthly RANGE partitions on ts (the whole
-- retention window plus `premake` future months, between two overflow partitions), the owner
-- column user_id, the record doc, its batch and ingest time; the (user_id, ts) index; row-level
-- security enabled and forced with policy user_isolation; the validation triggers; and the COPY
-- inbox inbox.<name>.
--
-- options (all optional): time_field ('ts'), time_format ('rfc3339' | 'epoch_s' | 'epoch_ms'),
-- retention ('12 months'), premake (3), max_future ('1 day'), max_record_bytes (16 MiB),
-- max_depth (64), tiers ({"hot": "30 days", "warm": "90 days", "cold": "365 days"}),
-- pii_fields ([]: top-level fields to encrypt and mask), pii_scan (true: record where stored
-- records hold personal identifiers, in lake.pii_findings), description.
CREATE FUNCTION lake.create_dataset(name text, json_schema jsonb, options jsonb DEFAULT '{}')
RETURNS lake.datasets
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_name ALIAS FOR name;
    p_json_schema ALIAS FOR json_schema;
    p_options ALIAS FOR options;
    ds          lake.datasets;
    v_problems  text[];
    v_key       text;
    v_month     timestamptz;
    v_trg       record;
    v_options   jsonb := coalesce(p_options, '{}');
    v_known     text[] := ARRAY['time_field', 'time_format', 'retention', 'premake', 'max_future',
                                'max_record_bytes', 'max_depth', 'tiers', 'pii_fields',
                                'pii_scan', 'description'];
BEGIN
    -- The name becomes an identifier: accept only names that never need quoting.
    IF p_name IS NULL OR p_name !~ '^[a-z][a-z0-9_]{0,47}$' OR quote_ident(p_name) <> p_name THEN
        RAISE EXCEPTION USING ERRCODE = 'LK001',
            MESSAGE = format('invalid dataset name %L', left(p_name, 100)),
            HINT = 'Use 1-48 characters: lower-case letters, digits and _, starting with a '
                   'letter, and not an SQL keyword (e.g. location_history).';
    END IF;
    IF EXISTS (SELECT FROM lake.datasets WHERE name = p_name) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK002',
            MESSAGE = format('dataset %L exists already', p_name),
            HINT = 'Pick another name; SELECT name FROM lake.datasets lists the datasets.';
    END IF;

    IF jsonb_typeof(v_options) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK005', MESSAGE = 'options must be a JSON object';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(v_options) LOOP
        IF NOT v_key = ANY (v_known) THEN
            RAISE EXCEPTION USING ERRCODE = 'LK005',
                MESSAGE = format('unknown option %L', v_key),
                HINT = 'Known options: ' || array_to_string(v_known, ', ') || '.';
        END IF;
    END LOOP;

    v_problems := lake_internal._check_schema(p_json_schema);
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK004',
            MESSAGE = format('invalid JSON Schema for dataset %L', p_name),
            DETAIL = array_to_string(v_problems, E'\n');
    END IF;

    BEGIN
        -- Casts and CHECK constraints of lake.datasets validate the values.
        INSERT INTO lake.datasets AS d
               (name, time_field, time_format, retention, premake, max_future, max_record_bytes,
                max_depth, tiers, pii_fields, pii_scan, description, partitions_from,
                partitions_to)
        SELECT p_name, o.time_field, o.time_format, o.retention, o.premake, o.max_future,
               o.max_record_bytes, o.max_depth, o.tiers, o.pii_fields, o.pii_scan, o.description,
               lake.month_start(now() - o.retention),
               lake.month_start(now()) + make_interval(months => o.premake + 1)
          FROM (SELECT coalesce(v_options ->> 'time_field', 'ts') AS time_field,
                       coalesce(v_options ->> 'time_format', 'rfc3339') AS time_format,
                       coalesce((v_options ->> 'retention')::interval, '12 months') AS retention,
                       coalesce((v_options ->> 'premake')::integer, 3) AS premake,
                       coalesce((v_options ->> 'max_future')::interval, '1 day') AS max_future,
                       coalesce((v_options ->> 'max_record_bytes')::integer, 16777216)
                           AS max_record_bytes,
                       coalesce((v_options ->> 'max_depth')::integer, 64) AS max_depth,
                       coalesce(v_options -> 'tiers',
                                '{"hot": "30 days", "warm": "90 days", "cold": "365 days"}')
                           AS tiers,
                       coalesce(ARRAY(SELECT jsonb_array_elements_text(v_options -> 'pii_fields')),
                                '{}') AS pii_fields,
                       coalesce((v_options ->> 'pii_scan')::boolean, true) AS pii_scan,
                       v_options ->> 'description' AS description) AS o
        RETURNING d.* INTO ds;
        IF ds.time_field = '' OR length(ds.time_field) > 128 THEN
            RAISE EXCEPTION 'time_field must be 1-128 characters';
        END IF;
        IF jsonb_typeof(ds.tiers) <> 'object'
           OR EXISTS (SELECT FROM jsonb_each_text(ds.tiers) t
                       WHERE t.key NOT IN ('hot', 'warm', 'cold') OR t.value::interval < '0') THEN
            RAISE EXCEPTION 'tiers must map hot, warm and cold to intervals';
        END IF;
    EXCEPTION
        WHEN invalid_text_representation OR invalid_datetime_format OR datetime_field_overflow
             OR numeric_value_out_of_range OR check_violation OR raise_exception
             OR invalid_parameter_value OR cannot_coerce OR not_null_violation
             OR interval_field_overflow OR array_subscript_error OR wrong_object_type THEN
            RAISE EXCEPTION USING ERRCODE = 'LK005',
                MESSAGE = format('invalid options for dataset %L: %s', p_name, SQLERRM),
                HINT = 'See the options of lake.create_dataset in the README.';
    END;

    INSERT INTO lake.dataset_schemas (dataset, version, json_schema, predicate, pii_clear)
    VALUES (ds.name, 1, p_json_schema,
            lake_internal._compile_predicate(p_json_schema,
                                    CASE WHEN ds.time_format = 'rfc3339' THEN ds.time_field END),
            lake_internal._pii_clear_fields(p_json_schema));

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

    EXECUTE format('ALTER TABLE user_data.%I ENABLE ROW LEVEL SECURITY', ds.name);
    EXECUTE format('ALTER TABLE user_data.%I FORCE ROW LEVEL SECURITY', ds.name);
    EXECUTE format($pol$
        CREATE POLICY user_isolation ON user_data.%I AS PERMISSIVE FOR ALL TO PUBLIC
        USING (user_id = (SELECT lake.current_user_id()))
        WITH CHECK (user_id = (SELECT lake.current_user_id()))$pol$, ds.name);
    -- The lake's own functions (running as lake_owner) decide ownership themselves.
    EXECUTE format($pol$
        CREATE POLICY lake_internal ON user_data.%I AS PERMISSIVE FOR ALL TO lake_owner
        USING (true) WITH CHECK (true)$pol$, ds.name);
    -- The identity's scopes (its API key's): lake.current_user_id() is NULL without read, and
    -- writing needs write.
    EXECUTE format($pol$
        CREATE POLICY scope_insert ON user_data.%I AS RESTRICTIVE FOR INSERT
        TO lake_write, lake_admin WITH CHECK ((SELECT lake.has_scope('write')))$pol$, ds.name);
    EXECUTE format($pol$
        CREATE POLICY scope_update ON user_data.%I AS RESTRICTIVE FOR UPDATE
        TO lake_write, lake_admin USING ((SELECT lake.has_scope('write')))$pol$, ds.name);
    EXECUTE format($pol$
        CREATE POLICY scope_delete ON user_data.%I AS RESTRICTIVE FOR DELETE
        TO lake_write, lake_admin USING ((SELECT lake.has_scope('write')))$pol$, ds.name);
    EXECUTE format('GRANT SELECT ON user_data.%I TO lake_read, lake_admin', ds.name);
    -- Every column but xact_id, which only the lake sets (default, lake_internal._tg_row_version).
    EXECUTE format('GRANT INSERT (%2$s), UPDATE (%2$s), DELETE ON user_data.%1$I '
                   'TO lake_write, lake_admin', ds.name,
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                      FROM pg_catalog.pg_attribute AS a
                     WHERE a.attrelid = format('user_data.%I', ds.name)::regclass
                       AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'xact_id'));

    -- The triggers every dataset has. Statement triggers of one event fire in name order, so
    -- validate_* runs before write_changes_* (which then records only the rows that stayed).
    -- (functions in lake_internal):
    --   validate_*       _tg_validate: judge the statement's rows, quarantine the invalid
    --   audit_*          _tg_audit_change: changes to stored rows, before and after
    --   row_version      _tg_row_version: each row version names its writer (xact_id)
    --   undo_*           _tg_keep_undo: what UPDATE, DELETE and TRUNCATE replace, kept in
    --                    lake_internal.row_undo for checkpoints and rollback
    --   write_changes_*  _tg_capture: change capture into lake.data_changes
    FOR v_trg IN
        SELECT * FROM (VALUES
            ('validate_insert', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_validate'),
            ('validate_update', 'AFTER UPDATE', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_validate'),
            ('audit_update', 'AFTER UPDATE',
             'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows', 'STATEMENT',
             '_tg_audit_change'),
            ('audit_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows', 'STATEMENT',
             '_tg_audit_change'),
            ('audit_truncate', 'AFTER TRUNCATE', '', 'STATEMENT', '_tg_audit_change'),
            ('row_version', 'BEFORE UPDATE', '', 'ROW', '_tg_row_version'),
            ('undo_update', 'AFTER UPDATE', 'REFERENCING OLD TABLE AS old_rows', 'STATEMENT',
             '_tg_keep_undo'),
            ('undo_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows', 'STATEMENT',
             '_tg_keep_undo'),
            ('undo_truncate', 'BEFORE TRUNCATE', '', 'STATEMENT', '_tg_keep_undo'),
            ('write_changes_insert', 'AFTER INSERT', 'REFERENCING NEW TABLE AS new_rows',
             'STATEMENT', '_tg_capture'),
            ('write_changes_update', 'AFTER UPDATE',
             'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows', 'STATEMENT',
             '_tg_capture'),
            ('write_changes_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS old_rows',
             'STATEMENT', '_tg_capture'),
            ('write_changes_truncate', 'AFTER TRUNCATE', '', 'STATEMENT', '_tg_capture')
        ) AS t (name, event, refs, level, fn)
    LOOP
        EXECUTE format('CREATE TRIGGER %I %s ON user_data.%I %s FOR EACH %s '
                       'EXECUTE FUNCTION lake_internal.%I()',
                       v_trg.name, v_trg.event, ds.name, v_trg.refs, v_trg.level, v_trg.fn);
    END LOOP;
    -- Personal identifiers: encrypted into pii and masked in doc before a row is stored.
    IF cardinality(ds.pii_fields) > 0 THEN
        EXECUTE format($trg$
            CREATE TRIGGER pii_protect BEFORE INSERT OR UPDATE ON user_data.%I
            FOR EACH ROW EXECUTE FUNCTION lake_internal._tg_pii_protect(%L)$trg$, ds.name, ds.name);
    END IF;
    -- Findings of personal identifiers go with their records.
    IF ds.pii_scan THEN
        EXECUTE format($trg$
            CREATE TRIGGER pii_forget AFTER DELETE ON user_data.%I
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_pii_forget()$trg$, ds.name);
        EXECUTE format($trg$
            CREATE TRIGGER pii_forget_all AFTER TRUNCATE ON user_data.%I
            FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_pii_forget()$trg$, ds.name);
    END IF;

    -- The COPY inbox (see sql/schemas/inbox.sql): same record columns, no owner column (the
    -- owner is the session's lake user), insert-only for applications. Its trigger validates
    -- the rows and stores the valid ones, so a row whose time is missing (ts NULL) is accepted
    -- here and quarantined there with its reason; ref, when given, names the record in its
    -- batch (e.g. "line 17") for the quarantine.
    EXECUTE format($ddl$
        CREATE UNLOGGED TABLE inbox.%1$I (
            ts          timestamptz,
            doc         jsonb NOT NULL,
            batch_id    uuid NOT NULL
                        DEFAULT md5('lake:' || pg_current_xact_id()::text || ':' || %1$L)::uuid,
            ref         text,
            xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id()
        ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)$ddl$,
        ds.name);
    EXECUTE format('CREATE INDEX %I ON inbox.%I (xact_id)', ds.name || '_xact', ds.name);
    EXECUTE format('COMMENT ON TABLE inbox.%I IS %L', ds.name,
                   'COPY inbox for user_data.' || ds.name || ': rows move there at once');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.ts IS %L', ds.name,
                   'the record''s time, from its ' || ds.time_field
                   || ' field (a row without one is quarantined)');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.doc IS %L', ds.name, 'the record');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.batch_id IS %L', ds.name,
                   'the batch (lake.begin_batch), or one per transaction for plain COPY');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.ref IS %L', ds.name,
                   'where the record was in its batch, e.g. line 17 (for the quarantine)');
    EXECUTE format('COMMENT ON COLUMN inbox.%I.xact_id IS %L', ds.name,
                   'the transaction that copied the row (set by the lake)');
    EXECUTE format('GRANT INSERT (ts, doc, batch_id, ref) ON inbox.%I TO lake_write, lake_admin',
                   ds.name);
    EXECUTE format($trg$
        CREATE TRIGGER move_to_dataset AFTER INSERT ON inbox.%I
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION lake_internal._tg_inbox()$trg$, ds.name);

    PERFORM lake_internal._create_partition(ds.name, 'before', ds.partitions_from);
    FOR v_month IN SELECT generate_series(ds.partitions_from, ds.partitions_to - interval '1 month',
                                          interval '1 month')
    LOOP
        PERFORM lake_internal._create_partition(ds.name, 'month', v_month);
    END LOOP;
    PERFORM lake_internal._create_partition(ds.name, 'after', ds.partitions_to);
    PERFORM lake_internal._audit('dataset.create', ds.name,
                        jsonb_build_object('schema', p_json_schema, 'options', p_options));
    RETURN ds;
END
$$;
ALTER FUNCTION lake.create_dataset(text, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.create_dataset(text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.create_dataset(text, jsonb, jsonb) TO lake_admin;

COMMENT ON FUNCTION lake.create_dataset(text, jsonb, jsonb) IS
    'Register a dataset: user_data.<name> with its partitions, policies and triggers, and '
    'inbox.<name>. Administrators.';
