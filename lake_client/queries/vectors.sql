-- SQL of lake_client.vectors: embeddings in, nearest records out ("-- name: <name>" blocks).

-- name: embeddings_staging
-- Where a batch's vectors land by binary COPY before lake.put_embeddings judges and stores them;
-- n keeps the order sent (the last vector of an id sent twice wins). Emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS lake_embeddings_in (
    n         bigint GENERATED ALWAYS AS IDENTITY,
    record_id bigint,
    embedding public.vector
) ON COMMIT DELETE ROWS

-- name: embeddings_copy
COPY pg_temp.lake_embeddings_in (record_id, embedding) FROM STDIN WITH (FORMAT BINARY)

-- name: embeddings_put_staged
SELECT lake.put_embeddings(%(dataset)s, %(model)s,
                           coalesce(array_agg(record_id ORDER BY n), '{}'),
                           coalesce(array_agg(embedding ORDER BY n), '{}')) AS written
  FROM pg_temp.lake_embeddings_in

-- name: embedding_models
SELECT dataset, model, dimensions, metric, ef_search, iterative_scan, max_scan_tuples,
       exact_below, created_at
  FROM lake.embedding_models
 WHERE %(dataset)s::text IS NULL OR dataset = %(dataset)s
 ORDER BY dataset, model

-- name: declare_embeddings
SELECT dataset, model, dimensions, metric, ef_search, iterative_scan, max_scan_tuples, exact_below
  FROM lake.declare_embeddings(%(dataset)s, %(model)s, %(dimensions)s, %(metric)s,
                               %(ef_search)s, %(iterative_scan)s, %(max_scan_tuples)s,
                               %(exact_below)s)

-- name: similar
-- ts as RFC 3339 text, so that a result is the same JSON whether it comes from here or Redis.
SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts, distance, doc
  FROM lake.similar(%(dataset)s, %(query)s::public.vector, %(k)s, %(from_ts)s, %(to_ts)s,
                    %(filter)s, %(model)s)
