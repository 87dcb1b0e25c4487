-- After every job file: schedule them in pg_cron (lake._install_jobs), as the migrating role.
SELECT lake._install_jobs();
