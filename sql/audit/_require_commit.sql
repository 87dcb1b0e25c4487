-- Called by lake_internal._tg_batch_commit before it records a batch: refuses unless the
-- transaction is committing. It is a deferred constraint trigger, and SET CONSTRAINTS ...
-- IMMEDIATE, which any session may run, would make it run at the end of a statement, recording
-- the batch (its audit entry, its change event) before its counts are final. No SQL function tells
-- commit from statement end; the mode does: every commit-time trigger of the lake is named
-- at_commit, and so is a probe trigger that runs at once exactly when they are IMMEDIATE (SET
-- CONSTRAINTS sets every constraint of a name in the schema alike). Only deferred triggers run at
-- commit. (The probe locks nothing shared: lake.seal_probe holds one row per committing
-- transaction, keyed by its own id.)
CREATE FUNCTION lake_internal._require_commit()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- This transaction's probe row: an earlier call at this commit found the triggers deferred
    -- (the probe deletes it when it runs, later in the same commit).
    IF EXISTS (SELECT FROM lake.seal_probe WHERE xact_id = pg_current_xact_id()) THEN
        RETURN;
    END IF;
    PERFORM set_config('lake.seal_early', 'off', true);
    INSERT INTO lake.seal_probe DEFAULT VALUES;
    IF current_setting('lake.seal_early') = 'on' THEN
        RAISE EXCEPTION USING ERRCODE = 'LK051',
            MESSAGE = 'the lake''s commit-time triggers (at_commit) must stay deferred',
            HINT = 'Do not make them IMMEDIATE: name your own constraints in SET CONSTRAINTS'
                   ' rather than ALL, or SET CONSTRAINTS ALL DEFERRED before writing to the lake.'
                   ' Run early, they would record batches before their counts are final.';
    END IF;
END
$$;
ALTER FUNCTION lake_internal._require_commit() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._require_commit() FROM PUBLIC;
