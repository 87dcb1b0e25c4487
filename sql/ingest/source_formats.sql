-- The source formats a dataset may declare (lake.create_dataset option source_format); the
-- client reads them to know how to read a dataset's files.
CREATE VIEW lake.source_formats AS
SELECT f.name, f.description, f.reader, f.member_pattern
  FROM lake_internal._source_formats() AS f;
ALTER VIEW lake.source_formats OWNER TO lake_owner;
GRANT SELECT ON lake.source_formats TO lake_admin, lake_read, lake_write;

COMMENT ON VIEW lake.source_formats IS
    'Source formats a dataset may declare: exports whose records the lake converts on ingest.';
COMMENT ON COLUMN lake.source_formats.name IS 'The format''s name (create_dataset option).';
COMMENT ON COLUMN lake.source_formats.description IS 'What the format is.';
COMMENT ON COLUMN lake.source_formats.reader IS
    'How the client reads a file: json, jsonl, items:<key> (a top-level array) or xml:<tag>.';
COMMENT ON COLUMN lake.source_formats.member_pattern IS
    'Regular expression of the zip member paths (e.g. in a Google Takeout zip) of this format.';
