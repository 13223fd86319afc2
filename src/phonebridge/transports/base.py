"""The two small interfaces every transport implements: a Link and what the core gets from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from phonebridge.protocol.framing import BadLine
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet


class Link(Protocol):
    """An established, encrypted connection to one device."""

    identity: Identity
    """The peer's final identity (the in-TLS one for protocol 8)."""
    certificate: bytes
    """The peer's certificate, DER."""
    address: tuple[str, int] | None
    """Where the peer can be reached again (host, TCP port), when known."""

    async def send(self, packet: Packet) -> None:
        """Write one packet; raises ConnectionError once the link is gone."""

    def packets(self) -> AsyncIterator[Packet | BadLine]:
        """Incoming packets until the link closes (a fatal framing error also ends it)."""

    async def close(self) -> None:
        """Close the link; idempotent."""

    async def fetch_payload(
        self, packet: Packet, write: Callable[[bytes], object],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Receive the payload `packet` announces into `write`; raises ConnectionError if short."""

    async def offer_payload(
        self, packet: Packet, size: int, chunks: AsyncIterator[bytes],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Send `packet` with a payload of `size` bytes from `chunks`; returns the bytes sent."""
