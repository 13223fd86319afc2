"""Find my phone (PROTOCOL.md §8.10): ring the phone; a peer may ring us too."""

from __future__ import annotations

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet


class FindMyPhonePlugin(Plugin):
    info = PluginInfo(
        name="findmyphone",
        incoming=frozenset({types.FINDMYPHONE_REQUEST}),
        outgoing=frozenset({types.FINDMYPHONE_REQUEST}),
        description="Ring the device to find it",
    )

    async def handle(self, packet: Packet) -> None:
        self.ctx.publish("findmyphone.ringing")
        await self.ctx.desktop.notify(self.ctx.device_name(), "is looking for this computer")

    async def ring(self) -> bool:
        return await self.ctx.send(Packet(types.FINDMYPHONE_REQUEST, {}))
