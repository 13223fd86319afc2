"""Clipboard end to end over real TLS on 127.0.0.1: the Daemon (FakeDesktop clipboard) and the
DemoPhone behaving as Android 10+ (PROTOCOL.md §8.4): both directions, clipboard.connect and its
timestamp rule on (re)connect, and no echo."""

from __future__ import annotations

import asyncio

import pytest

import helpers
from helpers import wait_for
from phonebridge.demo.clipboard import ClipboardFeature
from phonebridge.demo.phone import DemoPhone
from phonebridge.protocol import types

pytestmark = pytest.mark.timeout(30)


async def paired_phone(daemon, home) -> DemoPhone:  # noqa: ANN001
    phone = DemoPhone(home)
    await phone.start(helpers.LOOPBACK, daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(phone.device_id), what="phone linked")
    if not daemon.manager.devices[phone.device_id].is_paired:
        await daemon.manager.pair(phone.device_id)
    await wait_for(lambda: phone.is_paired and daemon.manager.devices[phone.device_id].is_paired,
                   what="paired")
    await wait_for(lambda: "clipboard" in daemon.manager.devices[phone.device_id].plugins,
                   what="clipboard plugin loaded")
    # Both sides sent clipboard.connect on link; let it arrive before a test looks.
    await wait_for(lambda: any(p.type == types.CLIPBOARD_CONNECT for p in phone.received),
                   what="the desktop's clipboard.connect")
    return phone


def clipboard_packets(phone: DemoPhone) -> list[str]:
    return [p.body["content"] for p in phone.received if p.type == types.CLIPBOARD]


@pytest.fixture
async def phone(daemon, tmp_path):
    p = await paired_phone(daemon, tmp_path / "phone")
    try:
        yield p
    finally:
        await p.stop()


async def test_phone_shares_its_clipboard_to_the_desktop(daemon, phone) -> None:
    clip = phone.feature(ClipboardFeature)
    with daemon.bus.subscribe() as sub:
        assert await clip.share_clipboard("from the phone ✓")
        await wait_for(lambda: daemon.desktop.clipboard.text == "from the phone ✓",
                       what="desktop clipboard set")
        event = await asyncio.wait_for(_next(sub, "clipboard.received"), 5)
    assert event.device == phone.device_id and event.data == {"content": "from the phone ✓"}
    state = daemon.manager.devices[phone.device_id].state["clipboard"]
    assert state["content"] == "from the phone ✓"


async def _next(sub, event_type):  # noqa: ANN001, ANN202
    while True:
        event = await sub.get()
        if event.type == event_type:
            return event


async def test_desktop_copy_reaches_the_phone(daemon, phone) -> None:
    clip = phone.feature(ClipboardFeature)
    daemon.desktop.clipboard.user_copies("copied on the desktop")
    await wait_for(lambda: clip.text == "copied on the desktop", what="phone clipboard")
    assert clip.received[-1] == "copied on the desktop"


async def test_no_echo_either_way(daemon, phone) -> None:
    clip = phone.feature(ClipboardFeature)
    desktop = daemon.desktop.clipboard
    # phone -> desktop; even a clipboard that reports our own write as a change is not echoed
    await clip.share_clipboard("bounce?")
    await wait_for(lambda: desktop.text == "bounce?", what="desktop clipboard")
    desktop.user_copies("bounce?")
    # the phone sends the same text again: set once, never sent back
    await clip.share_clipboard("bounce?")
    await asyncio.sleep(0.3)
    # desktop -> phone, then the phone shares that same text back
    desktop.user_copies("and back")
    await wait_for(lambda: clip.text == "and back", what="phone clipboard")
    await clip.share_clipboard("and back")
    await asyncio.sleep(0.3)
    assert clipboard_packets(phone) == ["and back"]
    assert desktop.set_texts == ["bounce?"]


async def test_connect_timestamp_rule_on_reconnect(daemon, phone, tmp_path) -> None:
    device = daemon.manager.devices[phone.device_id]
    clip = phone.feature(ClipboardFeature)
    desktop = daemon.desktop.clipboard
    await clip.share_clipboard("phone text")
    await wait_for(lambda: desktop.text == "phone text", what="desktop clipboard")
    await phone.stop()
    await wait_for(lambda: not device.is_reachable, what="link down")

    # Older than our last change: the phone's clipboard.connect is ignored on reconnect.
    desktop.user_copies("newer desktop text")
    again = DemoPhone(tmp_path / "phone")
    again.feature(ClipboardFeature).text = "stale phone text"
    again.feature(ClipboardFeature).changed_at = desktop.changed_at - 60_000
    try:
        await again.start(helpers.LOOPBACK, daemon.provider.tcp_port)
        await wait_for(lambda: any(p.type == types.CLIPBOARD_CONNECT for p in again.received),
                       what="the desktop's clipboard.connect")
        # The phone applied ours (newer than its own) under the same rule...
        connect = next(p for p in again.received if p.type == types.CLIPBOARD_CONNECT)
        assert connect.body == {"content": "newer desktop text", "timestamp": desktop.changed_at}
        assert again.feature(ClipboardFeature).text == "newer desktop text"
        await asyncio.sleep(0.3)
        # ...and we did not take its stale text.
        assert desktop.text == "newer desktop text"
    finally:
        await again.stop()
    await wait_for(lambda: not device.is_reachable, what="link down")

    # Newer than our last change, with a zero timestamp: ignored; with a real one: applied.
    for text, timestamp, expected in (("zero time", 0, "newer desktop text"),
                                      ("fresh phone text", desktop.changed_at + 5_000, "fresh phone text")):
        third = DemoPhone(tmp_path / "phone")
        third.feature(ClipboardFeature).text = text
        third.feature(ClipboardFeature).changed_at = timestamp
        try:
            await third.start(helpers.LOOPBACK, daemon.provider.tcp_port)
            await wait_for(lambda t=third: any(p.type == types.CLIPBOARD_CONNECT for p in t.received),
                           what="the desktop's clipboard.connect")
            await asyncio.sleep(0.3)
            assert desktop.text == expected
        finally:
            await third.stop()
        await wait_for(lambda: not device.is_reachable, what="link down")
