-- A statement's source records converted into the dataset's records by its source format, in
-- order, in one call, without their times (lake_internal._convert_timed, which the ingest paths
-- call, says how).
CREATE FUNCTION lake_internal._convert(p_format text, p_docs jsonb[])
RETURNS jsonb[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.docs FROM lake_internal._convert_timed(p_format, p_docs, NULL, NULL) AS c
$$;
ALTER FUNCTION lake_internal._convert(text, jsonb[]) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._convert(text, jsonb[]) FROM PUBLIC;
