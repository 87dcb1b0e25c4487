-- Part of lake.create_dataset: who may see and change user_data.<name>. Row-level security
-- enabled and forced, the policy user_isolation (a user sees and writes only their own rows),
-- the lake's own bypass for lake_owner, the scope policies of API keys, and the grants. A part of
-- its own so that access rules have one home: the dataset's embeddings table (p_table,
-- lake.declare_embeddings) gets the same.
CREATE FUNCTION lake_internal._dataset_policies(p_name text, p_table text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := coalesce(p_table, p_name);
BEGIN
    PERFORM FROM lake.datasets WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lake_internal._dataset_policies: no dataset %', p_name;
    END IF;
    EXECUTE format('ALTER TABLE user_data.%I ENABLE ROW LEVEL SECURITY', v_table);
    EXECUTE format('ALTER TABLE user_data.%I FORCE ROW LEVEL SECURITY', v_table);
    EXECUTE format($pol$
        CREATE POLICY user_isolation ON user_data.%I AS PERMISSIVE FOR ALL TO PUBLIC
        USING (user_id = (SELECT lake.current_user_id()))
        WITH CHECK (user_id = (SELECT lake.current_user_id()))$pol$, v_table);
    -- The lake's own functions (running as lake_owner) decide ownership themselves.
    EXECUTE format($pol$
        CREATE POLICY lake_internal ON user_data.%I AS PERMISSIVE FOR ALL TO lake_owner
        USING (true) WITH CHECK (true)$pol$, v_table);
    -- The identity's scopes (its API key's): lake.current_user_id() is NULL without read, and
    -- writing needs write.
    EXECUTE format($pol$
        CREATE POLICY scope_insert ON user_data.%I AS RESTRICTIVE FOR INSERT
        TO lake_write, lake_admin WITH CHECK ((SELECT lake.has_scope('write')))$pol$, v_table);
    EXECUTE format($pol$
        CREATE POLICY scope_update ON user_data.%I AS RESTRICTIVE FOR UPDATE
        TO lake_write, lake_admin USING ((SELECT lake.has_scope('write')))$pol$, v_table);
    EXECUTE format($pol$
        CREATE POLICY scope_delete ON user_data.%I AS RESTRICTIVE FOR DELETE
        TO lake_write, lake_admin USING ((SELECT lake.has_scope('write')))$pol$, v_table);
    EXECUTE format('GRANT SELECT ON user_data.%I TO lake_read, lake_admin', v_table);
    -- Every column but xact_id, which only the lake sets (default, lake_internal._tg_row_version).
    EXECUTE format('GRANT INSERT (%2$s), UPDATE (%2$s), DELETE ON user_data.%1$I '
                   'TO lake_write, lake_admin', v_table,
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                      FROM pg_catalog.pg_attribute AS a
                     WHERE a.attrelid = format('user_data.%I', v_table)::regclass
                       AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'xact_id'));
END
$$;
ALTER FUNCTION lake_internal._dataset_policies(text, text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._dataset_policies(text, text) FROM PUBLIC;
