-- One row per archive of a monthly partition: a gzip-compressed JSON Lines file of all its rows
-- and all columns, with a manifest next to it, written by lake.apply_retention before the
-- partition is dropped (or, for a dropped month that receives records, rewritten with them by
-- lake_internal._archive_records) and read back by lake.restore_partition.
CREATE TABLE lake.archives (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No reference to lake.datasets: the archives of a dropped dataset (lake.drop_dataset) stay.
    dataset       text NOT NULL,
    -- First instant of the archived UTC month.
    month         timestamptz NOT NULL,
    partition     text NOT NULL,
    -- The data file (<archive_dir>/<dataset>/<YYYY-MM>/<name>.jsonl.gz) and its manifest.
    path          text NOT NULL,
    manifest_path text NOT NULL,
    -- Rows and SHA-256 of the uncompressed content; size of the compressed file.
    rows          bigint NOT NULL CHECK (rows >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    --   verified    written, read back and equal to the partition, which is still there
    --   dropped     the partition was dropped: this file is the only copy
    --   restored    the partition was restored from it (kept until hold_until at least)
    --   failed      it did not verify (see error): nothing was dropped
    --   superseded  the partition changed (rows erased) and was archived again, or records were
    --               added to the dropped month (lake_internal._archive_records) in a newer
    --               archive: file deleted (by lake.purge_archives in the second case)
    --   purged      older than archive_retention: file deleted
    status        text NOT NULL
                  CHECK (status IN ('verified', 'dropped', 'restored', 'failed', 'superseded',
                                    'purged')),
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    verified_at   timestamptz,
    dropped_at    timestamptz,
    restored_at   timestamptz,
    -- A restored month is not archived and dropped again before this ("now" of the restore plus
    -- the restore_hold setting).
    hold_until    timestamptz,
    purged_at     timestamptz
);
-- At most one archive stands for a partition that exists (verified or restored).
CREATE UNIQUE INDEX archives_live ON lake.archives (dataset, month)
    WHERE status IN ('verified', 'restored');
CREATE INDEX archives_month ON lake.archives (dataset, month);
ALTER TABLE lake.archives OWNER TO lake_owner;
GRANT SELECT ON lake.archives TO lake_admin;

COMMENT ON TABLE lake.archives IS
    'Archives of monthly partitions (gzip JSON Lines + manifest): written, verified, dropped, '
    'restored, purged.';

COMMENT ON COLUMN lake.archives.id IS 'The archive''s id.';
COMMENT ON COLUMN lake.archives.dataset IS 'The dataset.';
COMMENT ON COLUMN lake.archives.month IS 'First instant of the archived UTC month.';
COMMENT ON COLUMN lake.archives.partition IS 'The partition that was archived.';
COMMENT ON COLUMN lake.archives.path IS
    'The data file: <archive_dir>/<dataset>/<YYYY-MM>/<name>.jsonl.gz.';
COMMENT ON COLUMN lake.archives.manifest_path IS 'The manifest beside it (.manifest.json).';
COMMENT ON COLUMN lake.archives.rows IS 'Rows in the archive.';
COMMENT ON COLUMN lake.archives.sha256 IS 'SHA-256 (hex) of the uncompressed content.';
COMMENT ON COLUMN lake.archives.bytes IS 'Size of the compressed file.';
COMMENT ON COLUMN lake.archives.status IS
    'verified, dropped, restored, failed, superseded or purged.';
COMMENT ON COLUMN lake.archives.error IS 'Why it failed to verify.';
COMMENT ON COLUMN lake.archives.created_at IS 'When it was written.';
COMMENT ON COLUMN lake.archives.verified_at IS
    'When it was read back and found equal to the partition.';
COMMENT ON COLUMN lake.archives.dropped_at IS 'When the partition was dropped.';
COMMENT ON COLUMN lake.archives.restored_at IS 'When the month was restored from it.';
COMMENT ON COLUMN lake.archives.hold_until IS 'A restored month is not dropped again before this.';
COMMENT ON COLUMN lake.archives.purged_at IS
    'When the files were deleted (archive_retention, or superseded by a newer archive).';
