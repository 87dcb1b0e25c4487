-- The records of a dataset with their pii_fields in clear, for members of lake_pii_reader: the
-- session's own user's records (lake.current_user_id()), or any user's for a reader who is also
-- a lake administrator. Records of others are left out. Every call is audited with the ids.
CREATE FUNCTION lake.pii_reveal(dataset text, ids bigint[])
RETURNS TABLE (id bigint, user_id text, doc jsonb)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_dataset ALIAS FOR dataset;
    p_ids ALIAS FOR ids;
    v_admin boolean := pg_has_role(session_user, 'lake_admin', 'MEMBER');
    v_user  text := lake.current_user_id();
BEGIN
    IF NOT pg_has_role(session_user, 'lake_pii_reader', 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK015',
            MESSAGE = 'only members of lake_pii_reader may see personal identifiers in clear';
    END IF;
    IF NOT EXISTS (SELECT FROM lake.datasets AS d WHERE d.name = p_dataset) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK003',
            MESSAGE = format('dataset %L does not exist', left(p_dataset, 100));
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT t.id, t.user_id::text, lake_internal._pii_open(t.doc, t.pii)
          FROM user_data.%I AS t
         WHERE t.id = ANY ($1) AND ($2 OR t.user_id = $3)
         ORDER BY t.id$q$, p_dataset)
    USING p_ids, v_admin, v_user;
    PERFORM lake_internal._audit('pii.decrypt', p_dataset,
                        jsonb_build_object('ids', to_jsonb(p_ids), 'for_user', v_user,
                                           'as_admin', v_admin));
END
$$;
ALTER FUNCTION lake.pii_reveal(text, bigint[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.pii_reveal(text, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.pii_reveal(text, bigint[]) TO lake_pii_reader;

COMMENT ON FUNCTION lake.pii_reveal(text, bigint[]) IS
    'Records of a dataset with their pii_fields in clear, for lake_pii_reader members. Audited.';
