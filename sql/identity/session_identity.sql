-- The identity of each backend, established only by the lake's own functions: lake.authenticate()
-- (an API key: a user, or a service) and lake.act_as() (an administrator, or an authenticated
-- service, acting for a user). lake.active_identity trusts a row only together with the random
-- nonce that the establishing function put in the session's lake.identity_nonce setting: a
-- client can SET that setting, but cannot guess a nonce, so SET alone never yields an identity.
-- A part with scope 'transaction' holds only in the transaction that established it (its
-- transaction id), so a pooled connection does not carry it into the next one. Revoking or
-- rotating a key, or disabling a user, deletes the rows they made. Unlogged: the identities die
-- with the server anyway.
CREATE UNLOGGED TABLE lake_internal.session_identity (
    backend_pid     integer PRIMARY KEY,
    nonce           uuid NOT NULL,
    -- Who authenticated with an API key (NULL after an administrator's act_as alone).
    principal       text COLLATE "C",
    principal_kind  text CHECK (principal_kind IN ('user', 'service')),
    key_id          text COLLATE "C",
    auth_scope      text CHECK (auth_scope IN ('transaction', 'session')),
    auth_xact       xid8,
    -- For whom: the user an administrator or a service acts for.
    acting_user     text COLLATE "C",
    act_scope       text CHECK (act_scope IN ('transaction', 'session')),
    act_xact        xid8,
    -- What the identity may do with user data: the key's scopes (read, write).
    scopes          text[] NOT NULL DEFAULT '{}',
    -- The key's expiry: the identity ends with it.
    expires_at      timestamptz,
    established_by  name NOT NULL DEFAULT session_user,
    established_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((principal IS NULL) = (principal_kind IS NULL)),
    CHECK (principal IS NOT NULL OR acting_user IS NOT NULL)
);
ALTER TABLE lake_internal.session_identity OWNER TO lake_owner;

COMMENT ON TABLE lake_internal.session_identity IS
    'Identity established per backend by the lake itself; read by lake_internal._identity().';
