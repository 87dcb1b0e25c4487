-- The services' client certificates (mTLS), signed by the lake's CA, valid 7 days (lake_certs
-- SERVICE_DAYS): a connection that presents one and calls lake.authenticate_cert() becomes that
-- service, which may then act for users as a service's API key allows. Rows are written only by
-- the lake's functions (issue, renew, revoke); only the certificate is known to its holder, its
-- key is handed out once and never stored. The serial is what sslinfo's ssl_client_serial()
-- reads from the handshake; issuer is in sslinfo's ssl_issuer_dn() form.
CREATE TABLE lake.service_certs (
    serial       numeric PRIMARY KEY CHECK (serial > 0),
    service      text COLLATE "C" NOT NULL REFERENCES lake.users (id),
    issuer       text NOT NULL,
    fingerprint  text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    scopes       text[] NOT NULL
                 CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']),
    not_before   timestamptz NOT NULL,
    not_after    timestamptz NOT NULL CHECK (not_after > not_before),
    issued_at    timestamptz NOT NULL DEFAULT now(),
    issued_by    name NOT NULL DEFAULT session_user,
    -- The certificate whose holder asked for this one (lake.renew_service_cert()).
    renewed_from numeric REFERENCES lake.service_certs (serial),
    revoked_at   timestamptz
);
CREATE INDEX service_certs_service_idx ON lake.service_certs (service);
ALTER TABLE lake.service_certs OWNER TO lake_owner;
ALTER TABLE lake.service_certs ENABLE ROW LEVEL SECURITY;
ALTER TABLE lake.service_certs FORCE ROW LEVEL SECURITY;
-- The lake's functions (as lake_owner) keep it; administrators read it.
CREATE POLICY service_certs_keeper ON lake.service_certs TO lake_owner USING (true) WITH CHECK (true);
CREATE POLICY service_certs_read ON lake.service_certs FOR SELECT TO lake_admin USING (true);
GRANT SELECT ON lake.service_certs TO lake_admin;

COMMENT ON TABLE lake.service_certs IS
    'Services'' client certificates (mTLS) issued by the lake''s CA; lake.authenticate_cert() '
    'checks a connection''s certificate here.';
COMMENT ON COLUMN lake.service_certs.serial IS
    'The certificate''s serial number (as ssl_client_serial() reads it).';
COMMENT ON COLUMN lake.service_certs.service IS 'The service (lake.users, kind service) it identifies.';
COMMENT ON COLUMN lake.service_certs.issuer IS 'The issuing CA''s name, as ssl_issuer_dn() reads it.';
COMMENT ON COLUMN lake.service_certs.fingerprint IS 'SHA-256 of the certificate, hex.';
COMMENT ON COLUMN lake.service_certs.scopes IS 'What the service may do for users: read and/or write.';
COMMENT ON COLUMN lake.service_certs.not_before IS 'Valid from.';
COMMENT ON COLUMN lake.service_certs.not_after IS 'Valid until (7 days after not_before).';
COMMENT ON COLUMN lake.service_certs.issued_at IS 'When the lake issued it.';
COMMENT ON COLUMN lake.service_certs.issued_by IS 'The database role that issued or renewed it.';
COMMENT ON COLUMN lake.service_certs.renewed_from IS
    'The certificate that renewed itself into this one (NULL: issued by an administrator).';
COMMENT ON COLUMN lake.service_certs.revoked_at IS 'When it was revoked (NULL: not revoked).';
