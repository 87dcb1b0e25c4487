-- Where each bridge (lake bridge --name) has got to in lake.data_changes: it advances only after
-- Redis accepted the work for every change up to last_id, so a bridge that stops for any reason
-- resumes after the last change it finished (at least once, never a gap).
CREATE TABLE lake.bridge_cursors (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    last_id     bigint NOT NULL DEFAULT 0 CHECK (last_id >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE lake.bridge_cursors OWNER TO lake_owner;
GRANT SELECT ON lake.bridge_cursors TO lake_admin;

COMMENT ON TABLE lake.bridge_cursors IS
    'Where each bridge (lake bridge --name) has got to in lake.data_changes.';
COMMENT ON COLUMN lake.bridge_cursors.name IS 'The bridge''s name (lake bridge --name).';
COMMENT ON COLUMN lake.bridge_cursors.last_id IS
    'The last lake.data_changes id the bridge finished; it resumes after it.';
COMMENT ON COLUMN lake.bridge_cursors.updated_at IS 'When the cursor last moved.';
