"""Our own identity on disk: certificate and key in the state folder, created on first start."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phonebridge.errors import StartupError
from phonebridge.protocol.certs import certificate_common_name
from phonebridge.protocol.identity import is_valid_device_id, new_device_id
from phonebridge.transports.lan.tls import create_certificate

CERT_FILE = "certificate.pem"
KEY_FILE = "private_key.pem"


class LocalIdentity:
    def __init__(self, device_id: str, cert_pem: bytes, key_pem: bytes, home: Path) -> None:
        self.device_id = device_id
        self.files = (str(home / CERT_FILE), str(home / KEY_FILE))
        """(certificate, key) paths: Python's ssl loads them from files (payload channels)."""
        self.cert_pem = cert_pem
        self.key_pem = key_pem
        self.cert_der = x509.load_pem_x509_certificate(cert_pem).public_bytes(
            serialization.Encoding.DER
        )


def load_or_create_identity(home: Path) -> LocalIdentity:
    """Read our certificate (CN = device id) or make a new one; explains unreadable files."""
    cert_path, key_path = home / CERT_FILE, home / KEY_FILE
    if cert_path.exists() and key_path.exists():
        try:
            cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
            cert_der = x509.load_pem_x509_certificate(cert_pem).public_bytes(
                serialization.Encoding.DER
            )
            serialization.load_pem_private_key(key_pem, password=None)
        except (OSError, ValueError) as exc:
            raise StartupError(
                f"cannot read our certificate in {home} ({exc}); restore it, or delete "
                f"{CERT_FILE} and {KEY_FILE} to become a new device (peers must pair again)"
            ) from None
        device_id = certificate_common_name(cert_der)
        if not is_valid_device_id(device_id):
            raise StartupError(f"{cert_path}: CN {device_id!r} is not a valid device id")
        return LocalIdentity(device_id, cert_pem, key_pem, home)
    device_id = new_device_id()
    cert_pem, key_pem = create_certificate(device_id)
    _write_private(key_path, key_pem)
    _write_private(cert_path, cert_pem)
    return LocalIdentity(device_id, cert_pem, key_pem, home)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
