-- The rule table of the lake's own checks: every reason the lake itself gives a record (beside
-- the JSON Schema's), one row each, with a record that earns it. Runs against a live lake as a
-- superuser (`pg_prove -d lake tests/pgtap/reasons.sql`): all of it happens in one transaction
-- that is rolled back, so it leaves nothing behind.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT name FROM lake.create_dataset('tap_reasons', '{"type": "object"}',
    '{"max_future": "2 years", "premake": 1, "max_record_bytes": 100000, "max_depth": 5}');
SELECT lake.act_as('tap_user');

-- lake.ingest: the checks on parsed records (sql/ingest/_lake_reasons.sql).
SELECT received FROM lake.ingest('tap_reasons', jsonb_build_array(
    jsonb_build_object('x', 1),
    jsonb_build_object('ts', 'yesterday'),
    jsonb_build_object('ts', now() - interval '2 years'),
    jsonb_build_object('ts', now() + interval '3 years'),
    jsonb_build_object('ts', now(), 'pad', repeat('x', 100001)),
    jsonb_build_object('ts', now(), 'a', '{"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}'::jsonb)),
    origin => 'checks');
-- Plain INSERT: a month beyond the premade partitions, and a row without an owner.
INSERT INTO user_data.tap_reasons (ts, doc)
VALUES (lake.month_start(now()) + interval '6 months', '{"n": "no partition"}');
INSERT INTO user_data.tap_reasons (user_id, ts, doc) VALUES (NULL, now(), '{"n": "no owner"}');
-- The client's path for bytes that are not jsonb (sql/ingest/ingest_raw.sql).
SELECT is_new FROM lake.begin_batch('tap_reasons', '00000000-0000-4000-8000-00000000000a', NULL);
SELECT lake.ingest_raw('tap_reasons', '00000000-0000-4000-8000-00000000000a',
    ARRAY['invalid utf-8', 'truncated', 'huge number', 'deep', 'large'],
    ARRAY['\xff'::bytea,
          convert_to('{"ts": ', 'UTF8'),
          convert_to('{"n": 1e1000000}', 'UTF8'),
          convert_to(repeat('[', 45000) || repeat(']', 45000), 'UTF8'),
          convert_to('"' || repeat('y', 100001) || '"', 'UTF8')]);

-- The rules each quarantined record was given, by name: its batch's origin and reference, the
-- note of a plain INSERT's row, or the reference of a raw record.
CREATE TEMP VIEW tap_rules AS
SELECT coalesce(b.origin || ' ' || q.record_ref, q.doc ->> 'n', q.record_ref) AS name,
       jsonb_path_query_array(q.reasons, '$[*].rule') AS rules
  FROM lake.quarantine AS q
  JOIN lake.batches AS b ON b.id = q.batch_id
 WHERE q.dataset = 'tap_reasons';

SELECT plan(15);

SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[0]'), '["time_missing"]',
          'a record without its time field: time_missing');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[1]'), '["time_unparseable"]',
          'a time that is not RFC 3339 with an offset: time_unparseable');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[2]'), NULL,
          'a time older than the first month in the lake is no reason: history');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[3]'), '["time_in_future"]',
          'a time more than max_future ahead: time_in_future');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[4]'), '["too_large"]',
          'a record over max_record_bytes: too_large');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'checks records[5]'), '["too_deep"]',
          'a record nested deeper than max_depth: too_deep');
SELECT is((SELECT archived FROM lake.batches WHERE origin = 'checks'), 1::bigint,
          'it went to its month''s archive, counted as archived');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'no partition'), '["partition_missing"]',
          'a month without a partition (plain INSERT): partition_missing');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'no owner'), '["owner_missing"]',
          'a row without an owner (plain INSERT): owner_missing');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'invalid utf-8'), '["encoding_invalid"]',
          'bytes that are not UTF-8: encoding_invalid');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'truncated'), '["json_invalid"]',
          'text that is not JSON: json_invalid');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'huge number'), '["number_out_of_range"]',
          'a number beyond numeric: number_out_of_range');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'deep'), '["too_deep"]',
          'nesting beyond the JSON parser''s stack: too_deep');
SELECT is((SELECT rules FROM tap_rules WHERE name = 'large'), '["too_large"]',
          'bytes over max_record_bytes: too_large');
SELECT is((SELECT count(*) FROM user_data.tap_reasons), 0::bigint, 'none of them was stored');

SELECT * FROM finish();
ROLLBACK;
