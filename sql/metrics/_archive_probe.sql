-- Write a small file under the archive folder, fsync it, read it back and delete it: the
-- seconds of the write and of the read (the archive tier of storage_latency_seconds). NULLs
-- while the folder does not exist (no archive yet): a scrape does not create it.
CREATE FUNCTION lake_internal._archive_probe(p_root text, OUT write_s float8, OUT read_s float8)
LANGUAGE plpython3u
VOLATILE
AS $$
import os
import time

if not os.path.isdir(p_root):
    return (None, None)
path = os.path.join(p_root, f".latency-probe-{os.getpid()}")
payload = os.urandom(4096)
t0 = time.perf_counter()
with open(path, "wb") as f:
    f.write(payload)
    f.flush()
    os.fsync(f.fileno())
t1 = time.perf_counter()
try:
    with open(path, "rb") as f:
        f.read()
    t2 = time.perf_counter()
finally:
    os.unlink(path)
return (t1 - t0, t2 - t1)
$$;
REVOKE ALL ON FUNCTION lake_internal._archive_probe(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._archive_probe(text) TO lake_owner;
