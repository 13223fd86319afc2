"""TLS for LAN links: our certificate, and a pyOpenSSL stream over asyncio sockets.

Why pyOpenSSL: on the main link the TCP client is the TLS *server* (role reversal, PROTOCOL.md §4.1)
and must ask for the peer's self-signed certificate without knowing it yet. Python's `ssl` cannot
request a client certificate without verifying it against a CA (cpython #52901), so an unknown
peer's certificate would abort the handshake. pyOpenSSL lets the verify callback accept any
certificate; we then check it ourselves: CN == deviceId always, and byte-equality with the pinned
certificate for paired devices (core/device_manager.py). With this every direction works for paired
and unpaired peers alike. The stream runs OpenSSL on memory BIOs, so asyncio owns the socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

READ_CHUNK = 256 * 1024
BIO_CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0
"""Android allows 10 s for the handshake (§3.3); KDE allows 1 s, which we meet by starting at once."""


def create_certificate(device_id: str) -> tuple[bytes, bytes]:
    """A new EC P-256 self-signed certificate with CN = device id (§4.2); returns (cert PEM, key PEM).

    Like KDE's: no extensions, random serial, valid from a year ago (clock skew) for ten years.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PhoneBridge"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PhoneBridge"),
            x509.NameAttribute(NameOID.COMMON_NAME, device_id),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(20), "big") >> 1)
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _accept_any_certificate(conn, cert, errnum, depth, ok) -> bool:  # noqa: ANN001
    # Trust is decided after the handshake from the certificate itself (module docstring).
    return True


def make_context(cert_pem: bytes, key_pem: bytes, *, server: bool) -> SSL.Context:
    """A context that always presents our certificate and always asks for the peer's."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # Android stops at TLS 1.2 (§4.3)
    ctx.use_certificate(x509.load_pem_x509_certificate(cert_pem))
    ctx.use_privatekey(serialization.load_pem_private_key(key_pem, password=None))
    ctx.check_privatekey()
    mode = SSL.VERIFY_PEER
    if server:
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    ctx.set_verify(mode, _accept_any_certificate)
    # KDE 22.12 offers ECDHE-RSA-AES128-SHA with RSA keys under TLS 1.2 (peers/NOTES.md).
    ctx.set_cipher_list(b"DEFAULT:ECDHE-RSA-AES128-SHA:@SECLEVEL=1")
    return ctx


class TlsStream:
    """TLS over an asyncio (reader, writer) pair. Reads and writes may run in separate tasks."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: SSL.Context,
        *,
        server: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = SSL.Connection(context, None)
        if server:
            self._conn.set_accept_state()
        else:
            self._conn.set_connect_state()
        self._closed = False

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writer

    def peer_certificate(self) -> bytes | None:
        cert = self._conn.get_peer_certificate(as_cryptography=True)
        return cert.public_bytes(serialization.Encoding.DER) if cert is not None else None

    def version(self) -> str:
        return self._conn.get_protocol_version_name()

    def _take_output(self) -> bytes:
        """Everything OpenSSL has queued for the socket (a short read means the BIO is empty)."""
        chunks = []
        while True:
            try:
                chunk = self._conn.bio_read(BIO_CHUNK)
            except SSL.WantReadError:
                break
            chunks.append(chunk)
            if len(chunk) < BIO_CHUNK:
                break
        return b"".join(chunks)

    async def _flush(self) -> None:
        out = self._take_output()
        if out:
            self._writer.write(out)
            await self._writer.drain()

    async def _fill(self) -> bool:
        data = await self._reader.read(READ_CHUNK)
        if not data:
            return False
        self._conn.bio_write(data)
        return True

    async def handshake(self, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        """Run the handshake; raises ConnectionError (closed, TLS failure) or TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    self._conn.do_handshake()
                    break
                except SSL.WantReadError:
                    await self._flush()
                    if not await self._fill():
                        raise ConnectionError("connection closed during TLS handshake") from None
                except SSL.Error as exc:
                    await self._flush_quietly()
                    raise ConnectionError(f"TLS handshake failed: {exc}") from None
            await self._flush()

    async def read(self) -> bytes:
        """Some decrypted bytes, or b"" once the peer closed."""
        while True:
            try:
                return self._conn.recv(READ_CHUNK)
            except SSL.WantReadError:
                await self._flush()  # e.g. session tickets or key updates
                if not await self._fill():
                    return b""
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError:
                return b""
            except SSL.Error as exc:
                raise ConnectionError(f"TLS error: {exc}") from None

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionError("TLS stream closed")
        view = memoryview(data)
        try:
            while view:
                sent = self._conn.send(view[:READ_CHUNK])
                view = view[sent:]
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {exc}") from None
        await self._flush()

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (ConnectionError, OSError):
            pass

    async def close(self) -> None:
        """Send close_notify (GSConnect needs it, NOTES.md) and close the socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.shutdown()
        except SSL.Error:
            pass
        await self._flush_quietly()
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (OSError, TimeoutError, ConnectionError):
            pass
