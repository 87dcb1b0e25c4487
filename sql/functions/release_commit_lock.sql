-- End the sessions that keep every other writer from committing: those that hold the lake's
-- commit lock (the row of lake.audit_head, which sealing audit entries and changes locks until
-- the transaction ends) while idle in their transaction for at least p_idle, with a writer
-- waiting for it. The seals run at commit, where no session is ever idle, unless a client makes
-- them run early with SET CONSTRAINTS ... IMMEDIATE: its transaction then holds the lock until it
-- ends, and the others' COMMITs wait (statement_timeout does not apply during a commit). Each
-- session ended is logged and audited ('session.ended'); returns them. Run every minute by the
-- job commit_lock (as the superuser pg_cron runs jobs as): superusers only, since it reads and
-- ends other roles' sessions.
--   SELECT * FROM lake.release_commit_lock();
CREATE FUNCTION lake.release_commit_lock(p_idle interval DEFAULT '30 seconds')
RETURNS TABLE (pid integer, usename name, application_name text, client_addr inet,
               idle_for interval, ended boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT a.pid, a.usename, a.application_name, a.client_addr,
               now() - a.state_change AS idle_for
          FROM pg_stat_activity AS a
         WHERE a.state = 'idle in transaction'
           AND a.state_change <= now() - p_idle
           -- Blocking a session that waits for the lock (holds or awaits its tuple lock).
           AND a.pid IN (SELECT unnest(pg_blocking_pids(l.pid))
                           FROM pg_locks AS l
                          WHERE l.locktype = 'tuple'
                            AND l.database = (SELECT d.oid FROM pg_database AS d
                                               WHERE d.datname = current_database())
                            AND l.relation = 'lake.audit_head'::regclass)
    LOOP
        pid := r.pid;
        usename := r.usename;
        application_name := r.application_name;
        client_addr := r.client_addr;
        idle_for := r.idle_for;
        ended := pg_terminate_backend(r.pid, 5000);  -- waits up to 5 s for it to be gone
        RAISE WARNING 'lake: ended session % (%, %) idle % in a transaction holding the commit lock',
            r.pid, r.usename, coalesce(r.application_name, ''), r.idle_for
            USING HINT = 'SET CONSTRAINTS ... IMMEDIATE makes the lake''s commit triggers run early;'
                         ' commit soon after writing, or leave the constraints deferred.';
        PERFORM lake._audit('session.ended', r.usename::text,
                            jsonb_build_object('pid', r.pid, 'application', r.application_name,
                                               'client_addr', r.client_addr,
                                               'idle_seconds', extract(epoch FROM r.idle_for),
                                               'ended', ended,
                                               'why', 'idle in a transaction holding the commit lock'));
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION lake.release_commit_lock(interval) FROM PUBLIC;
