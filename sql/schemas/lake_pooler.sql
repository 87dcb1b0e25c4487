-- What pgbouncer's auth_query calls, apart from the lake's API and machinery: lake_pooler may use
-- this schema and nothing else.
CREATE SCHEMA lake_pooler AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA lake_pooler FROM PUBLIC;
GRANT USAGE ON SCHEMA lake_pooler TO lake_pooler;
COMMENT ON SCHEMA lake_pooler IS
    'Datapunk Lake: the SCRAM secret lookup of pgbouncer''s auth_query (role lake_pooler).';
