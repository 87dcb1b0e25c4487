-- The checkpoints of a dataset that lake.rollback accepts now: its 5 newest.
CREATE FUNCTION lake.rollback_targets(dataset text)
RETURNS SETOF lake.checkpoints
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.* FROM lake.checkpoints AS c
     WHERE c.dataset = rollback_targets.dataset
     ORDER BY c.id DESC
     LIMIT 5
$$;
ALTER FUNCTION lake.rollback_targets(text) OWNER TO lake_owner;
REVOKE ALL ON FUNCTION lake.rollback_targets(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake.rollback_targets(text) TO lake_admin;

COMMENT ON FUNCTION lake.rollback_targets(text) IS
    'The checkpoints lake.rollback accepts now: the dataset''s 5 newest.';
