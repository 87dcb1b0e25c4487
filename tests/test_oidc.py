"""OpenID Connect sign-in that the lake checks itself (lake.authenticate_oidc): a local issuer
whose RSA keys the test generates signs ID tokens; the database verifies them with PyJWT in
PL/Python against the provider's stored JWKS. The tokens are built here with `cryptography`
alone (base64url JSON, RS256), so the test does not sign with the library that verifies."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lake_client.client import Lake
from lake_client.errors import AuthenticationFailed
from tests.conftest import APP_ROLE, seal

Conn = psycopg.Connection[tuple[object, ...]]

ISSUER = "https://idp.test.invalid"
AUDIENCE = "lake-web-client"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    """An OIDC provider's signing keys: a JWKS of the public halves, and tokens signed here."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}

    def new_key(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            pub = key.public_key().public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "kid": kid,
                    "use": "sig",
                    "alg": "RS256",
                    "n": uint(pub.n),
                    "e": uint(pub.e),
                }
            )
        return {"keys": keys}


def claims(
    sub: str = "10769150350006150715113082367", nonce: str = "n-0S6_WzA2Mj", **kw: Any
) -> dict[str, Any]:
    now = int(time.time())
    c = {"iss": ISSUER, "sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + 3600, "nonce": nonce}
    c.update(kw)
    return c


def sign(key: rsa.RSAPrivateKey, kid: str, body: dict[str, Any], alg: str = "RS256") -> str:
    head = b64json({"alg": alg, "kid": kid, "typ": "JWT"}) + "." + b64json(body)
    sig = key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    return head + "." + b64url(sig)


@pytest.fixture
def idp(conn: Conn) -> Issuer:
    """The local issuer 'testidp' with one key, registered; alice linked to its subject."""
    issuer = Issuer()
    issuer.new_key("k1")
    conn.execute(
        "SELECT lake.set_oidc_provider('testidp', %s, ARRAY[%s, 'other-client-of-ours'], %s)",
        [ISSUER, AUDIENCE, json.dumps(issuer.jwks())],
    )
    conn.execute("SELECT lake.create_user('alice', 'Alice')")
    conn.execute(
        "SELECT lake.link_oauth('testidp', '10769150350006150715113082367', 'alice', ARRAY['read'])"
    )
    return issuer


def sign_in(app: Conn, token: str, nonce: str = "n-0S6_WzA2Mj") -> object:
    row = app.execute("SELECT lake.authenticate_oidc(%s, %s, 'session')", [token, nonce]).fetchone()
    assert row is not None
    return row[0]


def identity(app: Conn) -> tuple[object, ...] | None:
    return app.execute(
        "SELECT user_id, principal, key_id, scopes FROM lake.current_identity()"
    ).fetchone()


def failures(conn: Conn) -> list[object]:
    seal(conn)
    rows = conn.execute(
        "SELECT detail->>'reason' FROM lake.audit_log"
        " WHERE action = 'auth.failure' AND detail->>'method' = 'oidc' ORDER BY id"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_valid_id_token_signs_in_its_linked_user_with_the_links_scopes(conn, idp, as_role):
    app = as_role(APP_ROLE)
    assert sign_in(app, sign(idp.keys["k1"], "k1", claims())) == "alice"
    assert identity(app) == ("alice", "alice", None, ["read"])
    # The other configured audience is accepted too.
    assert sign_in(app, sign(idp.keys["k1"], "k1", claims(aud="other-client-of-ours"))) == "alice"
    seal(conn)
    row = conn.execute(
        "SELECT lake_user, detail->>'provider', detail->>'kid', detail->'scopes'"
        " FROM lake.audit_log"
        " WHERE action = 'auth.success' AND detail->>'method' = 'oidc' ORDER BY id LIMIT 1"
    ).fetchone()
    assert row == ("alice", "testidp", "k1", ["read"])


def test_refused_tokens_give_no_identity_and_are_audited_without_the_token(conn, idp, as_role):
    app = as_role(APP_ROLE)
    k1 = idp.keys["k1"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    cases = {
        "expired": sign(k1, "k1", claims(iat=now - 7200, exp=now - 3600)),
        "wrong audience": sign(k1, "k1", claims(aud="someone-elses-client")),
        "unknown signing key": sign(stranger, "k-unknown", claims()),
        "bad signature": sign(stranger, "k1", claims()),  # a known kid, another key
        "algorithm not allowed: none": b64json({"alg": "none", "kid": "k1"})
        + "."
        + b64json(claims())
        + ".",
        "unknown issuer": sign(k1, "k1", claims(iss="https://evil.test.invalid")),
        "nonce mismatch": sign(k1, "k1", claims(nonce="replayed")),
        "no lake user linked": sign(k1, "k1", claims(sub="someone-not-linked")),
        "malformed token": "not.a.jwt",
    }
    for reason, token in cases.items():
        # Signed in first, so that a refusal is seen to drop the identity the session had.
        assert sign_in(app, sign(k1, "k1", claims())) == "alice"
        assert sign_in(app, token) is None, reason
        assert identity(app) is None, reason
    assert failures(conn) == list(cases)
    log = conn.execute("SELECT string_agg(t::text, ' ') FROM lake.audit_log AS t").fetchone()
    assert log is not None and isinstance(log[0], str)
    for token in cases.values():
        for part in token.split("."):
            assert len(part) < 10 or part not in log[0], "a token is in the audit log"


def test_an_hmac_token_keyed_with_the_public_jwks_is_refused(conn, idp, as_role):
    """The classic key-confusion attack: HS256 with the provider's public key as the secret."""
    import hashlib
    import hmac

    app = as_role(APP_ROLE)
    secret = json.dumps(idp.jwks()["keys"][0]).encode()
    head = b64json({"alg": "HS256", "kid": "k1"}) + "." + b64json(claims())
    token = head + "." + b64url(hmac.new(secret, head.encode(), hashlib.sha256).digest())
    assert sign_in(app, token) is None
    assert failures(conn) == ["algorithm not allowed: HS256"]


def test_the_nonce_is_required(conn, idp, as_role):
    app = as_role(APP_ROLE)
    row = app.execute(
        "SELECT lake.authenticate_oidc(%s, NULL)", [sign(idp.keys["k1"], "k1", claims())]
    ).fetchone()
    assert row == (None,)
    assert failures(conn) == ["no nonce expected by the caller"]


def test_a_provider_key_rotation_is_taken_after_a_refresh(conn, idp, as_role):
    app = as_role(APP_ROLE)
    old = idp.keys.pop("k1")
    idp.new_key("k2")
    token = sign(idp.keys["k2"], "k2", claims())
    assert sign_in(app, token) is None  # the lake still holds k1 only
    conn.execute(
        "SELECT lake.set_oidc_provider('testidp', %s, ARRAY[%s], %s)",
        [ISSUER, AUDIENCE, json.dumps(idp.jwks())],
    )
    assert sign_in(app, token) == "alice"
    assert sign_in(app, sign(old, "k1", claims())) is None  # the retired key no longer signs
    assert failures(conn) == ["unknown signing key", "unknown signing key"]


def test_disabled_users_and_bad_providers_are_refused(conn, idp, as_role):
    app = as_role(APP_ROLE)
    conn.execute("SELECT lake.set_user_enabled('alice', false)")
    assert sign_in(app, sign(idp.keys["k1"], "k1", claims())) is None
    assert failures(conn) == ["disabled user"]
    private = idp.jwks()
    private["keys"][0]["d"] = "c2VjcmV0"
    with pytest.raises(psycopg.Error) as err:
        conn.execute(
            "SELECT lake.set_oidc_provider('testidp', %s, ARRAY[%s], %s)",
            [ISSUER, AUDIENCE, json.dumps(private)],
        )
    assert err.value.sqlstate == "LK012"
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT lake.link_oauth('nosuchidp', '1', 'alice')")


def test_applications_cannot_configure_providers(idp, as_role):
    app = as_role(APP_ROLE)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "SELECT lake.set_oidc_provider('testidp', %s, ARRAY['x'], '{\"keys\": []}')", [ISSUER]
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT * FROM lake.oidc_providers")


@pytest.fixture
def served(idp: Issuer) -> Iterator[str]:
    """The issuer's discovery document and JWKS over HTTP on a loopback port (a real server)."""
    state: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = state["issuer"]
            docs = {
                "/.well-known/openid-configuration": {"issuer": base, "jwks_uri": base + "/jwks"},
                "/jwks": idp.jwks(),
            }
            body = json.dumps(docs[self.path]).encode() if self.path in docs else None
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["issuer"] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["issuer"]
    server.shutdown()
    thread.join()


def test_lake_oidc_add_and_a_client_that_refreshes_once_on_an_unknown_key(
    db: str, conn, idp: Issuer, served: str
) -> None:
    env = {**os.environ, "LAKE_DSN": db, "NO_COLOR": "1"}
    cli = [sys.executable, "-m", "lake_client.cli", "oidc"]
    add = subprocess.run(
        [*cli, "add", "local", served, "--audience", AUDIENCE, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)[0]["keys"] == 1
    conn.execute("SELECT lake.link_oauth('local', 'carol-sub', 'alice')")

    def token(kid: str) -> str:
        return sign(idp.keys[kid], kid, claims(sub="carol-sub", iss=served))

    with Lake(db) as admin, Lake(db) as app:
        assert app.authenticate_oidc(token("k1"), "n-0S6_WzA2Mj") == "alice"
        idp.new_key("k2")  # the provider rotates: tokens now signed with k2
        with pytest.raises(AuthenticationFailed) as err:
            app.authenticate_oidc(token("k2"), "n-0S6_WzA2Mj")  # no refresh given
        assert err.value.hint is not None and "refresh" in err.value.hint
        refreshes: list[str] = []

        def refresh() -> None:
            refreshes.append("local")
            admin.refresh_oidc_provider("local")

        assert app.authenticate_oidc(token("k2"), "n-0S6_WzA2Mj", refresh=refresh) == "alice"
        assert refreshes == ["local"]
        # Another refusal (a wrong nonce) is no reason to fetch keys.
        with pytest.raises(AuthenticationFailed):
            app.authenticate_oidc(token("k2"), "other", refresh=refresh)
        assert refreshes == ["local"]
    listed = subprocess.run(
        [*cli, "list", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert [(p["name"], p["keys"]) for p in json.loads(listed.stdout)] == [
        ("local", 2),
        ("testidp", 1),
    ]
    bad = subprocess.run(
        [*cli, "add", "other", "http://example.invalid", "--audience", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "https" in bad.stderr and "Traceback" not in bad.stderr
