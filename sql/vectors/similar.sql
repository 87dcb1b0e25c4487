-- The session user's k records nearest to a query vector, by the model's metric (nearest
-- first): each record's id, time, distance and record. Optional: a time range [from_ts, to_ts),
-- a filter (the record contains it: doc @> filter), the model (the dataset's only one when not
-- named). It runs with the caller's rights, so row-level security makes every search a filtered
-- one, searched one of two ways (make bench-vectors measured both):
--   exact  when the caller has fewer than the model's exact_below vectors in the range: their
--          own vectors, read by the (user_id, model, ts) index, sorted by distance. Recall 1;
--          the cost grows with the caller's rows, not everyone's.
--   HNSW   otherwise: the index of each month (lake_internal._embedding_index) walked with
--          pgvector's iterative index scan, which goes on past ef_search until k of the caller's
--          rows pass the filter or max_scan_tuples are seen (the model's settings in
--          lake.embedding_models, confined to this call by the SET clauses). A relaxed-order
--          scan may return the k slightly out of order: they are sorted again.
-- A record that is gone takes its vectors out of the results.
CREATE FUNCTION lake.similar(dataset text, query public.vector, k integer DEFAULT 10,
                             from_ts timestamptz DEFAULT NULL, to_ts timestamptz DEFAULT NULL,
                             filter jsonb DEFAULT NULL, model text DEFAULT NULL)
RETURNS TABLE (id bigint, ts timestamptz, distance double precision, doc jsonb)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- Placeholders that confine the model's settings (set_config below) to this call.
SET hnsw.ef_search = 40
SET hnsw.iterative_scan = 'off'
SET hnsw.max_scan_tuples = 20000
AS $$
#variable_conflict use_column
DECLARE
    p_dataset ALIAS FOR dataset;
    p_model ALIAS FOR model;
    m       lake.embedding_models;
    v_where text := '';
    v_table text := p_dataset || '__embeddings';
    v_dist  text;
    v_mine  bigint;
BEGIN
    SELECT * INTO m FROM lake.embedding_models AS e
     WHERE e.dataset = p_dataset
       AND (e.model = p_model
            OR (p_model IS NULL AND NOT EXISTS (SELECT FROM lake.embedding_models AS o
                                                 WHERE o.dataset = e.dataset
                                                   AND o.model <> e.model)));
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK092',
            MESSAGE = format('dataset %L declares no embedding model %L (or several: name one)',
                             p_dataset, coalesce(p_model, '')),
            HINT = 'SELECT * FROM lake.embedding_models lists the declared models.';
    END IF;
    IF query IS NULL OR public.vector_dims(query) <> m.dimensions THEN
        RAISE EXCEPTION USING ERRCODE = 'LK091',
            MESSAGE = format('the query has %s dimensions; model %L of dataset %L has %s',
                             coalesce(public.vector_dims(query)::text, 'no'), m.model, p_dataset,
                             m.dimensions);
    END IF;
    IF k IS NULL OR k NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'LK011', MESSAGE = format('k must be 1-1000, not %s', k);
    END IF;
    -- Conditions only when given, so the months outside the range are pruned at planning.
    IF from_ts IS NOT NULL THEN
        v_where := v_where || ' AND e.ts >= $2';
    END IF;
    IF to_ts IS NOT NULL THEN
        v_where := v_where || ' AND e.ts < $3';
    END IF;
    v_dist := format('e.embedding::public.vector(%s) OPERATOR(public.%s) $1', m.dimensions,
                     m.operator);
    IF m.exact_below > 0 THEN
        -- How many vectors of the caller's are in range, counted up to exact_below only.
        EXECUTE format('SELECT count(*) FROM (SELECT FROM user_data.%I AS e'
                       ' WHERE e.user_id = (SELECT lake.current_user_id()) AND e.model = %L %s'
                       ' LIMIT $6) AS x', v_table, m.model, v_where)
        INTO v_mine USING query, from_ts, to_ts, filter, k, m.exact_below;
    END IF;
    IF v_mine < m.exact_below THEN
        -- Exact: the caller's vectors sorted (OFFSET 0 keeps the HNSW index out of it); the
        -- records are looked up for the nearest only (with room for a few whose record is
        -- gone), or for all when a filter needs them.
        IF filter IS NOT NULL THEN
            v_where := v_where || format(' AND EXISTS (SELECT FROM user_data.%I AS r'
                                         ' WHERE r.user_id = e.user_id AND r.ts = e.ts'
                                         ' AND r.id = e.record_id AND r.doc @> $4)', p_dataset);
        END IF;
        RETURN QUERY EXECUTE format($q$
            SELECT n.record_id, n.ts, n.distance::double precision, r.doc
              FROM (SELECT e.record_id, e.ts, %1$s AS distance
                      FROM (SELECT * FROM user_data.%2$I AS e
                             WHERE e.user_id = (SELECT lake.current_user_id())
                               AND e.model = %3$L %4$s OFFSET 0) AS e
                     ORDER BY 3 LIMIT $5 + 10) AS n
              JOIN user_data.%5$I AS r ON r.ts = n.ts AND r.id = n.record_id
             ORDER BY n.distance, n.record_id
             LIMIT $5$q$,
            v_dist, v_table, m.model, v_where, p_dataset)
        USING query, from_ts, to_ts, filter, k;
        RETURN;
    END IF;
    PERFORM set_config('hnsw.ef_search', m.ef_search::text, true),
            set_config('hnsw.iterative_scan', m.iterative_scan, true),
            set_config('hnsw.max_scan_tuples', m.max_scan_tuples::text, true);
    RETURN QUERY EXECUTE format($q$
        WITH nearest AS MATERIALIZED (
            SELECT e.record_id, e.ts, %1$s AS distance
              FROM user_data.%2$I AS e
             WHERE e.model = %3$L %4$s
               AND EXISTS (SELECT FROM user_data.%5$I AS r
                            WHERE r.user_id = e.user_id AND r.ts = e.ts AND r.id = e.record_id
                              AND ($4::jsonb IS NULL OR r.doc @> $4))
             ORDER BY %1$s
             LIMIT $5)
        SELECT n.record_id, n.ts, n.distance::double precision, r.doc
          FROM nearest AS n
          JOIN user_data.%5$I AS r ON r.ts = n.ts AND r.id = n.record_id
         ORDER BY n.distance, n.record_id$q$,
        v_dist, v_table, m.model, v_where, p_dataset)
    USING query, from_ts, to_ts, filter, k;
END
$$;
ALTER FUNCTION lake.similar(text, public.vector, integer, timestamptz, timestamptz, jsonb, text)
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.similar(text, public.vector, integer, timestamptz, timestamptz, jsonb,
                                    text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.similar(text, public.vector, integer, timestamptz, timestamptz,
                                       jsonb, text) TO lake_read, lake_admin;

COMMENT ON FUNCTION lake.similar(text, public.vector, integer, timestamptz, timestamptz, jsonb,
                                 text) IS
    'The session user''s k records nearest to a query vector (exact below the model''s '
    'exact_below vectors of theirs, else HNSW per month with an iterative scan under row-level '
    'security): id, ts, distance, doc. Users, services acting for one, administrators acting '
    'for one.';
