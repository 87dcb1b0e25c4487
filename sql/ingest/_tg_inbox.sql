-- AFTER INSERT statement trigger of inbox.<dataset>: validates the statement's rows and stores the
-- valid ones for the session's lake user. Runs as lake_owner, the only role that may write
-- user_data for a user it establishes.
--
-- The shape of every ingest path (see also lake_internal._tg_validate and _ingest_docs): limits
-- (lake_internal._limits), partitions on demand (_partitions_for), one set-based scan of the
-- statement's rows with the pass test (_passes_sql) once a row, whose passing rows go straight
-- into their monthly partitions of user_data.<dataset> in the same statement; reasons for the
-- suspects only (_reasons, PL/Python for the schema); the quarantine writer (_quarantine) for the
-- invalid ones (a row without a time, ts NULL, is always one); the archive writer
-- (_archive_records) for valid ones older than the first month in the lake; store the other
-- suspects that are valid after all; count. Writing the partitions directly means the parent's
-- validation trigger (which keeps checking every INSERT, COPY and UPDATE by applications) does
-- not test these rows a second time, and invalid rows never enter user_data (no insert and
-- delete, no dead rows). Applications cannot write the partitions themselves. Last, the inbox is
-- emptied of this transaction's rows.
--
-- The statement's rows are the transition table, or, for a dataset with a source format, the
-- records the lake makes of them: the source records are converted in one call, with the
-- converted records' times (lake_internal._convert_timed), since the client read none from the
-- source records (their ts is ignored); the scan then reads those arrays, each row with its
-- place (o) among the source records (v_sent): the quarantine keeps an invalid row's source record
-- instead of its conversion, as on every other path. The scan carries the place, not the source
-- record: every month's INSERT reads the whole scan again (≈ 2 µs a row less).
CREATE FUNCTION lake_internal._tg_inbox()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than it saves on one batch
AS $$
DECLARE
    ds        lake.datasets;
    lim       lake_internal.limits;
    v_schema  lake.dataset_schemas;
    v_user    text := (SELECT i.user_id FROM lake_internal._identity() AS i);
    v_lo      timestamptz;
    v_hi      timestamptz;
    v_month   timestamptz;
    v_next    timestamptz;
    v_part    text;
    v_ctes    text := '';
    v_n       integer := 0;
    v_seq     regclass;
    g         record;
    v_reasons jsonb[];
    v_bad     integer[];
    v_good    integer[];
    v_old     integer[];
    v_moved   bigint;
    v_archived bigint;
    v_arch_batches uuid[] := '{}';  -- the statement's records for the archive, all batches
    v_arch_tss timestamptz[] := '{}';
    v_arch_docs jsonb[] := '{}';
    v_seqscan text := current_setting('enable_seqscan');
    v_rows    text := 'new_rows';  -- the statement's rows, as the scan reads them
    v_ts      timestamptz[];
    v_docs    jsonb[];
    v_batches uuid[];
    v_refs    text[];
    v_sent    jsonb[];
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LK010',
            MESSAGE = 'no lake user in this session: every record needs an owner',
            HINT = 'Authenticate with lake.authenticate(''<API key>'') first.';
    END IF;
    PERFORM lake_internal._require_write();
    SELECT * INTO ds FROM lake.datasets WHERE name = TG_TABLE_NAME;
    IF NOT FOUND OR TG_TABLE_SCHEMA <> 'inbox' THEN
        RAISE EXCEPTION 'lake_internal._tg_inbox: %.% is not a lake inbox', TG_TABLE_SCHEMA, TG_TABLE_NAME;
    END IF;
    SELECT * INTO v_schema FROM lake.dataset_schemas
     WHERE dataset = ds.name AND version = ds.schema_version;
    -- The statement's rows: a dataset with a source format converts them first (see above).
    IF ds.source_format IS NOT NULL THEN
        SELECT array_agg(r.batch_id), array_agg(r.ref), array_agg(r.doc)
          INTO v_batches, v_refs, v_sent
          FROM new_rows AS r;
        SELECT c.docs, c.times INTO v_docs, v_ts
          FROM lake_internal._convert_timed(ds.source_format, v_sent, ds.time_field,
                                            ds.time_format) AS c;
        -- unnest in the select list: the arrays are read in step, not copied into tuplestores
        v_rows := '(SELECT unnest($5) AS ts, unnest($6) AS doc, unnest($7) AS batch_id,'
                  ' unnest($8) AS ref, generate_series(1, cardinality($5)) AS o)';
    ELSE
        v_ts := ARRAY(SELECT r.ts FROM new_rows AS r);
    END IF;
    v_seq := pg_get_serial_sequence(format('user_data.%I', ds.name), 'id')::regclass;

    -- Limits once a statement, not once a row; then the partitions the rows need.
    lim := lake_internal._partitions_for(lake_internal._limits(ds), v_ts);

    -- One INSERT into each month partition that can receive valid rows of this statement (none
    -- when no row may be stored: v_lo is NULL and the loop does not run).
    SELECT min(t.t), max(t.t) INTO v_lo, v_hi
      FROM unnest(v_ts) AS t(t) WHERE t.t >= lim.accept_from AND t.t < lim.accept_before;
    v_month := lake.month_start(v_lo);
    WHILE v_month <= v_hi LOOP
        v_next := (v_month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
        v_part := lake_internal._partition_name(ds.name, v_month);
        IF to_regclass(format('user_data_partitions.%I', v_part)) IS NULL THEN
            RAISE EXCEPTION 'lake_internal._tg_inbox: partition % of user_data.% is missing',
                v_part, ds.name;
        END IF;
        v_n := v_n + 1;
        v_ctes := v_ctes || format($q$,
            m%s AS (INSERT INTO user_data_partitions.%I
                           (id, user_id, ts, doc, batch_id, ingested_at)
                    SELECT s.id, $3, s.ts, s.doc, s.batch_id, now()
                      FROM s WHERE s.ok AND s.ts >= %L AND s.ts < %L)$q$,
            v_n, v_part, v_month, v_next);
        v_month := v_next;
    END LOOP;

    -- The personal identifiers in the stored rows (lake.pii_findings), in the same statement:
    -- only the rows the pre-filter lets through are gathered for the scan.
    IF ds.pii_scan THEN
        v_ctes := v_ctes || format($q$,
            p AS (SELECT lake_internal._pii_scan($4, array_agg(s.id), array_fill($3::text,
                                        ARRAY[count(*)::integer]), array_agg(s.doc)) AS n
                    FROM s WHERE s.ok AND %s)$q$,
            lake_internal._pii_prefilter_sql(ds.name, 'SELECT s.doc FROM s WHERE s.ok', 's.doc'));
    END IF;

    FOR g IN EXECUTE format($q$
        WITH s AS MATERIALIZED (
            SELECT x.*, CASE WHEN x.ok THEN nextval($2) END AS id
              FROM (SELECT r.ts, r.doc, r.batch_id, r.ref, %s AS o,
                           %s AS ok
                      FROM %s AS r
                    OFFSET 0) AS x)%s
        SELECT s.batch_id,
               count(*) AS received,
               array_agg(s.ts) FILTER (WHERE NOT s.ok) AS tss,
               array_agg(s.doc) FILTER (WHERE NOT s.ok) AS docs,
               array_agg(s.ref) FILTER (WHERE NOT s.ok) AS refs,
               array_agg(s.o) FILTER (WHERE NOT s.ok) AS os,
               coalesce(sum(pg_column_size(s.doc)) FILTER (WHERE s.ok), 0) AS bytes,
               array_agg(pg_column_size(s.doc)) FILTER (WHERE NOT s.ok) AS sizes,
               %s AS pii_found
          FROM s
         GROUP BY s.batch_id$q$,
         CASE WHEN ds.source_format IS NULL THEN 'NULL::integer' ELSE 'r.o' END,
         lake_internal._passes_sql(v_schema.predicate, 'r', 1), v_rows, v_ctes,
         CASE WHEN ds.pii_scan THEN '(SELECT p.n FROM p)' ELSE 'NULL::integer' END)
    USING lim, v_seq, v_user, ds.name, v_ts, v_docs, v_batches, v_refs
    LOOP
        v_moved := 0;
        v_archived := 0;
        v_good := '{}';
        IF g.docs IS NOT NULL THEN
            -- The suspects: reasons, then the invalid ones to the quarantine as they were sent
            -- (a converted row's source record: v_sent at its place), with a record_ref of
            -- "row <id>", an id of the dataset's sequence, when the client gave none.
            v_reasons := lake_internal._reasons(lim, v_schema,
                                                array_fill(v_user, ARRAY[cardinality(g.docs)]),
                                                g.tss, g.docs);
            v_bad := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                            WHERE x.r <> '[]' ORDER BY x.o);
            v_good := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                             WHERE x.r = '[]' AND g.tss[x.o] >= lim.archive_before ORDER BY x.o);
            v_old := ARRAY(SELECT x.o FROM unnest(v_reasons) WITH ORDINALITY AS x(r, o)
                            WHERE x.r = '[]' AND g.tss[x.o] < lim.archive_before ORDER BY x.o);
            v_moved := lake_internal._quarantine(
                ds.name, v_schema.version, g.batch_id,
                ARRAY(SELECT coalesce(g.refs[i], 'row ' || nextval(v_seq)) FROM unnest(v_bad) i),
                array_fill(v_user, ARRAY[cardinality(v_bad)]),
                ARRAY(SELECT g.tss[i] FROM unnest(v_bad) i),
                CASE WHEN ds.source_format IS NULL THEN ARRAY(SELECT g.docs[i] FROM unnest(v_bad) i)
                     ELSE ARRAY(SELECT x.d
                                  FROM unnest(v_bad) WITH ORDINALITY AS b(i, k)
                                  JOIN unnest(v_sent) WITH ORDINALITY AS x(d, o) ON x.o = g.os[b.i]
                                 ORDER BY b.k) END,
                NULL,
                ARRAY(SELECT v_reasons[i] FROM unnest(v_bad) i));
            -- Valid, but older than the first month in the lake: to the month's archive, with
            -- the other batches' after the loop (a file per month and statement, not per batch).
            v_archived := cardinality(v_old);
            v_arch_batches := v_arch_batches
                              || array_fill(g.batch_id, ARRAY[cardinality(v_old)]);
            v_arch_tss := v_arch_tss || ARRAY(SELECT g.tss[i] FROM unnest(v_old) i);
            v_arch_docs := v_arch_docs || ARRAY(SELECT g.docs[i] FROM unnest(v_old) i);
            -- Valid after all (the pass test may be conservative): store them as above, each in
            -- its month (the lake's checks found a partition for it).
            FOR v_month IN SELECT DISTINCT lake.month_start(g.tss[i]) FROM unnest(v_good) AS i LOOP
                EXECUTE format($q$
                    WITH ins AS (
                        INSERT INTO user_data_partitions.%I
                               (id, user_id, ts, doc, batch_id, ingested_at)
                        SELECT nextval($1), $2, x.t, x.d, $3, now()
                          FROM unnest($4::timestamptz[], $5::jsonb[]) WITH ORDINALITY AS x(t, d, o)
                         WHERE lake.month_start(x.t) = $6
                         ORDER BY x.o
                        RETURNING id, user_id, doc)
                    SELECT CASE WHEN $7 THEN lake_internal._pii_scan($8, array_agg(ins.id),
                                                                     array_agg(ins.user_id::text),
                                                                     array_agg(ins.doc)) END
                      FROM ins$q$,
                    lake_internal._partition_name(ds.name, v_month))
                USING v_seq, v_user, g.batch_id,
                      ARRAY(SELECT g.tss[i] FROM unnest(v_good) AS i),
                      ARRAY(SELECT g.docs[i] FROM unnest(v_good) AS i),
                      v_month, ds.pii_scan, ds.name;
            END LOOP;
        END IF;
        -- The bytes stored, for the quotas: the rows that passed and the suspects valid after all.
        PERFORM lake_internal._count_batch(
            ds.name, g.batch_id, g.received, v_moved, 'insert', v_archived,
            g.bytes + coalesce((SELECT sum(g.sizes[i]) FROM unnest(v_good) AS i), 0));
    END LOOP;

    PERFORM lake_internal._archive_records(
        ds.name, v_arch_batches, NULL, array_fill(v_user, ARRAY[cardinality(v_arch_docs)]),
        v_arch_tss, v_arch_docs);

    -- The inbox holds few live rows but many dead ones between vacuums: find this transaction's
    -- rows through the xact_id index, never by scanning the table.
    PERFORM set_config('enable_seqscan', 'off', true);
    EXECUTE format('DELETE FROM inbox.%I WHERE xact_id = pg_current_xact_id()', ds.name);
    PERFORM set_config('enable_seqscan', v_seqscan, true);
    RETURN NULL;
END
$$;
ALTER FUNCTION lake_internal._tg_inbox() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_inbox() FROM PUBLIC;
