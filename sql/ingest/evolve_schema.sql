-- A dataset's JSON Schema changes: the new one is checked and compiled as lake.create_dataset
-- does (one home for each: lake_internal._check_schema, _compile_predicate, _pii_clear_fields),
-- added to lake.dataset_schemas as the next version and put in force (lake.datasets
-- .schema_version), which every ingest path reads. Stored rows are not judged again: they keep
-- the version they were validated against, which lake.batches.schema_version records per batch.
-- To make that record exact, the change waits for the dataset's writers in flight and holds new
-- ones until it commits (SHARE ROW EXCLUSIVE on user_data.<name> and inbox.<name>; readers go on).
--
-- With dry_run => true it changes nothing: it reports how many stored rows the new version would
-- reject and up to 5 of them (id, reasons). Every row of every user is judged (SECURITY DEFINER:
-- the lake's own policy), set-based with the compiled predicate; only the rows it does not clear
-- go on to PL/Python (lake_internal._explain), which has the final word and gives the reasons.
-- Records with pii_fields are judged as they were sent, not by their masks, as on ingest; the
-- examples' reasons about those fields are withheld as in the quarantine (_pii_withhold).
CREATE FUNCTION lake.evolve_schema(dataset text, json_schema jsonb, dry_run boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_json_schema ALIAS FOR json_schema;
    p_dry_run ALIAS FOR dry_run;
    ds          lake.datasets;
    v_problems  text[];
    v_version   integer;
    v_predicate text;
    v_key       text;
    g           record;
    v_reasons   jsonb[];
    v_rows      bigint := 0;
    v_rejected  bigint := 0;
    v_examples  jsonb := '[]';
BEGIN
    SELECT * INTO ds FROM lake.datasets WHERE name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100)),
            HINT = 'SELECT name FROM lake.datasets lists the datasets.';
    END IF;
    v_problems := lake_internal._check_schema(p_json_schema);
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK004',
            MESSAGE = format('invalid JSON Schema for dataset %L', ds.name),
            DETAIL = array_to_string(v_problems, E'\n');
    END IF;
    v_predicate := lake_internal._compile_predicate(
        p_json_schema, CASE WHEN ds.time_format = 'rfc3339' THEN ds.time_field END);
    SELECT coalesce(max(s.version), 0) + 1 INTO v_version
      FROM lake.dataset_schemas AS s WHERE s.dataset = ds.name;

    IF p_dry_run THEN
        -- Suspects in chunks of 1000, in id order; the predicate may read ts (see
        -- _compile_predicate), which is in scope here.
        v_key := ds.name || ':dry_run:' || md5(p_json_schema::text);
        EXECUTE format('SELECT count(*) FROM user_data.%I', ds.name) INTO v_rows;
        FOR g IN EXECUTE format($q$
            SELECT array_agg(s.id ORDER BY s.id) AS ids, array_agg(s.doc ORDER BY s.id) AS docs
              FROM (SELECT r.id, r.doc, (row_number() OVER (ORDER BY r.id) - 1) / 1000 AS chunk
                      FROM (SELECT r.id, r.ts, %s AS doc FROM user_data.%I AS r) AS r
                     WHERE NOT coalesce((%s), false)) AS s
             GROUP BY s.chunk ORDER BY s.chunk$q$,
            CASE WHEN cardinality(ds.pii_fields) > 0
                 THEN 'lake_internal._pii_open(r.doc, r.pii)' ELSE 'r.doc' END,
            ds.name, coalesce(v_predicate, 'false'))
        LOOP
            v_reasons := lake_internal._explain(v_key, p_json_schema, g.docs);
            v_rejected := v_rejected
                          + (SELECT count(*) FROM unnest(v_reasons) AS y(r) WHERE y.r <> '[]');
            IF jsonb_array_length(v_examples) < 5 THEN
                v_examples := v_examples || coalesce(
                    (SELECT jsonb_agg(jsonb_build_object(
                                'id', g.ids[x.o],
                                'reasons', lake_internal._pii_withhold(ds.pii_fields, x.r))
                            ORDER BY x.o)
                       FROM (SELECT y.r, y.o FROM unnest(v_reasons) WITH ORDINALITY AS y(r, o)
                              WHERE y.r <> '[]' ORDER BY y.o
                              LIMIT 5 - jsonb_array_length(v_examples)) AS x), '[]');
            END IF;
        END LOOP;
        RETURN jsonb_build_object('dataset', ds.name, 'dry_run', true,
                                  'current_version', ds.schema_version, 'version', v_version,
                                  'rows', v_rows, 'rejected', v_rejected,
                                  'examples', v_examples);
    END IF;

    -- Writers in flight finish first, new ones wait: every batch is judged by one version.
    PERFORM FROM lake.datasets WHERE name = ds.name FOR UPDATE;
    EXECUTE format('LOCK TABLE user_data.%1$I, inbox.%1$I IN SHARE ROW EXCLUSIVE MODE', ds.name);
    SELECT coalesce(max(s.version), 0) + 1 INTO v_version
      FROM lake.dataset_schemas AS s WHERE s.dataset = ds.name;
    INSERT INTO lake.dataset_schemas (dataset, version, json_schema, predicate, pii_clear)
    VALUES (ds.name, v_version, p_json_schema, v_predicate,
            lake_internal._pii_clear_fields(p_json_schema));
    UPDATE lake.datasets SET schema_version = v_version WHERE name = ds.name;
    PERFORM lake_internal._audit('dataset.evolve', ds.name,
                        jsonb_build_object('from_version', ds.schema_version,
                                           'version', v_version, 'schema', p_json_schema));
    RETURN jsonb_build_object('dataset', ds.name, 'dry_run', false,
                              'previous_version', ds.schema_version, 'version', v_version);
END
$$;
ALTER FUNCTION lake.evolve_schema(text, jsonb, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.evolve_schema(text, jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.evolve_schema(text, jsonb, boolean) TO lake_admin;

COMMENT ON FUNCTION lake.evolve_schema(text, jsonb, boolean) IS
    'Add a version of a dataset''s JSON Schema and put it in force (stored rows keep theirs); '
    'dry_run: count and show the stored rows it would reject, changing nothing. Administrators.';
