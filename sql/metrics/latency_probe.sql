-- One row that lake.storage_latency() writes and reads back to measure PostgreSQL's latency.
CREATE TABLE lake_internal.latency_probe (
    id         integer PRIMARY KEY CHECK (id = 1),
    written_at timestamptz NOT NULL
);
ALTER TABLE lake_internal.latency_probe OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.latency_probe IS
    'The row lake.storage_latency() writes and reads to measure PostgreSQL''s latency.';
COMMENT ON COLUMN lake_internal.latency_probe.id IS 'Always 1.';
COMMENT ON COLUMN lake_internal.latency_probe.written_at IS 'When it was last written.';
