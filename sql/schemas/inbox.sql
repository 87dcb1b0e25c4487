-- One COPY inbox per dataset. PostgreSQL refuses COPY FROM into a table whose row-level security
-- applies to the copying role ("COPY FROM not supported with row-level security"), and every
-- user_data table has RLS forced; so applications and lake_client COPY into inbox.<dataset>
-- instead. Its statement trigger moves the rows, owned by the session's lake user, into
-- user_data.<dataset> within the same statement, where the usual validation applies. Inboxes
-- are unlogged and always empty between statements; applications may only INSERT into them.
CREATE SCHEMA inbox AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA inbox FROM PUBLIC;
GRANT USAGE ON SCHEMA inbox TO lake_admin, lake_write;
