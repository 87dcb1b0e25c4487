-- Write the vectors of one model for records of the session's user: embeddings[i] is the
-- vector of the record record_ids[i] (the last one given wins when an id comes twice). An
-- upsert per record and model, so sending the same batch again changes nothing. It runs with
-- the caller's rights: the records it finds, and the rows it writes, are those row-level
-- security lets the session see and write, as any INSERT into user_data. A vector of the wrong
-- dimensions is refused (LK091), and so is the whole call when a record is not the user's or
-- does not exist (LK094). lake_client's Lake.put_embeddings sends batches of 1000 by binary COPY
-- into a temporary table and then calls this. Returns how many vectors were written.
CREATE FUNCTION lake.put_embeddings(dataset text, model text, record_ids bigint[],
                                    embeddings public.vector[])
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_model ALIAS FOR model;
    m       lake.embedding_models;
    v_bad   record;
    v_given integer;
    v_n     integer;
BEGIN
    IF lake.current_user_id() IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010', MESSAGE = 'no lake user in this session',
            HINT = 'Authenticate with a user''s key, or act for a user (lake.act_as).';
    END IF;
    SELECT * INTO m FROM lake.embedding_models AS e
     WHERE e.dataset = p_dataset AND e.model = p_model;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK092',
            MESSAGE = format('dataset %L declares no embedding model %L', p_dataset, p_model),
            HINT = 'SELECT * FROM lake.embedding_models lists the declared models.';
    END IF;
    IF cardinality(record_ids) IS DISTINCT FROM cardinality(embeddings) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011',
            MESSAGE = format('%s record ids but %s embeddings', cardinality(record_ids),
                             cardinality(embeddings));
    END IF;
    SELECT g.o, public.vector_dims(g.v) AS dims INTO v_bad
      FROM unnest(record_ids, embeddings) WITH ORDINALITY AS g(id, v, o)
     WHERE g.id IS NULL OR g.v IS NULL OR public.vector_dims(g.v) <> m.dimensions
     ORDER BY g.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK091',
            MESSAGE = format('embedding %s has %s dimensions; model %L of dataset %L has %s',
                             v_bad.o, coalesce(v_bad.dims::text, 'no'), p_model, p_dataset,
                             m.dimensions),
            HINT = 'Every vector of a model has its declared dimensions (lake.embedding_models);'
                   ' a record id and its vector are both required.';
    END IF;

    SELECT count(DISTINCT g.id) INTO v_given FROM unnest(record_ids) AS g(id);
    EXECUTE format($q$
        INSERT INTO user_data.%1$I AS e (record_id, ts, user_id, model, embedding)
        SELECT r.id, r.ts, r.user_id, $3, g.v
          FROM (SELECT DISTINCT ON (u.id) u.id, u.v
                  FROM unnest($1, $2) WITH ORDINALITY AS u(id, v, o)
                 ORDER BY u.id, u.o DESC) AS g
          JOIN user_data.%2$I AS r ON r.id = g.id
        ON CONFLICT (record_id, ts, model) DO UPDATE
           SET embedding = excluded.embedding, created_at = now()$q$,
        p_dataset || '__embeddings', p_dataset)
    USING record_ids, embeddings, p_model;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n < v_given THEN
        RAISE EXCEPTION USING ERRCODE = 'LK094',
            MESSAGE = format('%s of %s records are not records of user %L in dataset %L',
                             v_given - v_n, v_given, lake.current_user_id(), p_dataset),
            HINT = 'Embeddings attach to the session user''s own records (user_data.'
                   || p_dataset || '.id); nothing was written.';
    END IF;
    RETURN v_n;
END
$$;
ALTER FUNCTION lake.put_embeddings(text, text, bigint[], public.vector[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.put_embeddings(text, text, bigint[], public.vector[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.put_embeddings(text, text, bigint[], public.vector[])
    TO lake_write, lake_admin;

COMMENT ON FUNCTION lake.put_embeddings(text, text, bigint[], public.vector[]) IS
    'Write one model''s vectors for the session user''s records (an upsert per record and '
    'model; wrong dimensions LK091, records not the user''s LK094). Users, services acting for '
    'one, administrators acting for one.';
