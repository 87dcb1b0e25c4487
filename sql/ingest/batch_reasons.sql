-- Why records of the given batches were quarantined: each rule with its count and one example
-- message. Users see their own batches; administrators see all.
CREATE FUNCTION lake.batch_reasons(batch_ids uuid[])
RETURNS TABLE (rule text, records bigint, example text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r ->> 'rule', count(DISTINCT q.id), min(r ->> 'message')
      FROM lake.quarantine AS q
      JOIN lake.batches AS b ON b.id = q.batch_id
     CROSS JOIN LATERAL jsonb_array_elements(q.reasons) AS r
     WHERE q.batch_id = ANY (batch_reasons.batch_ids)
       AND (b.user_id = (SELECT i.user_id FROM lake_internal._identity() AS i)
            OR pg_has_role(session_user, 'lake_admin', 'MEMBER'))
     GROUP BY 1
     ORDER BY 2 DESC, 1
$$;
ALTER FUNCTION lake.batch_reasons(uuid[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.batch_reasons(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.batch_reasons(uuid[]) TO lake_admin, lake_write;

COMMENT ON FUNCTION lake.batch_reasons(uuid[]) IS
    'Why records of these batches were quarantined: rule, count, an example.';
