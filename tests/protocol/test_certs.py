"""Certificate facts (PROTOCOL.md §4.2) and the verification key (§6.3)."""

from __future__ import annotations

import datetime as dt
import hashlib


import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import crypto

from helpers import PeerCert
from phonebridge.protocol.certs import (
    certificate_common_name,
    public_key_der,
    sha256_fingerprint,
    verification_key,
)
from phonebridge.protocol.errors import RemoteProtocolError


def self_signed(key, names: list[x509.NameAttribute]) -> bytes:  # noqa: ANN001
    name = x509.Name(names)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .sign(key, hashes.SHA512())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def certs() -> list[bytes]:
    ec_certs = [PeerCert().cert_der for _ in range(3)]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    legacy = self_signed(rsa_key, [
        x509.NameAttribute(NameOID.COMMON_NAME, "740bd4b9_b418_4ee4_97d6_caf1da8151be"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KDE"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Kde connect"),
    ])
    return [*ec_certs, legacy]


def spki_openssl(cert_der: bytes) -> bytes:
    """SubjectPublicKeyInfo DER, extracted with OpenSSL rather than the code under test."""
    cert = crypto.load_certificate(crypto.FILETYPE_ASN1, cert_der)
    return crypto.dump_publickey(crypto.FILETYPE_ASN1, cert.get_pubkey())


def reference_key(mine: bytes, peer: bytes, peer_version: int, ts: int | None) -> str:
    """PROTOCOL.md §6.3, written out independently."""
    a, b = spki_openssl(mine), spki_openssl(peer)
    first, second = (a, b) if a > b else (b, a)
    data = first + second
    if peer_version >= 8:
        data += str(ts).encode("ascii")
    return hashlib.sha256(data).hexdigest()[:8].upper()


# -- certificates -----------------------------------------------------------------------------------------


def test_common_name_is_the_device_id():
    peer = PeerCert()
    assert certificate_common_name(peer.cert_der) == peer.device_id


def test_common_name_of_legacy_rsa_certificate(certs):
    assert certificate_common_name(certs[-1]) == "740bd4b9_b418_4ee4_97d6_caf1da8151be"


def test_certificate_without_common_name_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed(key, [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN")])
    with pytest.raises(RemoteProtocolError):
        certificate_common_name(der)


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 10, b"-----BEGIN CERTIFICATE-----", b"\x30\x03\x02\x01"])
def test_unreadable_certificate_is_a_remote_protocol_error(garbage):
    with pytest.raises(RemoteProtocolError):
        certificate_common_name(garbage)


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_random_bytes_as_certificate(garbage):
    with pytest.raises(RemoteProtocolError):
        certificate_common_name(garbage)


def test_public_key_der_is_the_spki(certs):
    for der in certs:
        assert public_key_der(der) == spki_openssl(der)


def test_sha256_fingerprint_format():
    der = PeerCert().cert_der
    fingerprint = sha256_fingerprint(der)
    pairs = fingerprint.split(":")
    assert len(pairs) == 32 and all(len(p) == 2 for p in pairs)
    assert fingerprint == fingerprint.upper()
    assert bytes.fromhex(fingerprint.replace(":", "")) == hashlib.sha256(der).digest()


# -- verification key --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version,ts", [(8, 1795653568), (8, 1724316000), (9, 0), (7, None),
                                        (7, 1795653568)])
def test_verification_key_matches_the_formula(certs, version, ts):
    for mine in certs:
        for peer in certs:
            if mine is peer:
                continue
            expected = reference_key(mine, peer, version, ts)
            assert verification_key(mine, peer, version, ts) == expected


def test_verification_key_is_symmetric(certs):
    for version, ts in [(8, 1795653568), (7, None)]:
        for mine in certs:
            for peer in certs:
                assert verification_key(mine, peer, version, ts) == verification_key(
                    peer, mine, version, ts)


def test_verification_key_shape(certs):
    key = verification_key(certs[0], certs[1], 8, 1795653568)
    assert len(key) == 8 and key == key.upper()
    int(key, 16)


def test_timestamp_counts_only_from_version_8(certs):
    mine, peer = certs[0], certs[1]
    assert verification_key(mine, peer, 8, 1795653568) != verification_key(mine, peer, 8, 1795653569)
    assert verification_key(mine, peer, 7, 1795653568) == verification_key(mine, peer, 7, 1795653569)
    assert verification_key(mine, peer, 7, 1795653568) == verification_key(mine, peer, 7, None)
    # v7: SHA-256 over the two keys only.
    a, b = spki_openssl(mine), spki_openssl(peer)
    assert verification_key(mine, peer, 7, None) == hashlib.sha256(
        max(a, b) + min(a, b)).hexdigest()[:8].upper()


def test_verification_key_depends_on_both_keys(certs):
    keys = {verification_key(certs[0], other, 8, 1795653568) for other in certs[1:]}
    assert len(keys) == len(certs) - 1


@settings(max_examples=50)
@given(ts=st.integers(min_value=0, max_value=2**40), version=st.sampled_from([7, 8]))
def test_verification_key_formula_for_any_timestamp(certs, ts, version):
    mine, peer = certs[0], certs[2]
    assert verification_key(mine, peer, version, ts) == reference_key(mine, peer, version, ts)
