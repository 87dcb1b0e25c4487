-- Write one audit entry (jsonb, as lake_internal._audit_refusal makes it) to the audit spool, a
-- folder lake_audit_spool/<database oid> in the server's data directory (a backend's working
-- directory), as a file of its own: written, flushed and renamed into place, so it outlives the transaction that
-- wrote it, which is about to be rolled back (a refusal raises). lake_internal._audit_spooled
-- moves spooled entries into the audit log. Returns the file's name.
CREATE FUNCTION lake_internal._spool_write(p_entry jsonb)
RETURNS text
LANGUAGE plpython3u
VOLATILE
AS $$
import os
import uuid

# One folder per database (its oid): the spool is the cluster's, the audit log the database's.
db = plpy.execute(
    "SELECT d.oid::text AS oid FROM pg_catalog.pg_database AS d"
    " WHERE d.datname = pg_catalog.current_database()"
)[0]["oid"]
folder = os.path.join(os.getcwd(), "lake_audit_spool", db)
os.makedirs(folder, mode=0o700, exist_ok=True)
name = f"{uuid.uuid4()}.json"
tmp = os.path.join(folder, "." + name)
with open(tmp, "w", encoding="utf-8") as fh:
    fh.write(p_entry)
    fh.flush()
    os.fsync(fh.fileno())
os.rename(tmp, os.path.join(folder, name))
return name
$$;
REVOKE ALL ON FUNCTION lake_internal._spool_write(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._spool_write(jsonb) TO lake_owner;
