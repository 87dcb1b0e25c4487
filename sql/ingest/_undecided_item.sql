-- The quarantine item p_id, locked for a review decision; raises if there is none or if it was
-- decided already (released, corrected and discarded items are final).
CREATE FUNCTION lake_internal._undecided_item(p_id bigint)
RETURNS lake.quarantine
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q lake.quarantine;
BEGIN
    SELECT * INTO q FROM lake.quarantine WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LK020', MESSAGE = format('no quarantine item %s', p_id);
    END IF;
    IF q.status NOT IN ('pending', 'expired') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK021',
            MESSAGE = format('quarantine item %s was already %s at %s by %s',
                             p_id, q.status, q.decided_at, q.decided_by);
    END IF;
    RETURN q;
END
$$;
ALTER FUNCTION lake_internal._undecided_item(bigint) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._undecided_item(bigint) FROM PUBLIC;
