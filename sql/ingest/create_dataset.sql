-- Register a dataset and create user_data.<name>. This orchestrates: it checks the name, the
-- options and the JSON Schema, writes the registry row (the partitions span the whole retention
-- window plus `premake` future months) and the compiled schema, then calls the parts, one file
-- each in lake_internal: _dataset_table (the table, its index and partitions), _dataset_policies
-- (row-level security, policies, grants), _dataset_inbox (the COPY inbox inbox.<name>) and
-- _dataset_triggers (validation, audit, undo, change capture, PII; idempotent, so migrations
-- re-apply it to existing datasets).
--
-- options (all optional): time_field ('ts'), time_format ('rfc3339' | 'epoch_s' | 'epoch_ms'),
-- retention ('12 months'), premake (3), max_future ('1 day'), max_record_bytes (16 MiB),
-- max_depth (64), tiers ({"hot": "30 days", "warm": "90 days", "cold": "365 days"}),
-- pii_fields ([]: top-level fields to encrypt and mask), pii_scan (true: record where stored
-- records hold personal identifiers, in lake.pii_findings), source_format (NULL: one of
-- lake.source_formats(), whose records every ingest path converts into this dataset's),
-- description.
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
    v_options   jsonb := coalesce(p_options, '{}');
    v_known     text[] := ARRAY['time_field', 'time_format', 'retention', 'premake', 'max_future',
                                'max_record_bytes', 'max_depth', 'tiers', 'pii_fields',
                                'pii_scan', 'source_format', 'description'];
BEGIN
    -- The name becomes an identifier: accept only names that never need quoting. A double _ is
    -- the lake's own (user_data.<dataset>__embeddings).
    IF p_name IS NULL OR p_name !~ '^[a-z][a-z0-9_]{0,47}$' OR quote_ident(p_name) <> p_name
       OR p_name LIKE '%\_\_%' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK001',
            MESSAGE = format('invalid dataset name %L', left(p_name, 100)),
            HINT = 'Use 1-48 characters: lower-case letters, digits and single _, starting with '
                   'a letter, and not an SQL keyword (e.g. location_history).';
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
                max_depth, tiers, pii_fields, pii_scan, source_format, description,
                partitions_from, partitions_to)
        SELECT p_name, o.time_field, o.time_format, o.retention, o.premake, o.max_future,
               o.max_record_bytes, o.max_depth, o.tiers, o.pii_fields, o.pii_scan,
               o.source_format, o.description,
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
                       v_options ->> 'source_format' AS source_format,
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
        IF ds.source_format IS NOT NULL
           AND NOT EXISTS (SELECT FROM lake.source_formats() f WHERE f.name = ds.source_format) THEN
            RAISE EXCEPTION 'source_format % is not one of lake.source_formats() (%)',
                ds.source_format,
                (SELECT string_agg(f.name, ', ' ORDER BY f.name) FROM lake.source_formats() f);
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

    -- The parts, each in a file of its own (the triggers part is re-applied by migrations).
    PERFORM lake_internal._dataset_table(ds.name);
    PERFORM lake_internal._dataset_policies(ds.name);
    PERFORM lake_internal._dataset_inbox(ds.name);
    PERFORM lake_internal._dataset_triggers(ds.name);
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
