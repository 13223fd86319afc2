"""Payload channels on the LAN (PROTOCOL.md §7): a separate TLS connection per payload.

Sender: listen on the first free port of 1739-1764, announce it in the packet's
`payloadTransferInfo`, accept ONE connection as TLS *server* (no role reversal here), write exactly
`payloadSize` bytes, close with a TLS close_notify (GSConnect deletes the file without it).
Receiver: connect to the main link's peer address at that port as TLS *client*, read to the end.
Both sides present their certificate and accept only the paired device's pinned certificate, so
Python's `ssl` does the job here (CERT_REQUIRED with the pin as the only trust anchor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable

from phonebridge.protocol.constants import PAYLOAD_PORT_MAX, PAYLOAD_PORT_MIN

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
ACCEPT_TIMEOUT = 30.0
"""How long a sender waits for the receiver to connect (KDE: 30 s, Android: 10 s)."""
IDLE_TIMEOUT = 30.0
"""A payload that sends nothing for this long is abandoned (a stalled peer)."""
CONNECT_TIMEOUT = 10.0


class PayloadError(ConnectionError):
    """The payload could not be moved completely; the message says why."""


def _context(purpose: ssl.Purpose, cert_file: str, key_file: str, pinned_der: bytes) -> ssl.SSLContext:
    server = purpose is ssl.Purpose.CLIENT_AUTH
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=pinned_der)
    return ctx


class PayloadTls:
    """TLS contexts for payloads with one paired device."""

    def __init__(self, cert_file: str, key_file: str, pinned_der: bytes) -> None:
        self.client = _context(ssl.Purpose.SERVER_AUTH, cert_file, key_file, pinned_der)
        self.server = _context(ssl.Purpose.CLIENT_AUTH, cert_file, key_file, pinned_der)


async def fetch(
    host: str,
    port: int,
    size: int,
    context: ssl.SSLContext,
    write: Callable[[bytes], object],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Receive a payload of `size` bytes (-1: until EOF) into `write`; returns the bytes received.

    Raises PayloadError when the connection fails, stalls for IDLE_TIMEOUT, or ends early. Bytes
    beyond `size` are dropped.
    """
    if not PAYLOAD_PORT_MIN <= port <= PAYLOAD_PORT_MAX:
        raise PayloadError(f"payload port {port} outside {PAYLOAD_PORT_MIN}-{PAYLOAD_PORT_MAX}")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=None,
                                    ssl_handshake_timeout=CONNECT_TIMEOUT, limit=CHUNK),
            CONNECT_TIMEOUT,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise PayloadError(f"cannot fetch payload from {host}:{port}: {exc or 'timed out'}") from None
    received = 0
    try:
        while size < 0 or received < size:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT)
            except TimeoutError:
                raise PayloadError(f"payload stalled after {received} bytes") from None
            except (OSError, ssl.SSLError) as exc:
                raise PayloadError(f"payload broke after {received} bytes: {exc}") from None
            if not data:
                break
            if size >= 0 and received + len(data) > size:
                data = data[: size - received]
            write(data)
            received += len(data)
            if progress is not None:
                progress(received)
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 2)
    if size >= 0 and received < size:
        raise PayloadError(f"payload ended after {received} of {size} bytes")
    return received


class PayloadServer:
    """Serves one payload: `await open()` gives the port to announce, `await send(chunks)` serves it."""

    def __init__(self, context: ssl.SSLContext, bind_host: str | None = None) -> None:
        self._context = context
        self._bind = bind_host
        self._server: asyncio.Server | None = None
        self._connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self.port: int | None = None

    async def open(self) -> int:
        loop = asyncio.get_running_loop()
        self._connected = loop.create_future()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._connected is None or self._connected.done():
                writer.close()  # one connection per announced payload
                return
            self._connected.set_result((reader, writer))

        last_error: OSError | None = None
        for port in range(PAYLOAD_PORT_MIN, PAYLOAD_PORT_MAX + 1):
            try:
                self._server = await asyncio.start_server(
                    accepted, self._bind, port, ssl=self._context,
                    ssl_handshake_timeout=CONNECT_TIMEOUT, ssl_shutdown_timeout=5,
                )
            except OSError as exc:
                last_error = exc
                continue
            self.port = port
            return port
        raise PayloadError(f"no free payload port in {PAYLOAD_PORT_MIN}-{PAYLOAD_PORT_MAX}: {last_error}")

    async def send(
        self,
        chunks: AsyncIterator[bytes],
        progress: Callable[[int], None] | None = None,
        accept_timeout: float = ACCEPT_TIMEOUT,
        size: int | None = None,
    ) -> int:
        """Wait for the receiver, write every chunk, close cleanly; returns the bytes sent.

        With `size`, a source that yields a different amount is an error (a file that changed).
        """
        assert self._connected is not None and self._server is not None
        try:
            try:
                _reader, writer = await asyncio.wait_for(self._connected, accept_timeout)
            except TimeoutError:
                raise PayloadError("the device did not fetch the payload") from None
        finally:
            self._server.close()
        sent = 0
        try:
            async for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
        except (OSError, ssl.SSLError) as exc:
            raise PayloadError(f"payload broke after {sent} bytes: {exc}") from None
        finally:
            writer.close()  # sends close_notify
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 6)
        if size is not None and sent != size:
            raise PayloadError(f"the source gave {sent} bytes, {size} were announced")
        return sent

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def bytes_chunks(data: bytes, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]
