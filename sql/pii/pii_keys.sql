-- The key that encrypts the pii_fields of every dataset (pgcrypto, OpenPGP symmetric, AES-256).
-- Made at random when the lake is created; readable by its owner only, so by the lake's own
-- functions and no application role. (It lives in the database, so whoever holds a superuser
-- login or a full backup holds it too: an external key manager is not part of the lake yet.)
CREATE TABLE lake_internal.pii_keys (
    id          smallint PRIMARY KEY,
    key         text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO lake_internal.pii_keys (id, key) VALUES (1, encode(public.gen_random_bytes(32), 'base64'));
ALTER TABLE lake_internal.pii_keys OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.pii_keys IS
    'The key that seals datasets'' pii_fields (pgcrypto); no application role reads it.';
