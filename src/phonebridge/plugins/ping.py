"""Ping, both ways (PROTOCOL.md §8.2): a received ping becomes a desktop notification."""

from __future__ import annotations

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet


class PingPlugin(Plugin):
    info = PluginInfo(
        name="ping",
        incoming=frozenset({types.PING}),
        outgoing=frozenset({types.PING}),
        description="Send and receive pings",
    )

    async def handle(self, packet: Packet) -> None:
        message = packet.body.get("message")
        message = message if isinstance(message, str) else None
        self.ctx.publish("ping.received", message=message)
        await self.ctx.desktop.notify(self.ctx.device_name(), message or "Ping!")

    async def ping(self, message: str | None = None) -> bool:
        body = {"message": message} if message else {}
        return await self.ctx.send(Packet(types.PING, body))
