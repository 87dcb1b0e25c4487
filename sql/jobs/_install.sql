-- After every job file: schedule them in pg_cron (lake_internal._install_jobs), as the migrating
-- role.
SELECT lake_internal._install_jobs();
