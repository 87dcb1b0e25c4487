-- The audit spool's entries (lake_internal._spool_write), oldest first, each with its file's
-- name; with p_remove, those files are deleted instead (lake_internal._audit_spooled deletes a
-- file only once its entry is in the audit log).
CREATE FUNCTION lake_internal._spool_files(p_remove text[] DEFAULT NULL)
RETURNS TABLE (name text, entry jsonb)
LANGUAGE plpython3u
VOLATILE
AS $$
import os

# One folder per database (its oid): the spool is the cluster's, the audit log the database's.
db = plpy.execute(
    "SELECT d.oid::text AS oid FROM pg_catalog.pg_database AS d"
    " WHERE d.datname = pg_catalog.current_database()"
)[0]["oid"]
folder = os.path.join(os.getcwd(), "lake_audit_spool", db)
if p_remove is not None:
    for gone in p_remove:
        if "/" not in gone and not gone.startswith("."):
            try:
                os.remove(os.path.join(folder, gone))
            except FileNotFoundError:
                pass
    return []
try:
    names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
except FileNotFoundError:
    return []
out = []
for n in names:
    with open(os.path.join(folder, n), encoding="utf-8") as fh:
        out.append((os.path.getmtime(os.path.join(folder, n)), n, fh.read()))
return [(n, text) for _, n, text in sorted(out)]
$$;
REVOKE ALL ON FUNCTION lake_internal._spool_files(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._spool_files(text[]) TO lake_owner;
