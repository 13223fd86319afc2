"""Plugins parse what peers send: any body shape is handled without an exception, and what they
store is well-formed (property-based: bodies of arbitrary JSON, and the field types peers use)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.core.plugin import PluginContext
from phonebridge.desktop.fake import FakeDesktop
from phonebridge.events import EventBus
from phonebridge.plugins import ALL_PLUGINS
from phonebridge.plugins.battery import BatteryPlugin
from phonebridge.plugins.connectivity import ConnectivityPlugin
from phonebridge.protocol.packet import Packet

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
loose_int = st.integers(-5, 105) | st.integers().map(str) | st.floats(allow_nan=False) | json_values


def make(plugin_class):
    sent: list[Packet] = []
    desktop = FakeDesktop()

    async def send(packet: Packet) -> None:
        sent.append(packet)

    ctx = PluginContext(
        device_id="0123456789abcdef0123456789abcdef",
        device_name=lambda: "phone",
        peer_incoming=lambda: frozenset(),
        send_packet=send,
        bus=EventBus(),
        desktop=desktop,
        state={"battery": None, "connectivity": None},
    )
    return plugin_class(ctx), ctx, desktop


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.text(max_size=20), json_values, max_size=6))
def test_every_plugin_survives_any_body(body) -> None:
    for plugin_class in ALL_PLUGINS:
        plugin, _, _ = make(plugin_class)
        for packet_type in plugin_class.info.incoming:
            asyncio.run(plugin.handle(Packet(packet_type, body)))


@settings(max_examples=300, deadline=None)
@given(charge=loose_int, charging=json_values, threshold=loose_int)
def test_battery_state_is_always_well_formed(charge, charging, threshold) -> None:
    plugin, ctx, _ = make(BatteryPlugin)
    body = {"currentCharge": charge, "isCharging": charging, "thresholdEvent": threshold}
    asyncio.run(plugin.handle(Packet("kdeconnect.battery", body)))
    battery = ctx.state["battery"]
    assert battery is None or (
        set(battery) == {"charge", "charging"}
        and isinstance(battery["charge"], int) and 0 <= battery["charge"] <= 100
        and isinstance(battery["charging"], bool)
    )


def test_battery_as_android_and_kde_send_it() -> None:
    plugin, ctx, desktop = make(BatteryPlugin)
    asyncio.run(plugin.handle(Packet("kdeconnect.battery",
                                     {"currentCharge": 12, "isCharging": False, "thresholdEvent": 1})))
    assert ctx.state["battery"] == {"charge": 12, "charging": False}
    assert desktop.notifications == [("phone", "Battery low: 12%")]
    asyncio.run(plugin.handle(Packet("kdeconnect.battery", {"currentCharge": -1, "isCharging": False})))
    assert ctx.state["battery"] is None  # -1 = the device has no battery


@settings(max_examples=300, deadline=None)
@given(strengths=st.dictionaries(
    st.text(max_size=4),
    st.fixed_dictionaries({"networkType": json_values, "signalStrength": loose_int}) | json_values,
    max_size=4,
))
def test_connectivity_state_is_always_well_formed(strengths) -> None:
    plugin, ctx, _ = make(ConnectivityPlugin)
    asyncio.run(plugin.handle(Packet("kdeconnect.connectivity_report", {"signalStrengths": strengths})))
    state = ctx.state["connectivity"]
    if state is None:
        return
    for sub_id, entry in state.items():
        assert isinstance(sub_id, str)
        assert isinstance(entry["network_type"], str)
        assert entry["signal_strength"] is None or 0 <= entry["signal_strength"] <= 4
