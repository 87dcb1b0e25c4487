-- The embedding models a dataset declares (lake.declare_embeddings): one row per dataset and
-- model, with the vectors' dimensions, the distance they are compared by, and how lake.similar
-- searches them (exactly, or pgvector's HNSW with its settings: see make bench-vectors).
CREATE TABLE lake.embedding_models (
    dataset         text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    -- The model's name as the service knows it, e.g. minilm_l6; a plain identifier-like name.
    model           text NOT NULL CHECK (model ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    -- pgvector's HNSW indexes vectors of up to 2000 dimensions.
    dimensions      integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    metric          text NOT NULL CHECK (metric IN ('cosine', 'l2', 'inner_product')),
    -- pgvector's distance operator and HNSW operator class of the metric: the one home of that
    -- mapping, so that the index (lake_internal._embedding_index) serves the search
    -- (lake.similar).
    operator        text NOT NULL GENERATED ALWAYS AS (
                        CASE metric WHEN 'cosine' THEN '<=>' WHEN 'l2' THEN '<->' ELSE '<#>' END
                    ) STORED,
    opclass         text NOT NULL GENERATED ALWAYS AS (
                        CASE metric WHEN 'cosine' THEN 'vector_cosine_ops'
                                    WHEN 'l2' THEN 'vector_l2_ops' ELSE 'vector_ip_ops' END
                    ) STORED,
    -- hnsw.ef_search, hnsw.iterative_scan and hnsw.max_scan_tuples of lake.similar.
    ef_search       integer NOT NULL DEFAULT 40 CHECK (ef_search BETWEEN 1 AND 1000),
    iterative_scan  text NOT NULL DEFAULT 'relaxed_order'
                    CHECK (iterative_scan IN ('off', 'relaxed_order', 'strict_order')),
    max_scan_tuples integer NOT NULL DEFAULT 20000 CHECK (max_scan_tuples >= 1),
    -- A caller with fewer vectors of the model than this (in the range asked) is searched
    -- exactly: their vectors read by the (user_id, model, ts) index and sorted. Where a user holds
    -- a small share of the rows, that is faster than walking the HNSW graph past everyone else's
    -- vectors, and its recall is 1 (make bench-vectors).
    exact_below     integer NOT NULL DEFAULT 50000 CHECK (exact_below >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, model)
);
ALTER TABLE lake.embedding_models OWNER TO lake_owner;
GRANT SELECT ON lake.embedding_models TO lake_admin, lake_read, lake_write;

COMMENT ON TABLE lake.embedding_models IS
    'The embedding models each dataset declares (lake.declare_embeddings): dimensions, metric '
    'and the search settings of lake.similar.';
COMMENT ON COLUMN lake.embedding_models.dataset IS 'The dataset whose records the vectors embed.';
COMMENT ON COLUMN lake.embedding_models.model IS 'The model''s name.';
COMMENT ON COLUMN lake.embedding_models.dimensions IS 'How many dimensions its vectors have.';
COMMENT ON COLUMN lake.embedding_models.metric IS
    'The distance of lake.similar and of its HNSW index: cosine, l2 or inner_product.';
COMMENT ON COLUMN lake.embedding_models.operator IS
    'pgvector''s distance operator of the metric (<=>, <->, <#>: the negative inner product).';
COMMENT ON COLUMN lake.embedding_models.opclass IS
    'pgvector''s HNSW operator class of the metric.';
COMMENT ON COLUMN lake.embedding_models.ef_search IS
    'hnsw.ef_search of lake.similar: the candidate list of the index scan.';
COMMENT ON COLUMN lake.embedding_models.iterative_scan IS
    'hnsw.iterative_scan of lake.similar: off, relaxed_order or strict_order.';
COMMENT ON COLUMN lake.embedding_models.max_scan_tuples IS
    'hnsw.max_scan_tuples of lake.similar: where an iterative scan gives up.';
COMMENT ON COLUMN lake.embedding_models.exact_below IS
    'lake.similar searches a caller with fewer vectors than this exactly (no HNSW); 0: never.';
COMMENT ON COLUMN lake.embedding_models.created_at IS 'When the model was declared.';
