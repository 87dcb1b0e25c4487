-- BEFORE UPDATE row trigger of every user_data table: the new row version carries the
-- transaction that wrote it, as inserted rows do by their column default (xact_id), so a
-- checkpoint's snapshot tells whether a version existed at that point. Applications hold no
-- INSERT or UPDATE privilege on xact_id, so they cannot set it themselves. Updates are rare; the
-- insert path has no row trigger for this.
CREATE FUNCTION lake_internal._tg_row_version()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.xact_id := pg_current_xact_id();
    RETURN NEW;
END
$$;
ALTER FUNCTION lake_internal._tg_row_version() OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake_internal._tg_row_version() FROM PUBLIC;
