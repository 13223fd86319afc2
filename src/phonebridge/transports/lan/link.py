"""LanLink: an established TLS link; turns bytes into packets with the sans-I/O framer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.framing import BadLine, LineFramer
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet, body_int

from . import payload
from .tls import TlsStream


class LanLink:
    """One TLS connection to a device; `close_reason` keeps the first cause of its end."""

    def __init__(
        self,
        stream: TlsStream,
        framer: LineFramer,
        identity: Identity,
        certificate: bytes,
        peer_host: str,
        address: tuple[str, int] | None,
        pending: list[Packet | BadLine] | None = None,
        *,
        local_host: str | None = None,
        identity_files: tuple[str, str] | None = None,
    ) -> None:
        self._stream = stream
        self._framer = framer
        self._pending = list(pending or [])
        self._write_lock = asyncio.Lock()
        self.identity = identity
        self.certificate = certificate
        self.peer_host = peer_host
        self.address = address
        self.close_reason: str | None = None
        self.closed = False
        self.tls_version = stream.version()
        self.local_host = local_host
        self._identity_files = identity_files
        self._payload_tls: payload.PayloadTls | None = None

    def __repr__(self) -> str:
        return f"<LanLink {self.identity.device_id} {self.peer_host} {self.tls_version}>"

    async def send(self, packet: Packet) -> None:
        line = packet.to_line(int(time.time() * 1000))
        async with self._write_lock:
            try:
                await self._stream.write(line)
            except (OSError, ConnectionError) as exc:
                self._note_close(f"write failed: {exc}")
                raise ConnectionError(str(exc)) from None

    def payload_tls(self) -> payload.PayloadTls:
        """TLS for payload channels: our certificate, and this link's peer certificate as the pin."""
        if self._payload_tls is None:
            if self._identity_files is None:
                raise payload.PayloadError("this link cannot carry payloads")
            cert_file, key_file = self._identity_files
            self._payload_tls = payload.PayloadTls(cert_file, key_file, self.certificate)
        return self._payload_tls

    async def fetch_payload(
        self, packet: Packet, write: Callable[[bytes], object],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Receive the payload announced by `packet` into `write` (PROTOCOL.md §7)."""
        port = body_int((packet.payload_transfer_info or {}).get("port"))
        if port is None or packet.payload_size is None:
            raise payload.PayloadError(f"{packet.type} announces no payload")
        return await payload.fetch(self.peer_host, port, packet.payload_size,
                                   self.payload_tls().client, write, progress)

    async def offer_payload(
        self, packet: Packet, size: int, chunks: AsyncIterator[bytes],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Send `packet` with a payload of `size` bytes taken from `chunks`; returns bytes sent.

        An empty payload is announced as Android and GSConnect do, `payloadSize: 0` with a port:
        GSConnect only creates a file it could download, and KDE and Android connect whenever a
        port is given. A receiver that does not connect within EMPTY_ACCEPT_TIMEOUT (one that
        reads §1 strictly) has the whole of an empty payload anyway.
        """
        # Protocol-8 receivers keep what reached them; KDE 22.12 (protocol 7) needs the long wait.
        server = payload.PayloadServer(self.payload_tls().server, self.local_host,
                                       close_when_acknowledged=self.identity.protocol_version >= 8)
        port = await server.open()
        try:
            if size == 0:
                await self.send(replace(packet, payload_size=None, payload_transfer_info=None,
                                        empty_payload_port=port))
                with contextlib.suppress(payload.PayloadError):
                    await server.send(chunks, progress, accept_timeout=payload.EMPTY_ACCEPT_TIMEOUT,
                                      size=0)
                return 0
            await self.send(replace(packet, payload_size=size, payload_transfer_info={"port": port}))
            return await server.send(chunks, progress, size=size)
        finally:
            server.close()

    async def packets(self) -> AsyncIterator[Packet | BadLine]:
        while self._pending:
            yield self._pending.pop(0)
        while not self.closed:
            try:
                data = await self._stream.read()
            except (OSError, ConnectionError) as exc:
                self._note_close(str(exc))
                break
            if not data:
                self._note_close("closed by peer")
                break
            try:
                items = self._framer.feed(data)
            except RemoteProtocolError as exc:
                self._note_close(str(exc))
                break
            for item in items:
                yield item
        await self.close()

    def _note_close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason

    async def close(self, reason: str | None = None) -> None:
        if reason:
            self._note_close(reason)
        if self.closed:
            return
        self.closed = True
        self._note_close("closed")
        await self._stream.close()
