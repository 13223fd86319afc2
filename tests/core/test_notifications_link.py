"""Notifications and calls end to end over real TLS on 127.0.0.1: the Daemon (FakeDesktop toasts,
real store, real API) and the DemoPhone behaving as Android: icons as payloads once per
(id, hash), the request on link answered silently, dismiss/reply/action both ways, a call that
rings and is missed, search."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import helpers
from helpers import wait_for
from phonebridge.demo.notifications import APPS, NotificationsFeature
from phonebridge.demo.phone import DemoPhone
from phonebridge.protocol import types

pytestmark = pytest.mark.timeout(40)


@pytest.fixture
async def phone(daemon, tmp_path):
    p = DemoPhone(tmp_path / "phone")
    await p.start(helpers.LOOPBACK, daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(p.device_id), what="phone linked")
    await daemon.manager.pair(p.device_id)
    await wait_for(lambda: "notifications" in daemon.manager.devices[p.device_id].plugins,
                   what="notifications plugin loaded")
    await wait_for(lambda: any(x.type == types.NOTIFICATION_REQUEST for x in p.received),
                   what="the desktop's request for current notifications")
    try:
        yield p
    finally:
        await p.stop()


def api(daemon) -> httpx.AsyncClient:  # noqa: ANN001
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.api_port}",
                             headers={"Authorization": f"Bearer {daemon.token}"}, timeout=10)


async def test_mirror_dismiss_reply_act_and_search(daemon, phone) -> None:
    feature = phone.feature(NotificationsFeature)
    toasts = daemon.desktop.toasts
    path = f"/api/devices/{phone.device_id}/notifications"
    async with api(daemon) as client:
        with daemon.bus.subscribe() as sub:
            await feature.post_initial()
            chat = feature.key(APPS["chat"], 42)

            async def listed() -> list:
                return (await client.get(path)).json()

            items = []
            for _ in range(300):
                items = await listed()
                if len(items) == 3 and all(i["icon"] for i in items):
                    break
                await asyncio.sleep(0.02)
            assert [i["app"] for i in items] == ["Calendar", "Mail", "Chat"]  # newest first
            assert all(i["icon"] for i in items), items
            icon = await client.get(f"/api/icons/{items[0]['icon']}")
            assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
            assert len(toasts.shown) == 3
            types_seen = set()
            while not sub.queue.empty():
                types_seen.add(sub.queue.get_nowait().type)
            assert {"notification.posted", "notification.updated"} <= types_seen

        # Reply: the phone gets it and updates its notification (same id).
        r = await client.post(path + "/reply", json={"id": chat, "message": "On my way"})
        assert r.status_code == 200, r.text
        await wait_for(lambda: feature.replies == [(chat, "On my way")], what="reply on the phone")
        await wait_for(lambda: any(t["message"] == "You: On my way" for t in toasts.shown.values()),
                       what="updated toast")
        # Action, then an action that does not exist and a reply to a vanished notification.
        mail = next(i["id"] for i in items if i["app"] == "Calendar")
        r = await client.post(path + "/action", json={"id": mail, "action": "Snooze"})
        assert r.status_code == 200
        await wait_for(lambda: feature.actions == [(mail, "Snooze")], what="action on the phone")
        r = await client.post(path + "/action", json={"id": mail, "action": "Explode"})
        assert r.status_code == 409 and "no action" in r.json()["error"]
        r = await client.post(path + "/reply", json={"id": "nope", "message": "x"})
        assert r.status_code == 409

        # Dismiss from the desktop: the phone cancels it (and reports the removal).
        r = await client.post(path + "/dismiss", json={"id": chat})
        assert r.status_code == 200
        await wait_for(lambda: chat not in feature.current, what="dismissed on the phone")
        assert feature.cancelled == [chat]
        # Removed on the phone: the toast goes, the history keeps it inactive.
        await feature.remove(mail)
        await wait_for(lambda: len(toasts.shown) == 1, what="toasts withdrawn")
        active = (await client.get(path + "?active=true")).json()
        assert [i["app"] for i in active] == ["Mail"]
        # The user closes the last toast: dismissed on the phone too.
        toasts.user_dismisses(next(iter(toasts.shown)))
        await wait_for(lambda: not feature.current, what="phone notification dismissed via toast")

        hits = (await client.get("/api/search", params={"q": "warehous"})).json()
        assert [(h["kind"], h["device"]) for h in hits] == [("notification", phone.device_id)]
        r = await client.get("/api/search", params={"q": "x", "kind": "bogus"})
        assert r.status_code == 409


async def test_link_again_resends_current_ones_silently(daemon, phone) -> None:
    feature = phone.feature(NotificationsFeature)
    await feature.post("mail", "Hello", "first")
    await wait_for(lambda: len(daemon.desktop.toasts.shown) == 1, what="toast")
    daemon.desktop.toasts.shown.clear()
    plugin = daemon.manager.devices[phone.device_id].plugins["notifications"]
    await plugin.on_connected()  # as on every new link
    await wait_for(lambda: plugin.active, what="re-sent silently")
    assert daemon.desktop.toasts.shown == {}
    assert next(iter(plugin.active.values())).silent


async def test_call_rings_then_missed_mute_and_log(daemon, phone) -> None:
    feature = phone.feature(NotificationsFeature)
    async with api(daemon) as client:
        await feature.ring()
        current = []
        for _ in range(200):
            current = (await client.get("/api/calls/current")).json()
            if current:
                break
            await asyncio.sleep(0.02)
        assert current[0]["event"] == "ringing" and current[0]["name"] == "Alice Martin"
        assert current[0]["device"] == phone.device_id and current[0]["thumbnail"]
        r = await client.post(f"/api/devices/{phone.device_id}/mute")
        assert r.status_code == 200
        await wait_for(lambda: feature.ringer_muted == 1, what="ringer muted")
        await feature.missed_call()
        log = []
        for _ in range(200):
            log = (await client.get(f"/api/devices/{phone.device_id}/calls")).json()
            if len(log) == 3:
                break
            await asyncio.sleep(0.02)
        assert [c["event"] for c in log] == ["missed", "ended", "ringing"]
        assert (await client.get("/api/calls/current")).json() == []
