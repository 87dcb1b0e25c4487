-- The HNSW index of one model of user_data.<dataset>__embeddings: a partial index (that model's
-- rows) on the vector cast to the model's dimensions, made on the partitioned table, so every
-- monthly partition has its own and new months get theirs. lake.similar's ORDER BY uses the
-- same expression, operator and model constant, so the planner can use it. Idempotent.
CREATE FUNCTION lake_internal._embedding_index(p_dataset text, p_model text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m      lake.embedding_models;
    v_name text;
BEGIN
    SELECT * INTO STRICT m FROM lake.embedding_models AS e
     WHERE e.dataset = p_dataset AND e.model = p_model;
    -- Index names are at most 63 bytes: the dataset (48) and a digest of the model.
    v_name := p_dataset || '_hnsw_' || left(md5(p_model), 8);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON user_data.%I USING hnsw'
                   ' ((embedding::public.vector(%s)) public.%s) WHERE model = %L',
                   v_name, p_dataset || '__embeddings', m.dimensions,
                   m.opclass, m.model);
    RETURN v_name;
END
$$;
ALTER FUNCTION lake_internal._embedding_index(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._embedding_index(text, text) FROM PUBLIC;
