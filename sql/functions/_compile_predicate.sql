-- Compile a JSON Schema once into an SQL boolean expression over `doc` that is true only for
-- valid documents, so the validation trigger checks whole statements set-based. NULL when the
-- schema cannot be compiled soundly; then every row is checked by lake._explain().
CREATE FUNCTION lake._compile_predicate(p_schema jsonb)
RETURNS text
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake._plpy_bootstrap()")
import json
from lake_validate import compile_predicate
return compile_predicate(json.loads(p_schema), "doc")
$$;
REVOKE ALL ON FUNCTION lake._compile_predicate(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake._compile_predicate(jsonb) TO lake_owner;
