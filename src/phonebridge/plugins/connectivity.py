"""Cellular signal of the phone (PROTOCOL.md §8.11), one entry per SIM subscription."""

from __future__ import annotations

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int


class ConnectivityPlugin(Plugin):
    info = PluginInfo(
        name="connectivity_report",
        incoming=frozenset({types.CONNECTIVITY_REPORT}),
        outgoing=frozenset(),
        description="Show the phone's mobile network and signal strength",
    )

    async def handle(self, packet: Packet) -> None:
        strengths = packet.body.get("signalStrengths")
        if not isinstance(strengths, dict):
            self.log.info("%s: connectivity report without signalStrengths", self.ctx.device_id)
            return
        signals = {}
        for sub_id, entry in strengths.items():
            if not isinstance(entry, dict):
                continue
            strength = body_int(entry.get("signalStrength"))
            network = entry.get("networkType")
            signals[str(sub_id)] = {
                "network_type": network if isinstance(network, str) else "Unknown",
                "signal_strength": max(0, min(4, strength)) if strength is not None else None,
            }
        self.ctx.set_state("connectivity", signals)
        self.ctx.publish("connectivity.changed", connectivity=signals)
