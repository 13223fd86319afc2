"""Certificate facts the protocol needs: the CN (= device id), fingerprints, the verification key.

Pure functions over DER bytes (PROTOCOL.md §4.2, §6.3); creating certificates is I/O-free too but
lives with the TLS code in transports/lan/tls.py.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from .errors import RemoteProtocolError


def certificate_common_name(cert_der: bytes) -> str:
    """The subject CN. Raises RemoteProtocolError if the certificate cannot be read or has none."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError as exc:
        raise RemoteProtocolError(f"unreadable peer certificate: {exc}") from None
    if not names:
        raise RemoteProtocolError("peer certificate has no common name")
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def public_key_der(cert_der: bytes) -> bytes:
    """DER SubjectPublicKeyInfo of the certificate's key."""
    cert = x509.load_der_x509_certificate(cert_der)
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def sha256_fingerprint(cert_der: bytes) -> str:
    """Colon-separated SHA-256 of the DER, as `kdeconnect-cli --encryption-info` shows it."""
    digest = hashlib.sha256(cert_der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def verification_key(mine_der: bytes, peer_der: bytes, peer_version: int, timestamp: int | None) -> str:
    """The 8-character code both sides show while pairing (§6.3).

    SHA-256 over the larger SPKI, then the smaller one, then (peer version >= 8 only) the request's
    timestamp in decimal; first 8 hex digits, upper case.
    """
    a, b = public_key_der(mine_der), public_key_der(peer_der)
    digest = hashlib.sha256(max(a, b) + min(a, b))
    if peer_version >= 8:
        digest.update(str(timestamp if timestamp is not None else 0).encode("ascii"))
    return digest.hexdigest()[:8].upper()
