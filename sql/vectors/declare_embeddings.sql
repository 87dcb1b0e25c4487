-- Declare an embedding model of a dataset: its vectors' dimensions and metric, and how
-- lake.similar searches them. The first model makes user_data.<dataset>__embeddings, partitioned
-- by month as the records (a partition per month of user_data.<dataset>), with the records'
-- row-level security (lake_internal._dataset_policies); every model gets a partial HNSW index
-- (lake_internal._embedding_index). Declaring a model again changes only its search settings
-- (NULL keeps one); its dimensions and metric are fixed (LK093), as its vectors and index are.
CREATE FUNCTION lake.declare_embeddings(dataset text, model text, dimensions integer,
                                        metric text DEFAULT 'cosine',
                                        ef_search integer DEFAULT NULL,
                                        iterative_scan text DEFAULT NULL,
                                        max_scan_tuples integer DEFAULT NULL,
                                        exact_below integer DEFAULT NULL)
RETURNS lake.embedding_models
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_model ALIAS FOR model;
    p_dimensions ALIAS FOR dimensions;
    p_metric ALIAS FOR metric;
    p_ef_search ALIAS FOR ef_search;
    p_iterative_scan ALIAS FOR iterative_scan;
    p_max_scan_tuples ALIAS FOR max_scan_tuples;
    p_exact_below ALIAS FOR exact_below;
    ds      lake.datasets;
    m       lake.embedding_models;
    v_table text := p_dataset || '__embeddings';
    v_month timestamptz;
BEGIN
    SELECT * INTO ds FROM lake.datasets AS d WHERE d.name = p_dataset;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003', MESSAGE = format('no dataset %L', p_dataset);
    END IF;
    SELECT * INTO m FROM lake.embedding_models AS e
     WHERE e.dataset = p_dataset AND e.model = p_model FOR UPDATE;
    IF FOUND AND (m.dimensions, m.metric) IS DISTINCT FROM (p_dimensions, p_metric) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK093',
            MESSAGE = format('model %L of dataset %L is declared with %s dimensions and metric %s',
                             p_model, p_dataset, m.dimensions, m.metric),
            HINT = 'A model''s dimensions and metric are fixed: declare a model of another name.';
    END IF;
    IF NOT EXISTS (SELECT FROM lake.embedding_models AS e WHERE e.dataset = p_dataset)
       AND to_regclass(format('user_data.%I', v_table)) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK093',
            MESSAGE = format('user_data.%s exists already (a dataset of that name?)', v_table),
            HINT = 'The embeddings of a dataset live in user_data.<dataset>__embeddings.';
    END IF;
    BEGIN
        INSERT INTO lake.embedding_models AS e (dataset, model, dimensions, metric, ef_search,
                                                iterative_scan, max_scan_tuples, exact_below)
        VALUES (p_dataset, p_model, p_dimensions, p_metric, coalesce(p_ef_search, 40),
                coalesce(p_iterative_scan, 'relaxed_order'), coalesce(p_max_scan_tuples, 20000),
                coalesce(p_exact_below, 50000))
        ON CONFLICT (dataset, model) DO UPDATE
           SET ef_search = coalesce(p_ef_search, e.ef_search),
               iterative_scan = coalesce(p_iterative_scan, e.iterative_scan),
               max_scan_tuples = coalesce(p_max_scan_tuples, e.max_scan_tuples),
               exact_below = coalesce(p_exact_below, e.exact_below)
        RETURNING e.* INTO m;
    EXCEPTION WHEN check_violation OR not_null_violation THEN
        RAISE EXCEPTION USING ERRCODE = 'LK093',
            MESSAGE = format('invalid embedding model %L of dataset %L: %s', left(p_model, 100),
                             p_dataset, SQLERRM),
            HINT = 'model: 1-63 of a-z 0-9 _ . - starting with a letter; dimensions 1-2000; '
                   'metric cosine, l2 or inner_product; ef_search 1-1000; iterative_scan off, '
                   'relaxed_order or strict_order; max_scan_tuples >= 1; exact_below >= 0.';
    END;

    IF to_regclass(format('user_data.%I', v_table)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE user_data.%1$I (
                record_id   bigint NOT NULL,
                ts          timestamptz NOT NULL,
                user_id     text COLLATE "C" NOT NULL DEFAULT lake.current_user_id(),
                model       text NOT NULL,
                embedding   public.vector NOT NULL,
                created_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (record_id, ts, model)
            ) PARTITION BY RANGE (ts)$ddl$, v_table);
        -- The exact search of a caller's own vectors (lake.similar) and erasure read by it.
        EXECUTE format('CREATE INDEX %I ON user_data.%I (user_id, model, ts)',
                       p_dataset || '_emb_user_ts', v_table);
        EXECUTE format('COMMENT ON TABLE user_data.%I IS %L', v_table,
                       'Embeddings of the records of user_data.' || p_dataset
                       || ' (lake.put_embeddings, lake.similar; models in lake.embedding_models)');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.record_id IS %L', v_table,
                       'the record''s id (user_data.' || p_dataset || '.id)');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.ts IS %L', v_table,
                       'the record''s time: the monthly partition key, as the record''s');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.user_id IS %L', v_table,
                       'whose record it is (row-level security as the records'')');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.model IS %L', v_table,
                       'the model (lake.embedding_models) that made the vector');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.embedding IS %L', v_table,
                       'the vector, of the model''s dimensions');
        EXECUTE format('COMMENT ON COLUMN user_data.%I.created_at IS %L', v_table,
                       'when the vector was last written');
        PERFORM lake_internal._dataset_policies(p_dataset, v_table);
        FOR v_month IN SELECT generate_series(ds.partitions_from,
                                              ds.partitions_to - interval '1 month',
                                              interval '1 month')
        LOOP
            PERFORM lake_internal._embedding_partition(p_dataset, v_month);
        END LOOP;
    END IF;
    PERFORM lake_internal._embedding_index(p_dataset, p_model);
    PERFORM lake_internal._audit('dataset.embeddings', p_dataset, to_jsonb(m));
    RETURN m;
END
$$;
ALTER FUNCTION lake.declare_embeddings(text, text, integer, text, integer, text, integer, integer)
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.declare_embeddings(text, text, integer, text, integer, text, integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.declare_embeddings(text, text, integer, text, integer, text, integer, integer)
    TO lake_admin;

COMMENT ON FUNCTION lake.declare_embeddings(text, text, integer, text, integer, text, integer, integer) IS
    'Declare an embedding model of a dataset (dimensions, metric cosine | l2 | inner_product, '
    'search settings of lake.similar): user_data.<dataset>__embeddings with an HNSW index per '
    'month. Administrators.';
