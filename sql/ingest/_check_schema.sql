-- Problems with a dataset's JSON Schema (empty when it is usable): not draft-07, not an object
-- schema, invalid against the metaschema.
CREATE FUNCTION lake_internal._check_schema(p_schema jsonb)
RETURNS text[]
LANGUAGE plpython3u
IMMUTABLE
AS $$
if "lake_ready" not in GD:
    plpy.execute("SELECT lake_internal._plpy_bootstrap()")
import json
from lake_validate import check_schema
return check_schema(json.loads(p_schema))
$$;
REVOKE ALL ON FUNCTION lake_internal._check_schema(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._check_schema(jsonb) TO lake_owner;
