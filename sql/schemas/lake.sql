-- The lake's API, registry, quarantine and bookkeeping. Applications get USAGE only; what they
-- may call is granted function by function.
CREATE SCHEMA lake AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA lake FROM PUBLIC;
GRANT USAGE ON SCHEMA lake TO lake_admin, lake_read, lake_write, lake_auditor, lake_pii_reader;
