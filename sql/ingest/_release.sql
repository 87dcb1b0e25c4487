-- The one home of a quarantine release, for lake.quarantine_release (one item, refused when it
-- is still invalid), lake.quarantine_correct (one item and its correction) and
-- lake.quarantine_decide (many). Each item, locked (lake_internal._undecided_item), is judged
-- as its record (pii_fields opened) or its correction (p_corrected[i]: a pii_field left as its
-- mask keeps the value sent, lake_internal._pii_corrected) by the rules of every ingest:
-- lake_internal._ingest_docs in its judge-only mode, per owner and dataset. With p_apply, the
-- valid ones of an owner and dataset go in as one batch of their own (source release, refs
-- "quarantine <id>"), by the same function, stored in their month (cold or not) or added to
-- their month's archive; each such item is marked released (corrected, for a correction) with
-- the batch, and audited (quarantine.release). An item still invalid stays pending; when its own
-- record was judged, its reasons become today's (the schema may have changed); a correction
-- that fails leaves the item as it is (its reasons describe its record). Without p_apply it only
-- judges (the partitions the records need may be made: a dry run undoes them).
-- Returns one object per item, in the order given:
--   {"id", "outcome": stored | archived | invalid | no_record | no_owner, "reasons", "batch_id"}
-- no_record: the item holds bytes that never parsed, and no correction was given; no_owner: the
-- item has no owner (ingest the record again for its owner and discard the item).
CREATE FUNCTION lake_internal._release(p_ids bigint[], p_corrected jsonb[], p_note text,
                                       p_apply boolean)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_items   lake.quarantine[] := '{}';
    v_docs    jsonb[] := '{}';
    v_out     jsonb[] := '{}';
    q         lake.quarantine;
    g         record;
    ds        lake.datasets;
    v_judged  record;
    v_idx     integer[];
    v_go      integer[];
    v_batch   lake.batches;
    i         integer;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
        q := lake_internal._undecided_item(p_ids[i]);
        v_items := v_items || q;
        v_docs := v_docs || CASE
            WHEN p_corrected[i] IS NOT NULL
                THEN lake_internal._pii_corrected(p_corrected[i], q.doc, q.pii)
            ELSE lake_internal._pii_open(q.doc, q.pii) END;
        v_out := v_out || jsonb_build_object(
            'id', q.id,
            'outcome', CASE WHEN v_docs[i] IS NULL THEN 'no_record'
                            WHEN q.user_id IS NULL THEN 'no_owner' END,
            'reasons', '[]'::jsonb, 'batch_id', NULL);
    END LOOP;

    FOR g IN
        SELECT (v_items[x.n]).dataset AS dataset, (v_items[x.n]).user_id AS user_id,
               array_agg(x.n ORDER BY x.n) AS idx
          FROM generate_series(1, cardinality(v_items)) AS x(n)
         WHERE v_out[x.n] ->> 'outcome' IS NULL
         GROUP BY 1, 2
         ORDER BY 1, 2
    LOOP
        SELECT * INTO ds FROM lake.datasets WHERE name = g.dataset;
        v_idx := g.idx;
        SELECT * INTO v_judged FROM lake_internal._ingest_docs(
            ds.name, NULL, g.user_id,
            ARRAY(SELECT 'quarantine ' || (v_items[x.n]).id FROM unnest(v_idx) AS x(n)),
            ARRAY(SELECT v_docs[x.n] FROM unnest(v_idx) AS x(n)), true);
        v_go := '{}';
        FOR k IN 1 .. cardinality(v_idx) LOOP
            i := v_idx[k];
            -- Reasons about pii_fields are withheld, as in the quarantine.
            v_out[i] := v_out[i] || jsonb_build_object(
                'outcome', v_judged.outcomes[k],
                'reasons', lake_internal._pii_withhold(ds.pii_fields, v_judged.reasons[k]));
            IF v_judged.outcomes[k] <> 'invalid' THEN
                v_go := v_go || i;
            ELSIF p_apply AND p_corrected[i] IS NULL THEN
                UPDATE lake.quarantine AS u
                   SET reasons = v_out[i] -> 'reasons',
                       schema_version = ds.schema_version
                 WHERE u.id = (v_items[i]).id;
            END IF;
        END LOOP;
        CONTINUE WHEN NOT p_apply OR cardinality(v_go) = 0;

        SELECT (o.batch).* INTO v_batch FROM lake_internal._open_batch(
            ds.name, gen_random_uuid(), g.user_id, 'release',
            encode(sha256(convert_to(
                (SELECT string_agg(coalesce(p_corrected[x.n], v_docs[x.n])::text, E'\n'
                                   ORDER BY x.o)
                   FROM unnest(v_go) WITH ORDINALITY AS x(n, o)), 'UTF8')), 'hex'),
            'quarantine ' || (SELECT string_agg((v_items[x.n]).id::text, ', ' ORDER BY x.o)
                                FROM unnest(v_go) WITH ORDINALITY AS x(n, o))) AS o;
        PERFORM lake_internal._ingest_docs(
            ds.name, v_batch.id, g.user_id,
            ARRAY(SELECT 'quarantine ' || (v_items[x.n]).id FROM unnest(v_go) AS x(n)),
            ARRAY(SELECT v_docs[x.n] FROM unnest(v_go) AS x(n)));
        SELECT * INTO v_batch FROM lake.batches AS b WHERE b.id = v_batch.id;
        IF v_batch.quarantined <> 0 THEN
            -- Judged valid a moment ago in this transaction: the rules cannot have changed.
            RAISE EXCEPTION 'lake_internal._release: batch % quarantined % of the records it '
                            'judged valid', v_batch.id, v_batch.quarantined;
        END IF;
        FOREACH i IN ARRAY v_go LOOP
            UPDATE lake.quarantine AS u
               SET status = CASE WHEN p_corrected[i] IS NULL THEN 'released' ELSE 'corrected' END,
                   decided_at = now(), decided_by = session_user, decision_note = p_note,
                   released_batch = v_batch.id
             WHERE u.id = (v_items[i]).id;
            v_out[i] := v_out[i] || jsonb_build_object('batch_id', v_batch.id);
            PERFORM lake_internal._audit(
                'quarantine.release', ds.name,
                jsonb_build_object('quarantine_id', (v_items[i]).id, 'batch_id', v_batch.id,
                                   'outcome', v_out[i] ->> 'outcome',
                                   'corrected', p_corrected[i] IS NOT NULL, 'note', p_note),
                (v_items[i]).doc, (lake_internal._pii_seal(ds.pii_fields, v_docs[i])).doc);
        END LOOP;
    END LOOP;
    RETURN to_jsonb(v_out);
END
$$;
ALTER FUNCTION lake_internal._release(bigint[], jsonb[], text, boolean) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._release(bigint[], jsonb[], text, boolean) FROM PUBLIC;
