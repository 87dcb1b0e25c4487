-- Review decisions in bulk: release or discard every item awaiting a decision that matches the
-- filters (lake.quarantine_pending: dataset, batch, user, rule, received time). A dry run, the
-- default, changes nothing and reports what the same call with dry_run => false does; both run
-- the same code, the dry run inside a subtransaction that is rolled back (the partitions that
-- judging the records may make go with it). A call without any filter is refused unless
-- all_items => true.
--   release: each item by the one release (lake_internal._release), a thousand items at a time,
--            a batch per owner and dataset: stored, archived, or still invalid (it stays pending
--            with today's reasons); no_record (bytes that never parsed) and no_owner items need a
--            correction or a new ingest and stay pending.
--   discard: each item by lake.quarantine_discard; note is the reason, required.
-- Every decision is audited as the single ones are (quarantine.release, quarantine.discard), and
-- the call once (quarantine.decide, with its filters and counts). Returns a report: action,
-- dry_run, filter, items, outcomes (count per outcome), by_rule (per rule of the items' reasons
-- before the call and outcome: items), batches (the release batches), invalid (up to 5 items
-- still invalid: id, reasons).
CREATE FUNCTION lake.quarantine_decide(
    action text,
    dataset text DEFAULT NULL,
    batch_id uuid DEFAULT NULL,
    user_id text DEFAULT NULL,
    rule text DEFAULT NULL,
    received_from timestamptz DEFAULT NULL,
    received_before timestamptz DEFAULT NULL,
    dry_run boolean DEFAULT true,
    note text DEFAULT NULL,
    all_items boolean DEFAULT false
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The parameters' names are the documented API; the body uses these aliases.
    p_action ALIAS FOR action;
    p_dataset ALIAS FOR dataset;
    p_batch_id ALIAS FOR batch_id;
    p_user_id ALIAS FOR user_id;
    p_rule ALIAS FOR rule;
    p_from ALIAS FOR received_from;
    p_before ALIAS FOR received_before;
    p_dry_run ALIAS FOR dry_run;
    p_note ALIAS FOR note;
    p_all ALIAS FOR all_items;
    v_filter  jsonb;
    v_ids     bigint[];
    v_before  jsonb[];
    v_out     jsonb[] := '{}';  -- an array, not a jsonb array: appending stays cheap
    v_report  jsonb;
BEGIN
    IF p_action IS NULL OR p_action NOT IN ('release', 'discard') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK005',
            MESSAGE = format('action must be release or discard, not %s',
                             coalesce(quote_literal(left(p_action, 50)), 'NULL'));
    END IF;
    IF p_dry_run IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK005', MESSAGE = 'dry_run must be true or false';
    END IF;
    v_filter := jsonb_strip_nulls(jsonb_build_object(
        'dataset', p_dataset, 'batch_id', p_batch_id, 'user_id', p_user_id, 'rule', p_rule,
        'received_from', p_from, 'received_before', p_before));
    IF v_filter = '{}' AND NOT coalesce(p_all, false) THEN
        RAISE EXCEPTION USING ERRCODE = 'LK023',
            MESSAGE = 'a bulk decision needs a filter: dataset, batch_id, user_id, rule, '
                      'received_from or received_before',
            HINT = 'To decide on every item awaiting a decision, say all_items => true '
                   '(lake quarantine ... --all).';
    END IF;
    IF p_action = 'discard' AND (p_note IS NULL OR btrim(p_note) = '') THEN
        RAISE EXCEPTION USING ERRCODE = 'LK022',
            MESSAGE = 'a discard decision needs a reason: the note',
            HINT = 'lake.quarantine_decide(''discard'', ..., note => ''duplicate export'')';
    END IF;
    SELECT coalesce(array_agg(q.id ORDER BY q.id), '{}'),
           coalesce(array_agg(q.reasons ORDER BY q.id), '{}')
      INTO v_ids, v_before
      FROM lake.quarantine_pending(p_dataset, p_batch_id, p_user_id, p_rule, p_from, p_before)
           AS q;

    BEGIN
        FOR c IN 0 .. (cardinality(v_ids) - 1) / 1000 LOOP
            EXIT WHEN cardinality(v_ids) = 0;
            IF p_action = 'release' THEN
                v_out := v_out || ARRAY(
                    SELECT e.v
                      FROM jsonb_array_elements(lake_internal._release(
                               v_ids[c * 1000 + 1 : c * 1000 + 1000], NULL, p_note,
                               NOT p_dry_run)) WITH ORDINALITY AS e(v, o)
                     ORDER BY e.o);
            ELSE
                FOR i IN c * 1000 + 1 .. least(c * 1000 + 1000, cardinality(v_ids)) LOOP
                    IF NOT p_dry_run THEN
                        PERFORM lake.quarantine_discard(v_ids[i], p_note);
                    END IF;
                    v_out := v_out || jsonb_build_object(
                        'id', v_ids[i], 'outcome', 'discarded', 'reasons', '[]'::jsonb);
                END LOOP;
            END IF;
        END LOOP;
        IF p_dry_run THEN
            RAISE EXCEPTION USING ERRCODE = 'LK029', MESSAGE = 'dry run: undo';
        END IF;
    EXCEPTION WHEN SQLSTATE 'LK029' THEN
        NULL;  -- the dry run's work is undone; v_out keeps what it found
    END;

    SELECT jsonb_build_object(
               'action', p_action, 'dry_run', p_dry_run, 'filter', v_filter,
               'items', cardinality(v_ids),
               'outcomes', coalesce((SELECT jsonb_object_agg(o.outcome, o.n ORDER BY o.outcome)
                                       FROM (SELECT r ->> 'outcome' AS outcome, count(*) AS n
                                               FROM unnest(v_out) AS r
                                              GROUP BY 1) AS o), '{}'),
               'by_rule', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                               'rule', b.rule, 'outcome', b.outcome,
                                               'items', b.n) ORDER BY b.rule, b.outcome)
                                      FROM (SELECT w.rule, r.v ->> 'outcome' AS outcome,
                                                   count(*) AS n
                                              FROM unnest(v_out) WITH ORDINALITY AS r(v, o)
                                             CROSS JOIN LATERAL (
                                                   SELECT DISTINCT e ->> 'rule' AS rule
                                                     FROM jsonb_array_elements(v_before[r.o]) AS e
                                                   ) AS w
                                             GROUP BY 1, 2) AS b), '[]'),
               'batches', coalesce((SELECT jsonb_agg(DISTINCT r ->> 'batch_id')
                                      FROM unnest(v_out) AS r
                                     WHERE r ->> 'batch_id' IS NOT NULL), '[]'),
               'invalid', coalesce((SELECT jsonb_agg(x.v)
                                      FROM (SELECT jsonb_build_object('id', r -> 'id',
                                                                      'reasons', r -> 'reasons') AS v
                                              FROM unnest(v_out) AS r
                                             WHERE r ->> 'outcome' = 'invalid'
                                             LIMIT 5) AS x), '[]'))
      INTO v_report;
    IF NOT p_dry_run THEN
        PERFORM lake_internal._audit('quarantine.decide', coalesce(p_dataset, 'all datasets'),
                                     v_report - 'invalid' - 'by_rule' || jsonb_build_object(
                                         'note', p_note));
    END IF;
    RETURN v_report;
END
$$;
ALTER FUNCTION lake.quarantine_decide(text, text, uuid, text, text, timestamptz, timestamptz,
                                      boolean, text, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.quarantine_decide(text, text, uuid, text, text, timestamptz,
                                              timestamptz, boolean, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.quarantine_decide(text, text, uuid, text, text, timestamptz,
                                                 timestamptz, boolean, text, boolean)
    TO lake_admin;

COMMENT ON FUNCTION lake.quarantine_decide(text, text, uuid, text, text, timestamptz,
                                           timestamptz, boolean, text, boolean) IS
    'Release or discard in bulk the items awaiting a decision that match the filters; a dry run '
    '(the default) changes nothing and reports what the decision would do. Administrators.';
