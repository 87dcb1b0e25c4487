-- Add one step's result to the report of lake.apply_retention (which, being a procedure that
-- commits, can have no pinned search_path, so its own body only calls lake functions):
--   p_step from lake_internal._apply_tiers: tiers_changed, moved, its errors;
--   p_step from lake_internal._retire_month: the month's report in months, counted when
--     dropped (and archived when an archive was written); kept (held, busy, kept) or errors
--     (failed);
--   p_step {"step": …, "error": …} (a caught exception): errors;
--   p_purged: how many archives lake.purge_archives deleted.
-- With p_report NULL, the empty report as of p_now. Every failure, and every month kept because
-- its table stayed locked, is also listed in the report's top-level errors, tagged with its
-- dataset: one place for a job runner to look (lake.run_maintenance marks such a run failed).
CREATE FUNCTION lake_internal._retention_add(p_report jsonb, p_now timestamptz, p_dataset text,
                                    p_step jsonb, p_purged integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r  jsonb := coalesce(p_report, jsonb_build_object('now', p_now, 'datasets', '{}'::jsonb,
                                                      'purged', 0, 'errors', '[]'::jsonb));
    d  jsonb;
    e  jsonb := '[]';  -- what goes to the top-level errors
BEGIN
    IF p_purged IS NOT NULL THEN
        r := jsonb_set(r, '{purged}', to_jsonb(p_purged));
    END IF;
    IF p_step IS NULL THEN
        RETURN r;
    END IF;
    IF p_dataset IS NULL THEN
        RETURN jsonb_set(r, '{errors}', (r -> 'errors') || p_step);
    END IF;
    d := coalesce(r -> 'datasets' -> p_dataset,
                  jsonb_build_object('tiers_changed', 0, 'moved', 0,
                                     'archived', 0, 'dropped', 0, 'rows_dropped', 0,
                                     'archive_ms', 0, 'drop_ms', 0, 'months', '[]'::jsonb,
                                     'kept', '[]'::jsonb, 'errors', '[]'::jsonb));
    IF p_step ? 'tiers_changed' THEN
        d := d || (p_step - 'errors')
             || jsonb_build_object('errors', (d -> 'errors') || (p_step -> 'errors'));
        e := coalesce((SELECT jsonb_agg(x || jsonb_build_object('step', 'tiers'))
                         FROM jsonb_array_elements(p_step -> 'errors') AS x), '[]');
    ELSIF p_step ? 'step' THEN
        d := jsonb_set(d, '{errors}', (d -> 'errors') || p_step);
        e := jsonb_build_array(p_step);
    ELSIF p_step ->> 'action' = 'none' THEN
        NULL;
    ELSE
        d := jsonb_set(d, '{months}', (d -> 'months') || p_step);
        CASE p_step ->> 'action'
            WHEN 'dropped' THEN
                d := d || jsonb_build_object(
                    'dropped', (d ->> 'dropped')::integer + 1,
                    'archived', (d ->> 'archived')::integer
                                + CASE WHEN p_step ->> 'archive' = 'written' THEN 1 ELSE 0 END,
                    'rows_dropped', (d ->> 'rows_dropped')::bigint + (p_step ->> 'rows')::bigint,
                    'archive_ms', (d ->> 'archive_ms')::numeric
                                  + (p_step ->> 'archive_ms')::numeric,
                    'drop_ms', (d ->> 'drop_ms')::numeric + (p_step ->> 'drop_ms')::numeric);
            WHEN 'failed' THEN
                d := jsonb_set(d, '{errors}', (d -> 'errors') || p_step);
                e := jsonb_build_array(p_step);
            ELSE
                d := jsonb_set(d, '{kept}', (d -> 'kept') || p_step);
                IF p_step ->> 'action' = 'kept' THEN  -- not held or busy: those are normal
                    e := jsonb_build_array(p_step);
                END IF;
        END CASE;
    END IF;
    r := jsonb_set(r, '{errors}', (r -> 'errors')
                   || coalesce((SELECT jsonb_agg(jsonb_build_object('dataset', p_dataset) || x)
                                  FROM jsonb_array_elements(e) AS x), '[]'));
    RETURN jsonb_set(r, ARRAY['datasets', p_dataset], d);
END
$$;
ALTER FUNCTION lake_internal._retention_add(jsonb, timestamptz, text, jsonb, integer) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._retention_add(jsonb, timestamptz, text, jsonb, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._retention_add(jsonb, timestamptz, text, jsonb, integer)
    TO lake_admin;
