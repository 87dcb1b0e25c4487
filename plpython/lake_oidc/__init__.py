"""OpenID Connect ID tokens checked inside the lake (PyJWT with ``cryptography``).

Runs inside PostgreSQL (PL/Python) with Debian's python3-jwt. ``verify`` checks a token's
signature against its provider's keys (a JWKS the lake stores: the database does not fetch
anything), its issuer, audience, expiry and nonce, and returns either the verified claims or the
reason for the refusal. The reason is meant for the audit log; nothing here ever returns or logs
the token itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jwt

# Only asymmetric signatures: a provider's JWKS is public, so an HMAC "signed" with it (or no
# signature at all, alg "none") proves nothing.
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Clock skew tolerated between the provider and the database server, in seconds.
LEEWAY = 60
MAX_TOKEN_LENGTH = 16384


class Provider(NamedTuple):
    name: str
    issuer: str
    audiences: Sequence[str]
    jwks: Mapping[str, Any]


class Result(NamedTuple):
    """The outcome: claims when the token is valid, else reason (and what is known of it)."""

    claims: dict[str, Any] | None
    reason: str | None
    provider: str | None = None
    kid: str | None = None


def _refuse(reason: str, provider: str | None = None, kid: str | None = None) -> Result:
    return Result(None, reason, provider, kid)


def _find_key(jwks: Mapping[str, Any], kid: str | None, alg: str) -> Any | None:
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    elif len(keys) != 1:
        return None  # without a kid, only a JWKS of one key says which key it is
    for k in keys:
        if k.get("use", "sig") != "sig" or k.get("alg", alg) != alg:
            continue
        try:
            return jwt.PyJWK(k, algorithm=alg).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    return None


def verify(
    token: str,
    nonce: str | None,
    provider_for_issuer: Callable[[str], Provider | None],
) -> Result:
    """Check an ID token; provider_for_issuer maps its (unverified) iss to the stored provider."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return _refuse("malformed token")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return _refuse("malformed token")
    alg = header.get("alg")
    kid = header.get("kid")
    kid = kid[:200] if isinstance(kid, str) else None
    if alg not in ALGORITHMS:
        return _refuse(f"algorithm not allowed: {str(alg)[:20]}", kid=kid)
    iss = unverified.get("iss")
    provider = provider_for_issuer(iss) if isinstance(iss, str) else None
    if provider is None:
        return _refuse("unknown issuer", kid=kid)
    key = _find_key(provider.jwks, kid, alg)
    if key is None:
        return _refuse("unknown signing key", provider.name, kid)
    options: Any = {"require": ["iss", "sub", "aud", "exp", "iat"]}
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=list(provider.audiences),
            issuer=provider.issuer,
            leeway=LEEWAY,
            options=options,
        )
    except jwt.ExpiredSignatureError:
        return _refuse("expired", provider.name, kid)
    except jwt.ImmatureSignatureError:
        return _refuse("not yet valid", provider.name, kid)
    except jwt.InvalidAudienceError:
        return _refuse("wrong audience", provider.name, kid)
    except jwt.InvalidIssuerError:
        return _refuse("wrong issuer", provider.name, kid)
    except jwt.InvalidSignatureError:
        return _refuse("bad signature", provider.name, kid)
    except jwt.MissingRequiredClaimError as e:
        return _refuse(f"missing claim {e.claim}", provider.name, kid)
    except jwt.InvalidTokenError as e:
        return _refuse(f"invalid token: {type(e).__name__}", provider.name, kid)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        return _refuse("bad subject", provider.name, kid)
    if nonce is None or not nonce:
        return _refuse("no nonce expected by the caller", provider.name, kid)
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        return _refuse("nonce mismatch", provider.name, kid)
    return Result(claims, None, provider.name, kid)
