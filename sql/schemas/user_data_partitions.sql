-- The monthly partitions of the user_data tables. Kept apart so that user_data lists exactly one
-- table per dataset and partition names can never collide with a dataset's name. Nobody but the
-- owner has access: all reads and writes go through the parent table and its policies.
CREATE SCHEMA user_data_partitions AUTHORIZATION lake_owner;
REVOKE ALL ON SCHEMA user_data_partitions FROM PUBLIC;
