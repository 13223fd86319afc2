"""Battery, connectivity report, ping and find-my-phone, as the Android app sends and answers them."""

from __future__ import annotations

import logging

from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

from .feature import Handler, PhoneFeature

log = logging.getLogger(__name__)


class BasicsFeature(PhoneFeature):
    def __init__(self, phone) -> None:  # noqa: ANN001
        super().__init__(phone)
        self.battery = 76
        self.charging = False
        self.ringing = False
        self.pings: list[str | None] = []

    def handlers(self) -> dict[str, Handler]:
        return {types.PING: self._on_ping, types.FINDMYPHONE_REQUEST: self._on_findmyphone}

    async def on_paired(self) -> None:
        # What Android sends on connect (PROTOCOL.md §8.1), filtered by the desktop's capabilities;
        # clipboard.connect comes from demo/clipboard.py.
        await self.send_battery()
        await self.phone.send(Packet(types.CONNECTIVITY_REPORT, {
            "signalStrengths": {"6": {"networkType": "LTE", "signalStrength": 3}},
        }))
        await self.phone.send(Packet(types.MPRIS_REQUEST, {"requestPlayerList": True}))
        await self.phone.send(Packet(types.RUNCOMMAND_REQUEST, {"requestCommandList": True}))

    async def _on_ping(self, packet: Packet) -> None:
        message = packet.body.get("message")
        self.pings.append(message if isinstance(message, str) else None)
        log.info("demo phone got a ping: %s", message or "")

    async def _on_findmyphone(self, packet: Packet) -> None:
        self.ringing = not self.ringing  # a second request stops the ringer

    async def send_battery(self, charge: int | None = None, charging: bool | None = None) -> None:
        if charge is not None:
            self.battery = charge
        if charging is not None:
            self.charging = charging
        await self.phone.send(Packet(types.BATTERY, {
            "currentCharge": self.battery,
            "isCharging": self.charging,
            "thresholdEvent": 1 if self.battery <= 15 and not self.charging else 0,
        }))

    async def ping(self, message: str | None = None) -> None:
        await self.phone.send(Packet(types.PING, {"message": message} if message else {}))
