"""Battery of the peer (PROTOCOL.md §8.3): received on change; asked for on connect where it helps.

Android and KDE send their level on connect and on change; only GSConnect still understands the
deprecated `battery.request`, so we send it only to peers that list it as incoming.
"""

from __future__ import annotations

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_bool, body_int


class BatteryPlugin(Plugin):
    info = PluginInfo(
        name="battery",
        incoming=frozenset({types.BATTERY}),
        outgoing=frozenset({types.BATTERY_REQUEST}),
        description="Show the device's battery level",
    )

    async def on_connected(self) -> None:
        if types.BATTERY_REQUEST in self.ctx.peer_incoming():
            await self.ctx.send(Packet(types.BATTERY_REQUEST, {"request": True}))

    async def handle(self, packet: Packet) -> None:
        charge = body_int(packet.body.get("currentCharge"))
        if charge is None or not -1 <= charge <= 100:
            self.log.info("%s: ignoring battery packet without a valid currentCharge", self.ctx.device_id)
            return
        battery = None if charge < 0 else {
            "charge": charge,
            "charging": body_bool(packet.body.get("isCharging")),
        }
        low = body_int(packet.body.get("thresholdEvent"), 0) == 1
        self.ctx.set_state("battery", battery)
        self.ctx.publish("battery.changed", battery=battery)
        if low and battery and not battery["charging"]:
            await self.ctx.desktop.notify(self.ctx.device_name(), f"Battery low: {charge}%")
