-- The validation trigger in the database: what is kept, what is quarantined, and the counts.
-- Runs against a live lake as a superuser (pg_prove -d lake tests/pgtap/validation.sql), in one
-- transaction that is rolled back.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT lake.create_dataset('tap_steps', '{"type": "object", "required": ["ts", "n"],
    "properties": {"n": {"type": "integer", "minimum": 0}}}');
SELECT lake.act_as('tap_user', 'session');

SELECT plan(9);

SELECT lives_ok($$
    INSERT INTO user_data.tap_steps (ts, doc) VALUES
        (now() - interval '1 hour', '{"ts": "x", "n": 1}'),
        (now() - interval '1 hour', '{"ts": "x", "n": -1}'),
        (now() - interval '1 hour', '{"ts": "x", "n": 1.5}'),
        (now() - interval '1 hour', '{"ts": "x"}'),
        (now() - interval '3 years', '{"ts": "x", "n": 2}'),
        (now() + interval '3 years', '{"ts": "x", "n": 2}')$$,
    'an INSERT with invalid rows succeeds');

SELECT results_eq($$SELECT (doc->>'n')::int FROM user_data.tap_steps$$, ARRAY[1],
                  'only the valid row stays');
SELECT results_eq($$SELECT received, accepted, archived, quarantined FROM lake.batches$$,
                  $$VALUES (6::bigint, 1::bigint, 1::bigint, 4::bigint)$$,
                  'the batch counts received = accepted + archived + quarantined (history '
                  'older than the first month goes to its month''s archive)');
SELECT bag_eq($$SELECT r->>'rule' FROM lake.quarantine, jsonb_array_elements(reasons) r$$,
              ARRAY['minimum', 'type', 'required', 'time_in_future'],
              'each rejected row has its reason');
SELECT is_empty($$SELECT FROM user_data_partitions.tap_steps_p_before
                  UNION ALL SELECT FROM user_data_partitions.tap_steps_p_after$$,
                'the overflow partitions are empty again');
SELECT throws_ok($$UPDATE user_data.tap_steps SET doc = '{"ts": "x", "n": -5}'$$, 'LK040');
SELECT is((SELECT lake.current_user_id()), 'tap_user', 'the identity holds for the session');
SELECT set_config('lake.identity_nonce', 'forged', false);
SELECT is((SELECT lake.current_user_id()), NULL, 'a forged nonce is no identity');
SELECT is_empty($$SELECT FROM user_data.tap_steps WHERE user_id <> 'tap_user'$$,
                'rows belong to the session''s user');

SELECT * FROM finish();
ROLLBACK;
