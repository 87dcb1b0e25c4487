-- The lake's machinery: helper and trigger functions (named _*) and the tables only they use
-- (the audit chain's head, pending changes, session identities, before-images...). Kept out of
-- schema lake so that `\df lake.*` lists the API alone. No application role may use it: the
-- public functions (SECURITY DEFINER, owned by lake_owner) and the triggers call into it.
-- lake_admin has USAGE because lake.run_maintenance and lake.apply_retention, which commit and
-- so cannot be SECURITY DEFINER, run as the administrator and call the steps here that are
-- granted to lake_admin one by one.
CREATE SCHEMA lake_internal AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA lake_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA lake_internal TO lake_admin;
COMMENT ON SCHEMA lake_internal IS
    'Datapunk Lake''s machinery: helpers, trigger functions and the tables only they use.';
