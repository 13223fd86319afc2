"""LanLink: an established TLS link; turns bytes into packets with the sans-I/O framer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.framing import BadLine, LineFramer
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet

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
