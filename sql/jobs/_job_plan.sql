-- The jobs lake.run_maintenance(p_job) runs, in order: p_job alone, or every job that runs inside
-- the procedure when p_job is NULL. `commits`: the job commits as it goes (retention) and so
-- cannot run in a subtransaction. Raises for an unknown job and for a statement job.
CREATE FUNCTION lake_internal._job_plan(p_job text)
RETURNS TABLE (job text, commits boolean)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d lake.job_defs;
BEGIN
    IF p_job IS NOT NULL THEN
        SELECT * INTO d FROM lake.job_defs WHERE name = p_job;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'LK080',
                MESSAGE = format('no lake job %L', p_job),
                HINT = 'Jobs: ' || (SELECT string_agg(name, ', ' ORDER BY position)
                                      FROM lake.job_defs) || '.';
        END IF;
        IF d.kind = 'statement' THEN
            RAISE EXCEPTION USING ERRCODE = 'LK081',
                MESSAGE = format('job %L cannot run inside a procedure', p_job),
                HINT = format('Run its command outside a transaction block: %s (or: lake jobs run %s).',
                              d.command, p_job);
        END IF;
    END IF;
    RETURN QUERY
        SELECT j.name, j.name = 'retention'
          FROM lake.job_defs AS j
         WHERE j.kind = 'procedure' AND (p_job IS NULL OR j.name = p_job)
         ORDER BY j.position;
END
$$;
ALTER FUNCTION lake_internal._job_plan(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._job_plan(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._job_plan(text) TO lake_admin;
