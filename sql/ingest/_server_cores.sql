-- The CPU cores this server's processes may run on: those of its CPU affinity (a cpuset), fewer
-- when a cgroup v2 quota (a container's --cpus) allows less. In PL/Python because PostgreSQL
-- reports no core count of its own (max_worker_processes is a limit, not the hardware).
CREATE FUNCTION lake_internal._server_cores()
RETURNS integer
LANGUAGE plpython3u
STABLE
AS $$
import math
import os

cores = len(os.sched_getaffinity(0))
try:
    with open("/sys/fs/cgroup/cpu.max") as f:
        quota, period = f.read().split()
    if quota != "max":
        cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
except (OSError, ValueError):
    pass  # no cgroup v2 quota here
return cores
$$;
ALTER FUNCTION lake_internal._server_cores() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._server_cores() FROM PUBLIC;
