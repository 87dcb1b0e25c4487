-- One partitioned table per dataset, created by lake.create_dataset(); every table has row-level
-- security enabled and forced.
CREATE SCHEMA user_data AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA user_data FROM PUBLIC;
GRANT USAGE ON SCHEMA user_data TO lake_admin, lake_read, lake_write;
