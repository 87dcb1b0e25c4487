-- The keys that encrypt the pii_fields of every dataset (pgcrypto, OpenPGP symmetric, AES-256),
-- one row per key version. The newest key seals everything sealed from now on; each sealed value
-- names its key (lake_internal._pii_key_of), so older ones still open while the pii_keys job
-- re-encrypts them in batches with the newest. A key is retired (its material erased) once no
-- row uses it any more. The first key is made at random when the lake is created, the next by
-- lake.rotate_pii_key() or the job (every pii_key_rotation, 90 days by default). Readable by its
-- owner only, so by the lake's own functions and no application role. (They live in the
-- database, so whoever holds a superuser login or a full backup holds them too: an external key
-- manager is not part of the lake yet.)
CREATE TABLE lake_internal.pii_keys (
    id          smallint PRIMARY KEY CHECK (id > 0),
    key         text,  -- NULL once retired
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    CHECK ((key IS NULL) = (retired_at IS NOT NULL))
);
INSERT INTO lake_internal.pii_keys (id, key) VALUES (1, encode(public.gen_random_bytes(32), 'base64'));
ALTER TABLE lake_internal.pii_keys OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.pii_keys IS
    'The key versions that seal datasets'' pii_fields (pgcrypto); no application role reads them.';
