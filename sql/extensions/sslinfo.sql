-- sslinfo: what the TLS handshake of this connection established (the client certificate's
-- serial and issuer), from which lake.authenticate_cert() takes a service's identity.
CREATE EXTENSION IF NOT EXISTS sslinfo SCHEMA public;
