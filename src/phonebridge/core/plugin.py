"""What a plugin is: declared data (PluginInfo) plus one class that handles packets.

A plugin never sees a socket or SQL: it gets a PluginContext to send packets (filtered by the peer's
capabilities, PROTOCOL.md §8.0), publish events and reach desktop services.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from phonebridge.core.services import Services
from phonebridge.errors import DeviceError
from phonebridge.events import Event, EventBus
from phonebridge.protocol.packet import Packet
from phonebridge.transports.base import Link

if TYPE_CHECKING:
    from phonebridge.desktop.base import Desktop


@dataclass(frozen=True)
class PluginInfo:
    """The plugin as data: the capability lists and the router are computed from it."""

    name: str
    incoming: frozenset[str]
    """Packet types this plugin handles (we list them in incomingCapabilities)."""
    outgoing: frozenset[str]
    """Packet types this plugin sends (outgoingCapabilities)."""
    description: str = ""
    enabled_by_default: bool = True

    def supported_by(self, peer_incoming: frozenset[str], peer_outgoing: frozenset[str]) -> bool:
        """Load for a peer iff it can send us something we handle or receive what we send (§8.0).

        A peer with empty capability lists (the MTU-stripped UDP identity) supports everything.
        """
        if not peer_incoming and not peer_outgoing:
            return True
        return bool(self.incoming & peer_outgoing or self.outgoing & peer_incoming)


@dataclass
class PluginContext:
    device_id: str
    device_name: Callable[[], str]
    peer_incoming: Callable[[], frozenset[str]]
    send_packet: Callable[[Packet], Awaitable[None]]
    bus: EventBus
    desktop: Desktop
    services: Services = field(default_factory=lambda: Services())
    """Repositories and settings of the features (core/services.py)."""
    link: Callable[[], Link | None] = lambda: None
    """The device's current link (payload channels); plugins use fetch_payload/offer_payload."""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-device values the plugin exposes in the device's JSON (e.g. battery)."""
    on_state_change: Callable[[], None] = lambda: None

    def can_send(self, packet_type: str) -> bool:
        incoming = self.peer_incoming()
        return not incoming or packet_type in incoming

    def peer_lists(self, packet_type: str) -> bool:
        """Whether the peer names the type in its incomingCapabilities (for our own extensions,
        which a peer with empty lists must not get)."""
        return packet_type in self.peer_incoming()

    async def send(self, packet: Packet) -> bool:
        """Send if the peer lists the type as incoming; returns whether it was sent."""
        if not self.can_send(packet.type):
            logging.getLogger(__name__).debug(
                "%s does not accept %s; not sent", self.device_id, packet.type
            )
            return False
        await self.send_packet(packet)
        return True

    def _link(self) -> Link:
        link = self.link()
        if link is None:
            raise DeviceError("the device is not reachable")
        return link

    async def fetch_payload(
        self, packet: Packet, write: Callable[[bytes], object],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Receive the payload announced by `packet` (raises ConnectionError when incomplete)."""
        return await self._link().fetch_payload(packet, write, progress)

    async def offer_payload(
        self, packet: Packet, size: int, chunks: AsyncIterator[bytes],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Send `packet` with a payload (only if the peer accepts its type); returns bytes sent."""
        if not self.can_send(packet.type):
            raise DeviceError(f"the device does not accept {packet.type}")
        return await self._link().offer_payload(packet, size, chunks, progress)

    def publish(self, event_type: str, **data: Any) -> None:
        self.bus.publish(Event(event_type, self.device_id, data))

    def set_state(self, key: str, value: Any) -> None:
        self.state[key] = value
        self.on_state_change()


class Plugin:
    """Base class. Subclasses set `info` and implement `handle`; actions are plain methods."""

    info: ClassVar[PluginInfo]

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.log = logging.getLogger(f"phonebridge.plugins.{self.info.name}")

    async def on_connected(self) -> None:
        """The paired device's link is up (first time or again)."""

    async def handle(self, packet: Packet) -> None:
        """A packet of one of `info.incoming` arrived."""

    def close(self) -> None:
        """The device went away or was unpaired."""
