-- Append one entry to the audit log and return its id. Who and how come from the session:
-- the login role, the lake user and acting service (lake._identity()), the client address
-- and application name. Locks the chain's head (lake.audit_head) until the transaction ends:
-- concurrent appenders queue there, so ids follow one another and every entry links to the
-- previous one. Makes the month's partition when it is missing.
CREATE FUNCTION lake._audit(
    p_action text,
    p_object text,
    p_detail jsonb DEFAULT NULL,
    p_before jsonb DEFAULT NULL,
    p_after jsonb DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    h      lake.audit_head;
    e      lake.audit_log;
    v_part text;
    v_from timestamptz;
    v_me   record;
    v_hash bytea;
BEGIN
    SELECT * INTO STRICT h FROM lake.audit_head FOR UPDATE;
    SELECT i.user_id, i.service INTO v_me FROM lake._identity() AS i;
    e := ROW(h.last_id + 1, clock_timestamp(), p_action, p_object, session_user, v_me.user_id,
             v_me.service, inet_client_addr(), nullif(current_setting('application_name'), ''),
             pg_current_xact_id(), p_detail, p_before, p_after, h.last_hash,
             NULL)::lake.audit_log;

    v_from := date_trunc('month', e.at);
    v_part := 'audit_log_p' || to_char(v_from, 'YYYY_MM');
    IF to_regclass(format('lake.%I', v_part)) IS NULL THEN
        EXECUTE format('CREATE TABLE lake.%I PARTITION OF lake.audit_log FOR VALUES FROM (%L) TO (%L)',
                       v_part, v_from, v_from + interval '1 month');
    END IF;
    v_hash := lake._audit_hash(e);
    INSERT INTO lake.audit_log
    VALUES (e.id, e.at, e.action, e.object, e.db_role, e.lake_user, e.service, e.client_addr,
            e.application, e.xact_id, e.detail, e.before, e.after, e.prev_hash, v_hash);
    UPDATE lake.audit_head SET last_id = e.id, last_hash = v_hash;
    RETURN e.id;
END
$$;
ALTER FUNCTION lake._audit(text, text, jsonb, jsonb, jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake._audit(text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
