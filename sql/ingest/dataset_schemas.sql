-- Every version of every dataset's JSON Schema, with the SQL predicate compiled from it once.
CREATE TABLE lake.dataset_schemas (
    dataset     text NOT NULL REFERENCES lake.datasets (name) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    json_schema jsonb NOT NULL,
    -- SQL boolean expression over `doc`, true only for valid documents; NULL when the schema
    -- uses keywords that cannot be compiled soundly (then PL/Python checks every row).
    predicate   text,
    -- Top-level fields the schema keeps free of personal identifiers (booleans, bounded numbers,
    -- enums, dates and times...), which the PII scan skips (lake_internal._pii_clear_fields).
    pii_clear   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  name NOT NULL DEFAULT session_user,
    PRIMARY KEY (dataset, version)
);
ALTER TABLE lake.dataset_schemas OWNER TO lake_owner;
GRANT SELECT ON lake.dataset_schemas TO lake_admin, lake_read, lake_write;

COMMENT ON TABLE lake.dataset_schemas IS
    'Versions of each dataset''s JSON Schema and the SQL predicate compiled from each.';

COMMENT ON COLUMN lake.dataset_schemas.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.dataset_schemas.version IS
    'The schema''s version (1, 2, ...); lake.datasets.schema_version is in force.';
COMMENT ON COLUMN lake.dataset_schemas.json_schema IS 'The JSON Schema (draft-07) as given.';
COMMENT ON COLUMN lake.dataset_schemas.predicate IS
    'SQL boolean expression over doc compiled from it; NULL: PL/Python checks each row.';
COMMENT ON COLUMN lake.dataset_schemas.pii_clear IS
    'Top-level fields the schema keeps free of personal identifiers (not scanned).';
COMMENT ON COLUMN lake.dataset_schemas.created_at IS 'When the version was registered.';
COMMENT ON COLUMN lake.dataset_schemas.created_by IS 'The database role that registered it.';
