-- One row per ingest batch. Written in the same transaction as the batch's rows, so a batch is
-- either wholly recorded or not at all, and received = accepted + archived + quarantined always
-- holds.
CREATE TABLE lake.batches (
    -- Chosen by the client (an idempotency key: a retried batch is recognised, not duplicated),
    -- or derived from the transaction for plain INSERT/COPY by an application.
    id            uuid PRIMARY KEY,
    dataset       text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    -- The lake user whose data this is (NULL when an administrator loaded rows of many users).
    user_id       text,
    -- How the batch arrived: client (COPY by lake_client), sql (lake.ingest), insert (plain
    -- INSERT/COPY by an application), release (a quarantined record released).
    source        text NOT NULL CHECK (source IN ('client', 'sql', 'insert', 'release')),
    received      bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
    accepted      bigint NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    quarantined   bigint NOT NULL DEFAULT 0 CHECK (quarantined >= 0),
    -- Valid records older than the first month in the lake, written to their month's archive
    -- (lake_internal._archive_records) instead of a partition.
    archived      bigint NOT NULL DEFAULT 0 CHECK (archived >= 0),
    -- SHA-256 (hex) of what was received: the records one per line as sent by lake_client, or
    -- the jsonb text of the array given to lake.ingest. NULL for plain INSERT/COPY.
    checksum      text CHECK (checksum ~ '^[0-9a-f]{64}$'),
    -- Free-form origin, e.g. the file name given to `lake ingest`.
    origin        text,
    db_role       name NOT NULL DEFAULT session_user,
    client_addr   inet DEFAULT inet_client_addr(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The transaction that wrote the batch: rows may only be added to a batch from within it.
    xact_id       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- The version of the dataset's JSON Schema its records were judged by (lake.dataset_schemas):
    -- the one in force when they were counted (lake.evolve_schema waits for the batches in
    -- flight). NULL until records are counted.
    schema_version integer,
    CHECK (received = accepted + archived + quarantined)
);
CREATE INDEX batches_dataset_created_idx ON lake.batches (dataset, created_at);
ALTER TABLE lake.batches OWNER TO lake_owner;
GRANT SELECT ON lake.batches TO lake_admin;

COMMENT ON TABLE lake.batches IS
    'One row per ingest batch; received = accepted + archived + quarantined is a constraint.';

COMMENT ON COLUMN lake.batches.id IS
    'The batch id: the client''s idempotency key, or derived from the transaction.';
COMMENT ON COLUMN lake.batches.dataset IS 'The dataset the records were sent to.';
COMMENT ON COLUMN lake.batches.user_id IS
    'Whose records they are (NULL: an administrator loaded several users'' rows).';
COMMENT ON COLUMN lake.batches.source IS
    'How it arrived: client (COPY), sql (lake.ingest), insert (plain SQL), release.';
COMMENT ON COLUMN lake.batches.received IS 'Records received; always accepted + quarantined.';
COMMENT ON COLUMN lake.batches.accepted IS 'Records stored in the dataset.';
COMMENT ON COLUMN lake.batches.quarantined IS 'Records moved to lake.quarantine.';
COMMENT ON COLUMN lake.batches.archived IS
    'Valid records older than the first month in the lake, written to their month''s archive.';
COMMENT ON COLUMN lake.batches.schema_version IS
    'The version of the dataset''s JSON Schema its records were judged by (NULL: none yet).';
COMMENT ON COLUMN lake.batches.checksum IS
    'SHA-256 (hex) of what was received; NULL for plain INSERT/COPY.';
COMMENT ON COLUMN lake.batches.origin IS
    'Free-form origin, e.g. the file name given to lake ingest.';
COMMENT ON COLUMN lake.batches.db_role IS 'The database role that sent the batch.';
COMMENT ON COLUMN lake.batches.client_addr IS 'The client''s address (NULL over a Unix socket).';
COMMENT ON COLUMN lake.batches.created_at IS 'When the batch was opened.';
COMMENT ON COLUMN lake.batches.xact_id IS
    'The transaction that wrote the batch; only it may add rows.';
