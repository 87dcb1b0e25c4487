"""An OpenID Connect provider's keys, fetched on the client side for the lake (`lake oidc add`,
`lake oidc refresh`): the database checks ID tokens itself (lake.authenticate_oidc) but does not
reach the network, so the discovery document and the JWKS it names are fetched here and stored
with lake.set_oidc_provider. Standard library only (urllib); https, or http to a loopback host
(a local test issuer)."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from lake_client.errors import IdentityError

MAX_BYTES = 1 << 20


def _allowed(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or parts.hostname is None:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    if not _allowed(url):
        raise IdentityError(
            f"refusing to fetch {url!r}",
            hint="OIDC documents are fetched over https (http only from a loopback host)",
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # the scheme is checked above
            body = resp.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise IdentityError(
            f"cannot fetch {url}: {exc}", hint="check the issuer URL and the network"
        ) from exc
    if len(body) > MAX_BYTES:
        raise IdentityError(f"{url} sent more than {MAX_BYTES} bytes")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise IdentityError(f"{url} did not send JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise IdentityError(f"{url} did not send a JSON object")
    return doc


def fetch_keys(issuer: str, timeout: float = 10.0) -> dict[str, Any]:
    """The provider's JWKS, found through its discovery document, whose issuer must be exactly
    the one asked for (OpenID Connect Discovery 1.0, section 4.3)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = _get_json(url, timeout)
    if doc.get("issuer") != issuer:
        raise IdentityError(
            f"the discovery document at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}",
            hint="give the issuer exactly as its tokens' iss claim reads",
        )
    jwks_uri = doc.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise IdentityError(f"the discovery document at {url} has no jwks_uri")
    jwks = _get_json(jwks_uri, timeout)
    if not isinstance(jwks.get("keys"), list):
        raise IdentityError(f"{jwks_uri} is not a JWKS (no keys array)")
    return jwks
