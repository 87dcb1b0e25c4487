-- The last id given to a change in lake.data_changes. Only the sealer (lake.seal()) reads and moves
-- it, one at a time, so ids are contiguous and never reused, even after the purge_changes job has
-- deleted every change.
CREATE TABLE lake_internal.change_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id    bigint NOT NULL CHECK (last_id >= 0)
);
INSERT INTO lake_internal.change_head (last_id) VALUES (0);
ALTER TABLE lake_internal.change_head OWNER TO lake_owner;
