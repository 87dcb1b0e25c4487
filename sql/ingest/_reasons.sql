-- Full reasons for a set of suspect records (those the pass test lake_internal._passes_sql did
-- not clear): the lake's checks against the same limits plus the JSON Schema's (from PL/Python,
-- which has the final word on the schema). Records too large or too deep are not handed to
-- PL/Python at all. An empty array for a record means it is valid after all.
CREATE FUNCTION lake_internal._reasons(
    lim lake_internal.limits,
    p_schema lake.dataset_schemas,
    p_user_ids text[],
    p_tss timestamptz[],
    p_docs jsonb[]
)
RETURNS jsonb[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_out     jsonb[];
    v_idx     integer[];
    v_docs    jsonb[];
    v_schema  jsonb[];
BEGIN
    v_out := ARRAY(SELECT lake_internal._lake_reasons(lim, x.u, x.t, x.d)
                     FROM unnest(p_user_ids, p_tss, p_docs) WITH ORDINALITY AS x(u, t, d, o)
                    ORDER BY x.o);
    SELECT array_agg(x.o ORDER BY x.o), array_agg(x.d ORDER BY x.o)
      INTO v_idx, v_docs
      FROM unnest(p_docs, v_out) WITH ORDINALITY AS x(d, r, o)
     WHERE NOT x.r @> '[{"rule": "too_large"}]' AND NOT x.r @> '[{"rule": "too_deep"}]';
    IF v_docs IS NOT NULL THEN
        v_schema := lake_internal._explain(lim.dataset || ':' || p_schema.version, p_schema.json_schema, v_docs);
        FOR i IN 1 .. cardinality(v_idx) LOOP
            v_out[v_idx[i]] := v_out[v_idx[i]] || v_schema[i];
        END LOOP;
    END IF;
    RETURN v_out;
END
$$;
ALTER FUNCTION lake_internal._reasons(lake_internal.limits, lake.dataset_schemas, text[], timestamptz[], jsonb[])
    OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._reasons(lake_internal.limits, lake.dataset_schemas, text[], timestamptz[], jsonb[])
    FROM PUBLIC;
