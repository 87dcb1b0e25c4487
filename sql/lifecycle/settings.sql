-- Lake-wide settings of the lifecycle jobs (tiers, retention, archives, PII keys, backups,
-- certificates) and the default quotas of each user of a dataset (lake_internal._quota_charge),
-- one row per key, with their defaults. Administrators read them here and change them with
-- lake.set_setting, which knows the keys and checks the values.
CREATE TABLE lake.settings (
    key         text PRIMARY KEY,
    -- Always text; lake.set_setting checks that it reads as what the key needs.
    value       text NOT NULL,
    description text
);
INSERT INTO lake.settings (key, value, description) VALUES
    ('archive_dir', '',
     'where archives of expired partitions are written (by the server''s OS user); '''' = the '
     'folder lake_archive next to the server''s data directory'),
    ('archive_retention', '7 years',
     'archive files older than this are deleted by lake.purge_archives'),
    ('figure_history_retention', '400 days',
     'the figures job drops samples of lake.figure_history older than this (a week at a time)'),
    ('restore_hold', '7 days',
     'a restored month is kept this long before retention may archive and drop it again'),
    ('lock_timeout', '1s',
     'how long retention waits for a lock (detaching a partition) before it retries'),
    ('lock_attempts', '3',
     'how many times retention tries to detach a partition before leaving it for the next run'),
    ('tablespace_hot', '', 'tablespace for hot partitions ('''' = leave them where they are)'),
    ('tablespace_warm', '', 'tablespace for warm partitions ('''' = leave them where they are)'),
    ('tablespace_cold', '',
     'tablespace for cold and expired partitions ('''' = leave them where they are)'),
    ('pii_key_rotation', '90 days',
     'the pii_keys job makes a new PII key when the newest is this old'),
    ('pii_rekey_batch', '50000',
     'how many sealed values per table the pii_keys job re-encrypts with the newest key per run'),
    ('backup_full_every', '7 days',
     'the backups job takes a full backup when the newest full one is this old'),
    ('backup_incr_every', '1 day',
     'the backups job takes an incremental backup when the newest backup is this old'),
    ('backup_retention_full', '2',
     'how many full backups (with the backups and WAL that depend on them) the repository keeps'),
    ('tls_dir', '',
     'the folder of the lake''s CA and its servers'' certificates (read and written by the '
     'server''s OS user); '''' = the folder tls next to the server''s data directory'),
    ('quota_stored_bytes', '10 GB',
     'bytes of records each user may have stored in a dataset (1 GB = 1024^3 bytes), unless '
     'lake.quotas says otherwise for the dataset'),
    ('quota_quarantined_bytes', '1 GB',
     'bytes of records each user may have in a dataset''s quarantine, unless lake.quotas says '
     'otherwise for the dataset'),
    ('quota_records_per_hour', '10000000',
     'records each user may send to a dataset in a clock hour, unless lake.quotas says otherwise '
     'for the dataset');
ALTER TABLE lake.settings OWNER TO lake_owner;
GRANT SELECT ON lake.settings TO lake_admin;

COMMENT ON TABLE lake.settings IS
    'Lake-wide settings of tiers, retention, archives, PII keys and default quotas; change them with lake.set_setting.';

COMMENT ON COLUMN lake.settings.key IS 'The setting''s name, e.g. archive_dir.';
COMMENT ON COLUMN lake.settings.value IS 'Its value, as text; lake.set_setting checks it.';
COMMENT ON COLUMN lake.settings.description IS 'What it means.';
