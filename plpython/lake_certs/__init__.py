"""The lake's certificate authority: keys and X.509 certificates, made with ``cryptography``.

One home for the rules of the lake's certificates, used from two places: inside PostgreSQL
(PL/Python, Debian's python3-cryptography 38 or newer), where a pg_cron job renews the servers'
certificates and issues the services' ones, and in the client (``lake up``, ``lake certs``), which
loads this file by path (``lake_client.certs``) because the CA and the first server certificate
must exist before any server runs. Pure: it makes and reads PEM bytes; callers write the files.

Keys are ECDSA P-256: every TLS 1.3 stack speaks it, and its handshakes are cheap.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 30  # the specification: TLS certificates rotate every 30 days
SERVICE_DAYS = 7  # and the services' (mTLS) certificates every 7
RENEW_FRACTION = 1 / 3  # renewed when a third of the life is left
ORGANIZATION = "Datapunk Lake"
# Certificates start this long before "now": a peer whose clock is a little behind still
# accepts a certificate issued a moment ago.
BACKDATE = dt.timedelta(minutes=5)


class Pair(NamedTuple):
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


class Info(NamedTuple):
    """What the lake needs to know of a certificate."""

    serial: int
    common_name: str
    issuer: str  # RFC 4514, as x509 renders it
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime
    fingerprint: str  # SHA-256, hex
    is_ca: bool


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_ca(common_name: str, *, days: int = CA_DAYS, now: dt.datetime | None = None) -> Pair:
    """A new self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now(now) - BACKDATE
    name = _name(common_name, "certificate authority")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: Pair,
    common_name: str,
    *,
    days: int,
    server_names: Iterable[str] = (),
    client: bool = False,
    now: dt.datetime | None = None,
) -> Pair:
    """A new key and a certificate for it signed by ``ca``, valid ``days``.

    ``server_names`` (host names and IP addresses) make it a server certificate for those names;
    ``client`` makes it a client certificate (a service's, for mTLS), whose common name is the
    service's name. A certificate may be both.
    """
    names = list(server_names)
    if not names and not client:
        raise ValueError("a certificate must be for a server (server_names) or a client")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA's key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now(now) - BACKDATE
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if names else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, "service" if client else "server"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _utc(cert: x509.Certificate, which: str) -> dt.datetime:
    # cryptography 42 added the *_utc properties; Debian 12's 38 has only the naive ones.
    aware = getattr(cert, f"{which}_utc", None)
    if isinstance(aware, dt.datetime):
        return aware
    naive: dt.datetime = getattr(cert, which)
    return naive.replace(tzinfo=dt.UTC)


def info(cert_pem: bytes) -> Info:
    """The serial, names, validity and fingerprint of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return Info(
        serial=cert.serial_number,
        common_name=str(cns[0].value) if cns else "",
        issuer=cert.issuer.rfc4514_string(),
        not_before=_utc(cert, "not_valid_before"),
        not_after=_utc(cert, "not_valid_after"),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        is_ca=is_ca,
    )


def openssl_dn(name: x509.Name) -> str:
    """A name as OpenSSL's one-line form writes it, which is what sslinfo's ssl_issuer_dn()
    returns: ``/O=Datapunk Lake/OU=certificate authority/CN=Datapunk Lake CA``."""
    return "".join(
        f"/{attr.rfc4514_attribute_name}={attr.value!s}" for rdn in name.rdns for attr in rdn
    )


def server_names(cert_pem: bytes) -> list[str]:
    """The host names and IP addresses a certificate is for (its subjectAltName), as ``issue``
    takes them: a renewal keeps them."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.DNSName)] + [
        str(n) for n in san.get_values_for_type(x509.IPAddress)
    ]


def client_usage(cert_pem: bytes) -> bool:
    """Whether a certificate may also authenticate a client (extended key usage clientAuth), as
    a Redis Cluster node's does, which it presents to the other nodes: a renewal keeps that."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def renewal_due(cert_pem: bytes, *, now: dt.datetime | None = None) -> bool:
    """Whether a third or less of the certificate's life is left (or it is not valid now)."""
    i = info(cert_pem)
    moment = _now(now)
    if moment < i.not_before:
        return True
    return i.not_after - moment <= (i.not_after - i.not_before) * RENEW_FRACTION


def signed_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    """Whether ``cert_pem`` names the CA as its issuer and carries a valid signature of its key."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    if cert.issuer != ca_cert.subject:
        return False
    public = ca_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
        return False
    try:
        public.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
    except Exception:  # cryptography raises InvalidSignature; anything else is as bad
        return False
    return True
