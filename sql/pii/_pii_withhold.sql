-- Reasons about a dataset's pii_fields lose their messages, which may quote the value: the one
-- rule for the quarantine (lake_internal._tg_quarantine_pii) and the examples of a dry run
-- (lake.evolve_schema), so that no one reads a sealed field in clear without lake.pii_reveal.
CREATE FUNCTION lake_internal._pii_withhold(p_fields text[], p_reasons jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(CASE
               WHEN EXISTS (SELECT FROM unnest(p_fields) AS f
                             WHERE x.r ->> 'path' = '$.' || f
                                OR starts_with(x.r ->> 'path', '$.' || f || '.')
                                OR starts_with(x.r ->> 'path', '$.' || f || '['))
               THEN x.r || jsonb_build_object('message', 'withheld: the field holds personal data')
               ELSE x.r END ORDER BY x.o), '[]')
      FROM jsonb_array_elements(p_reasons) WITH ORDINALITY AS x(r, o)
$$;
ALTER FUNCTION lake_internal._pii_withhold(text[], jsonb) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._pii_withhold(text[], jsonb) FROM PUBLIC;
