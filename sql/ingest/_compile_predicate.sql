-- Compile a JSON Schema once into an SQL boolean expression over `doc` that is true only for
-- valid documents, so the validation trigger checks whole statements set-based. NULL when the
-- schema cannot be compiled soundly; then every row is checked by lake_internal._explain(). With
-- p_time_field, the predicate may also read the column ts (the time the lake read from that
-- field) to check its date-time format cheaply; every caller evaluates it where ts is in scope.
CREATE FUNCTION lake_internal._compile_predicate(p_schema jsonb, p_time_field text DEFAULT NULL)
RETURNS text
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_validate import compile_predicate
return compile_predicate(json.loads(p_schema), "doc", p_time_field, "ts")
$$;
REVOKE ALL ON FUNCTION lake_internal._compile_predicate(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._compile_predicate(jsonb, text) TO lake_owner;
