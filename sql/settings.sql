-- The schema is built with a search_path that holds only pg_catalog: every name in the files
-- that follow is a built-in or schema-qualified, whoever runs the build and whatever their
-- search_path (pgspot checks this with --append over the manifest).
SET LOCAL search_path = pg_catalog, pg_temp;
