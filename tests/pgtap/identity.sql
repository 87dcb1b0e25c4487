-- The identity checks as a rule table: only the lake establishes lake.current_user_id(), SET
-- cannot forge it, and a role without a key gets nothing. Runs against a live lake as a
-- superuser (`pg_prove -d lake tests/pgtap/identity.sql`), in one transaction rolled back at the
-- end; the application's part runs as lake_app (SET LOCAL ROLE), as a pooled login would.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
SET LOCAL client_min_messages = error;  -- refused keys warn; the results say enough
SELECT name FROM lake.create_dataset('tap_identity', '{"type": "object"}');
SELECT lake.create_user('tap_alice');
SELECT lake.create_user('tap_bob');
SELECT lake.ingest('tap_identity', jsonb_build_array(jsonb_build_object('ts', now())),
                   for_user => 'tap_alice');
SELECT lake.ingest('tap_identity', jsonb_build_array(jsonb_build_object('ts', now())),
                   for_user => 'tap_bob');
CREATE TEMP TABLE tap_keys AS
SELECT 'rw' AS name, api_key FROM lake.create_api_key('tap_alice')
UNION ALL
SELECT 'ro', api_key FROM lake.create_api_key('tap_alice', key_scopes => ARRAY['read'])
UNION ALL
SELECT 'revoked', api_key FROM lake.create_api_key('tap_bob');
SELECT lake.revoke_api_key(split_part(api_key, '_', 2)) FROM tap_keys WHERE name = 'revoked';
GRANT SELECT ON tap_keys TO lake_app;
SELECT lake.reset_identity();

SELECT plan(14);

SET LOCAL ROLE lake_app;
-- No key: no identity, no rows, no writes.
SELECT is(lake.current_user_id(), NULL, 'without a key there is no lake user');
SELECT is(lake.has_scope('read'), false, 'without a key there is no read scope');
SELECT is_empty('SELECT FROM user_data.tap_identity', 'without a key no rows are visible');
SELECT throws_ok($$INSERT INTO user_data.tap_identity (ts, doc) VALUES (now(), '{}')$$, '42501',
                 NULL, 'without a key nothing can be written');
-- Nothing an application can SET or write makes an identity.
SELECT set_config('lake.user_id', 'tap_bob', true);
SELECT set_config('lake.identity_nonce', '00000000-0000-0000-0000-000000000000', true);
SELECT is(lake.current_user_id(), NULL, 'SET of a made-up setting or the nonce forges nothing');
SELECT throws_ok($$INSERT INTO lake_internal.session_identity (backend_pid, nonce, act_scope)
                   VALUES (pg_backend_pid(), gen_random_uuid(), 'session')$$, '42501', NULL,
                 'the identity table is out of an application''s reach');
SELECT throws_ok($$SELECT lake.act_as('tap_bob')$$, '42501', NULL,
                 'an application cannot act for a user');
-- Keys: a revoked one is refused, a read-only one reads only, a full one reads and writes.
SELECT is(lake.authenticate((SELECT api_key FROM tap_keys WHERE name = 'revoked')), NULL,
          'a revoked key is refused');
SELECT is(lake.authenticate((SELECT api_key FROM tap_keys WHERE name = 'ro')), 'tap_alice',
          'a read-only key authenticates its user');
SELECT is((SELECT string_agg(DISTINCT user_id, ',') FROM user_data.tap_identity), 'tap_alice',
          'a user sees only their own rows');
SELECT throws_ok($$INSERT INTO user_data.tap_identity (ts, doc) VALUES (now(), '{}')$$, '42501',
                 NULL, 'a read-only key cannot write');
SELECT is(lake.authenticate((SELECT api_key FROM tap_keys WHERE name = 'rw')), 'tap_alice',
          'a read-write key authenticates its user');
SELECT lives_ok($$INSERT INTO user_data.tap_identity (ts, doc)
                  VALUES (now(), jsonb_build_object('ts', now()))$$, 'a read-write key writes');
SELECT throws_ok($$INSERT INTO user_data.tap_identity (user_id, ts, doc)
                   VALUES ('tap_bob', now(), jsonb_build_object('ts', now()))$$, '42501', NULL,
                 'nobody writes for another user');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
