-- The lake user established for each backend by lake.act_as() (and, later, lake.authenticate()).
-- lake.current_user_id() trusts a row only together with the random nonce that the
-- establishing function put in the session's lake.identity_nonce setting: a client can SET that
-- setting, but cannot guess a nonce, so SET alone never changes the identity. Unlogged: the
-- identities die with the server anyway.
CREATE UNLOGGED TABLE lake.session_identity (
    backend_pid     integer PRIMARY KEY,
    nonce           uuid NOT NULL,
    -- transaction: valid only in the transaction that established it (xact_start = now());
    -- session: valid until lake.reset_identity() or the end of the session.
    scope           text NOT NULL CHECK (scope IN ('transaction', 'session')),
    xact_start      timestamptz NOT NULL,
    user_id         text NOT NULL,
    established_by  name NOT NULL DEFAULT session_user,
    established_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE lake.session_identity OWNER TO lake_owner;

COMMENT ON TABLE lake.session_identity IS
    'Identity established per backend by the lake itself; read by lake.current_user_id().';
