"""`phonebridge notifications/dismiss/reply/action/calls/mute/search` against an in-process daemon
(127.0.0.1, no discovery) and the demo phone: the JSON contract and the error exits."""

from __future__ import annotations

import asyncio
import json

import pytest

import helpers
from helpers import run_cli, wait_for
from phonebridge.demo.notifications import APPS, NotificationsFeature
from phonebridge.demo.phone import DemoPhone

pytestmark = pytest.mark.timeout(60)

NOTIFICATION_FIELDS = {"id": str, "app": str, "title": str, "text": str, "time": int,
                       "active": bool, "dismissable": bool, "can_reply": bool, "actions": list}



@pytest.fixture
async def setup(tmp_path):
    home = tmp_path / "home"
    daemon = await helpers.start_daemon(home)
    phone = DemoPhone(tmp_path / "phone")
    try:
        await helpers.link_and_pair(daemon, phone)
        await wait_for(lambda: "notifications" in daemon.manager.devices[phone.device_id].plugins,
                       what="paired with the notifications plugin")
        yield home, daemon, phone
    finally:
        await phone.stop()
        await daemon.stop()


async def test_notification_commands(setup) -> None:
    home, daemon, phone = setup
    feature = phone.feature(NotificationsFeature)
    await feature.post_initial()
    plugin = daemon.manager.devices[phone.device_id].plugins["notifications"]
    await wait_for(lambda: len(plugin.active) == 3, what="three notifications")
    chat = feature.key(APPS["chat"], 42)

    code, out, err = await run_cli(home, "notifications", "Demo Pixel", "--json")
    assert code == 0, err
    items = json.loads(out)
    assert [i["app"] for i in items] == ["Calendar", "Mail", "Chat"]
    for item in items:
        for name, kind in NOTIFICATION_FIELDS.items():
            assert isinstance(item[name], kind), (name, item)
    assert items[2]["can_reply"] is True and items[2]["actions"] == ["Mark as read", "Mute"]
    code, out, _ = await run_cli(home, "notifications", "Demo Pixel")
    assert code == 0 and "Chat: Alice" in out and f"id {chat}" in out

    code, out, err = await run_cli(home, "reply", "Demo Pixel", chat, "See you there")
    assert code == 0, err
    await wait_for(lambda: feature.replies == [(chat, "See you there")], what="reply")
    code, out, err = await run_cli(home, "action", "Demo Pixel", chat, "Mute")
    assert code == 0, err
    await wait_for(lambda: feature.actions == [(chat, "Mute")], what="action")
    code, _, err = await run_cli(home, "action", "Demo Pixel", chat, "Nope")
    assert code == 1 and "no action 'Nope'" in err
    code, out, err = await run_cli(home, "dismiss", "Demo Pixel", chat)
    assert code == 0, err
    await wait_for(lambda: chat not in feature.current, what="dismissed")
    code, _, err = await run_cli(home, "reply", "Demo Pixel", chat, "too late")
    assert code == 1 and "any more" in err
    code, _, err = await run_cli(home, "dismiss", "No Such Phone", chat)
    assert code == 1 and "no device" in err

    code, out, err = await run_cli(home, "search", "warehouse", "--json")
    assert code == 0, err
    (hit,) = json.loads(out)
    assert set(hit) >= {"kind", "device", "id", "date", "snippet"} and hit["kind"] == "notification"
    assert isinstance(hit["date"], int) and "[warehouse]" in hit["snippet"]

    code, out, err = await run_cli(home, "notifications", "Demo Pixel", "--mute-app", "Mail")
    assert code == 0 and "Muted Mail" in out
    assert await daemon.services.notifications.muted_apps(phone.device_id) == {"Mail"}


async def test_call_commands(setup) -> None:
    home, daemon, phone = setup
    feature = phone.feature(NotificationsFeature)
    code, out, _ = await run_cli(home, "calls", "Demo Pixel")
    assert code == 0 and "No calls" in out
    await feature.ring()
    plugin = daemon.manager.devices[phone.device_id].plugins["telephony"]
    await wait_for(lambda: plugin.current, what="ringing")
    code, out, err = await run_cli(home, "mute", "Demo Pixel")
    assert code == 0 and "Muted the ringer" in out, err
    await wait_for(lambda: feature.ringer_muted == 1, what="muted")
    await feature.missed_call()
    await wait_for(lambda: plugin.current is None, what="ended")
    await asyncio.sleep(0.1)
    code, out, err = await run_cli(home, "calls", "Demo Pixel", "--json")
    assert code == 0, err
    calls = json.loads(out)
    assert [c["event"] for c in calls] == ["missed", "ended", "ringing"]
    assert all({"event", "number", "name", "time"} <= set(c) for c in calls)
    assert calls[0]["name"] == "Alice Martin" and calls[0]["number"] == "+15555550123"
