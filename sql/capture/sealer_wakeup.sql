-- One row: whether a sealer (the bridge) is idle and waiting to be woken. The bridge sets armed
-- when it runs out of work and clears it when woken; a writer's capture trigger reads it (a plain
-- read, no lock) and sends NOTIFY lake_seal only when it is set. So under load, while the bridge is
-- busy anyway, commits send no NOTIFY, whose database-wide lock at commit would serialise them.
-- Logged: an unlogged table would come back empty after a crash.
CREATE TABLE lake_internal.sealer_wakeup (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    armed      boolean NOT NULL DEFAULT false,
    -- The bridge's backend that raised it: lake.seal() lowers a flag whose bridge is gone (killed
    -- while idle), so writers do not go on sending NOTIFYs no one waits for.
    pid        integer
);
INSERT INTO lake_internal.sealer_wakeup DEFAULT VALUES;
ALTER TABLE lake_internal.sealer_wakeup OWNER TO lake_owner;
