-- AFTER INSERT statement trigger of inbox.<dataset>: validates the statement's rows and stores the
-- valid ones for the session's lake user. Runs as lake_owner, the only role that may write
-- user_data for a user it establishes.
--
-- One set-based scan of the transition table evaluates the compiled JSON Schema predicate and the
-- lake's cheap checks (the same test as lake_internal._tg_validate), once a row; the rows that pass
-- go straight into their monthly partitions of user_data.<dataset>, and only the rows that fail it
-- (the suspects) reach PL/Python (lake_internal._divert), which quarantines the invalid ones with
-- reasons (a row without a time, ts NULL, is always one) and stores the rest. Writing the
-- partitions directly means the parent's validation trigger (which keeps checking every INSERT,
-- COPY and UPDATE by applications) does not test these rows a second time, and invalid rows never
-- enter user_data (no insert and delete, no dead rows). Applications cannot write the partitions
-- themselves. Partitions are made on demand first; then the inbox is emptied of this transaction's
-- rows.
CREATE FUNCTION lake_internal._tg_inbox()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than it saves on one batch
AS $$
DECLARE
    ds       lake.datasets;
    v_schema lake.dataset_schemas;
    v_user   text := (SELECT i.user_id FROM lake_internal._identity() AS i);
    v_from   timestamptz;  -- the window: now() - retention (or writable_from) .. now() + max_future
    v_to     timestamptz;
    v_lo     timestamptz;
    v_hi     timestamptz;
    v_month  timestamptz;
    v_next   timestamptz;
    v_part   text;
    v_ctes   text := '';
    v_n      integer := 0;
    v_seq    regclass;
    g        record;
    v_bad    bigint;
    v_seqscan text := current_setting('enable_seqscan');
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

    -- Bounds computed once, not once a row.
    -- Cold months (before writable_from) take no new rows: their records are suspects too.
    v_from := greatest(now() - ds.retention, ds.writable_from);
    v_to := now() + ds.max_future;
    SELECT min(ts), max(ts) INTO v_lo, v_hi FROM new_rows WHERE ts >= v_from AND ts <= v_to;
    IF v_lo IS NULL THEN
        v_lo := 'infinity';  -- no partition can receive a row: no INSERT below
        v_hi := '-infinity';
    ELSIF lake.ensure_partitions(ds.name, v_lo, v_hi) > 0 THEN
        SELECT * INTO ds FROM lake.datasets WHERE name = TG_TABLE_NAME;
    END IF;
    SELECT * INTO v_schema FROM lake.dataset_schemas
     WHERE dataset = ds.name AND version = ds.schema_version;
    v_seq := pg_get_serial_sequence(format('user_data.%I', ds.name), 'id')::regclass;

    -- One INSERT into each month partition that can receive valid rows of this statement (none
    -- when no row lies inside the window).
    v_lo := greatest(v_lo, ds.partitions_from);
    v_hi := least(v_hi, ds.partitions_to - interval '1 microsecond');
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
                    SELECT s.id, $9, s.ts, s.doc, s.batch_id, now()
                      FROM s WHERE s.ok AND s.ts >= %L AND s.ts < %L)$q$,
            v_n, v_part, v_month, v_next);
        v_month := v_next;
    END LOOP;

    -- The personal identifiers in the stored rows (lake.pii_findings), in the same statement.
    IF ds.pii_scan THEN
        v_ctes := v_ctes || $q$,
            p AS (SELECT lake_internal._pii_scan($10, array_agg(s.id), array_fill($9::text,
                                        ARRAY[count(*)::integer]), array_agg(s.doc)) AS n
                    FROM s WHERE s.ok)$q$;
    END IF;

    FOR g IN EXECUTE format($q$
        WITH s AS MATERIALIZED (
            SELECT x.*, CASE WHEN x.ok THEN nextval($8) END AS id
              FROM (SELECT r.ts, r.doc, r.batch_id, r.ref,
                           %s AS ok
                      FROM new_rows AS r
                    OFFSET 0) AS x)%s
        SELECT s.batch_id,
               count(*) AS received,
               array_agg(s.ts) FILTER (WHERE NOT s.ok) AS tss,
               array_agg(s.doc) FILTER (WHERE NOT s.ok) AS docs,
               array_agg(s.ref) FILTER (WHERE NOT s.ok) AS refs,
               %s AS pii_found
          FROM s
         GROUP BY s.batch_id$q$, lake_internal._passes_sql(v_schema.predicate, 'r', 1), v_ctes,
         CASE WHEN ds.pii_scan THEN '(SELECT p.n FROM p)' ELSE 'NULL::integer' END)
    USING v_from, v_to, ds.partitions_from, ds.partitions_to,
          8 * ds.max_depth, ds.max_record_bytes,
          format('strict $.**{%s}', ds.max_depth + 1)::jsonpath, v_seq, v_user, ds.name
    LOOP
        v_bad := 0;
        IF g.docs IS NOT NULL THEN
            v_bad := lake_internal._divert(ds, v_schema, 'INBOX', g.batch_id, NULL,
                                  array_fill(v_user, ARRAY[cardinality(g.docs)]), g.tss, g.docs,
                                  g.refs);
        END IF;
        PERFORM lake_internal._count_batch(ds.name, g.batch_id, g.received, v_bad, 'insert');
    END LOOP;

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
