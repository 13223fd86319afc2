"""The clipboard plugin on fakes (PROTOCOL.md §8.4): both directions, the clipboard.connect
timestamp rule, no echo loops, and packet parsing that never crashes (property-based); plus the
in-memory and command-line clipboard backends of desktop/clipboard.py."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.core.plugin import PluginContext
from phonebridge.desktop.clipboard import CommandClipboard, MemoryClipboard, system_clipboard
from phonebridge.desktop.fake import FakeDesktop
from phonebridge.events import EventBus
from phonebridge.plugins.clipboard import STATE_KEY, ClipboardPlugin
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

DEVICE = "0123456789abcdef0123456789abcdef"


class Rig:
    def __init__(self, peer_incoming: frozenset[str] = frozenset({types.CLIPBOARD,
                                                                   types.CLIPBOARD_CONNECT})) -> None:
        self.sent: list[Packet] = []
        self.desktop = FakeDesktop()
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.state: dict = {}

        async def send(packet: Packet) -> None:
            self.sent.append(packet)

        self.ctx = PluginContext(
            device_id=DEVICE, device_name=lambda: "phone", peer_incoming=lambda: peer_incoming,
            send_packet=send, bus=self.bus, desktop=self.desktop, state=self.state,
        )
        self.plugin = ClipboardPlugin(self.ctx)

    @property
    def clipboard(self):  # noqa: ANN201
        return self.desktop.clipboard

    def sent_texts(self) -> list[str]:
        return [p.body["content"] for p in self.sent if p.type == types.CLIPBOARD]

    def received_events(self) -> list[str]:
        out = []
        while not self.events.queue.empty():
            event = self.events.queue.get_nowait()
            if event.type == "clipboard.received":
                assert event.device == DEVICE
                out.append(event.data["content"])
        return out


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- desktop -> phone -----------------------------------------------------------------------------


async def test_local_copy_is_sent_to_the_phone() -> None:
    rig = Rig()
    rig.clipboard.user_copies("hello phone")
    await settle()
    assert [(p.type, p.body) for p in rig.sent] == [(types.CLIPBOARD, {"content": "hello phone"})]


async def test_local_copy_not_sent_to_a_peer_that_does_not_take_clipboards() -> None:
    rig = Rig(peer_incoming=frozenset({types.PING}))
    rig.clipboard.user_copies("secret")
    await settle()
    assert rig.sent == []


async def test_connect_packet_carries_content_and_last_change_time() -> None:
    rig = Rig()
    await rig.plugin.on_connected()
    assert rig.sent[-1].type == types.CLIPBOARD_CONNECT
    assert rig.sent[-1].body == {"content": "", "timestamp": 0}
    rig.clipboard.user_copies("copied", at=1_700_000_000_123)
    await rig.plugin.on_connected()
    assert rig.sent[-1].body == {"content": "copied", "timestamp": 1_700_000_000_123}


async def test_closed_plugin_stops_watching() -> None:
    rig = Rig()
    rig.plugin.close()
    rig.clipboard.user_copies("after close")
    await settle()
    assert rig.sent == []
    assert rig.clipboard._watchers == []


# -- phone -> desktop -----------------------------------------------------------------------------


async def test_phone_clipboard_is_set_kept_and_announced() -> None:
    rig = Rig()
    before = now_ms()
    await rig.plugin.handle(Packet(types.CLIPBOARD, {"content": "from phone"}))
    assert rig.clipboard.text == "from phone"
    assert rig.received_events() == ["from phone"]
    assert rig.state[STATE_KEY]["content"] == "from phone"
    assert rig.state[STATE_KEY]["time"] >= before


async def test_text_from_phone_is_not_echoed_back() -> None:
    rig = Rig()
    await rig.plugin.handle(Packet(types.CLIPBOARD, {"content": "ping-pong"}))
    # A clipboard that did report our own set_text as a change must not make us send it back.
    rig.clipboard.user_copies("ping-pong")
    await settle()
    # The phone sending the same text again does not bounce either.
    await rig.plugin.handle(Packet(types.CLIPBOARD, {"content": "ping-pong"}))
    await settle()
    assert rig.sent_texts() == []
    assert rig.clipboard.set_texts == ["ping-pong"]  # the second, equal text changed nothing
    # A new local copy is sent again.
    rig.clipboard.user_copies("new text")
    await settle()
    assert rig.sent_texts() == ["new text"]


async def test_text_sent_to_phone_coming_back_is_not_sent_again() -> None:
    rig = Rig()
    rig.clipboard.user_copies("round trip")
    await settle()
    await rig.plugin.handle(Packet(types.CLIPBOARD, {"content": "round trip"}))
    rig.clipboard.user_copies("round trip")
    await settle()
    assert rig.sent_texts() == ["round trip"]


@pytest.mark.parametrize(("timestamp", "applied"), [
    (0, False),              # unknown time: never applied (KDE, Android)
    (None, False),           # missing
    ("soon", False),         # not a number
    (1_000, False),          # older than our last copy
    (2_000, True),           # same instant: not older
    (3_000, True),           # newer
    ("3000", True),          # a number as text, as some peers send
])
async def test_connect_packet_timestamp_rule(timestamp, applied) -> None:
    rig = Rig()
    rig.clipboard.user_copies("ours", at=2_000)
    await settle()
    body = {"content": "theirs"}
    if timestamp is not None:
        body["timestamp"] = timestamp
    await rig.plugin.handle(Packet(types.CLIPBOARD_CONNECT, body))
    assert rig.clipboard.text == ("theirs" if applied else "ours")
    assert rig.received_events() == (["theirs"] if applied else [])


async def test_connect_packet_applies_when_we_never_changed() -> None:
    rig = Rig()
    await rig.plugin.handle(Packet(types.CLIPBOARD_CONNECT, {"content": "x", "timestamp": 5}))
    assert rig.clipboard.text == "x"


# -- any packet body ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(packet_type=st.sampled_from([types.CLIPBOARD, types.CLIPBOARD_CONNECT]),
       content=json_values, timestamp=json_values | st.integers(-2**70, 2**70),
       extra=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
       has_timestamp=st.booleans())
def test_any_clipboard_body_is_handled_without_error(packet_type, content, timestamp, extra,
                                                     has_timestamp) -> None:
    async def run() -> None:
        rig = Rig()
        body = {**extra, "content": content}
        if has_timestamp:
            body["timestamp"] = timestamp
        await rig.plugin.handle(Packet(packet_type, body))
        text = rig.clipboard.text
        assert text is None or isinstance(text, str)
        if text is not None:
            assert text == content  # only a string content is ever applied
        if STATE_KEY in rig.state:
            assert isinstance(rig.state[STATE_KEY]["content"], str)
        assert rig.sent == []  # receiving never sends

    asyncio.run(run())


# -- backends ------------------------------------------------------------------------------------


async def test_memory_clipboard_round_trip_and_change_time() -> None:
    clip = MemoryClipboard(interval=0.01)
    assert clip.changed_at == 0
    seen: list[str] = []
    unwatch = clip.watch(seen.append)
    await clip.set_text("set by us")
    assert await clip.get_text() == "set by us"
    assert clip.changed_at > 0
    await asyncio.sleep(0.05)
    assert seen == []  # our own text is not a user change
    clip.user_copies("user text")
    assert seen == ["user text"]
    unwatch()
    clip.close()


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell as the clipboard tool")
async def test_command_clipboard_polls_changes_and_ignores_its_own_writes(tmp_path) -> None:
    store = tmp_path / "clip.txt"
    store.write_text("before")
    clip = CommandClipboard("test", ["sh", "-c", f"cat {store}"], ["sh", "-c", f"cat > {store}"],
                            interval=0.02)
    seen: list[str] = []
    unwatch = clip.watch(seen.append)
    await asyncio.sleep(0.1)
    assert seen == []  # the first read is the baseline
    await clip.set_text("written by us ✓")
    assert store.read_text(encoding="utf-8") == "written by us ✓"
    await asyncio.sleep(0.1)
    assert seen == []
    store.write_text("the user copied this")
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.02)
    assert seen == ["the user copied this"]
    assert clip.changed_at > 0
    unwatch()
    assert clip._task is None


async def test_broken_clipboard_tool_falls_back_to_memory(caplog) -> None:
    clip = CommandClipboard("broken", ["/nonexistent/paste"], ["/nonexistent/copy"])
    await clip.set_text("kept anyway")
    assert await clip.get_text() == "kept anyway"
    assert sum("in-memory clipboard" in r.message for r in caplog.records) == 1


def test_backend_choice() -> None:
    def which(found):  # noqa: ANN001, ANN202
        return lambda name: f"/usr/bin/{name}" if name in found else None

    assert isinstance(system_clipboard("linux", {}, which({"xclip"})), MemoryClipboard)
    x11 = system_clipboard("linux", {"DISPLAY": ":0"}, which({"xclip"}))
    assert x11.name == "x11" and x11._read_cmd[0] == "xclip"
    assert system_clipboard("linux", {"DISPLAY": ":0"}, which({"xsel"}))._read_cmd[0] == "xsel"
    wayland = system_clipboard("linux", {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"},
                               which({"wl-paste", "wl-copy", "xclip"}))
    assert wayland.name == "wayland"
    assert system_clipboard("darwin", {}, which({"pbcopy", "pbpaste"})).name == "macos"
    assert isinstance(system_clipboard("linux", {"DISPLAY": ":0"}, which(set())), MemoryClipboard)
