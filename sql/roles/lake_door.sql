-- Group role for the lake's network doors that verify their callers' TLS client certificates
-- themselves (`lake grpc --client-ca`): it may call lake.authenticate_peer_cert(), which takes
-- the door's word for the handshake. Grant it only to the login such a door uses (beside
-- lake_service), never to an application's: whoever holds it can name any service's certificate.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lake_door') THEN
        CREATE ROLE lake_door NOLOGIN;
    END IF;
END
$$;
