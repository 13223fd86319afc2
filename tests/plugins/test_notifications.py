"""The notifications and telephony plugins on their own: a PluginContext with FakeDesktop toasts,
a real SQLite store in a temp folder, and a fake link for icon payloads. Covers parsing (tables
from sample-packets.jsonl and property tests with the field types peers really send), posting,
updating, removal, silent/onlyOnce/muted toasts, toast <-> phone dismissal, replies, actions,
bad input, icons and the calls log."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

from phonebridge.core.plugin import PluginContext  # noqa: E402
from phonebridge.core.services import Services  # noqa: E402
from phonebridge.demo.notifications import png_icon  # noqa: E402
from phonebridge.desktop.fake import FakeDesktop  # noqa: E402
from phonebridge.errors import DeviceError  # noqa: E402
from phonebridge.events import EventBus  # noqa: E402
from phonebridge.plugins import notifications as nmod  # noqa: E402
from phonebridge.plugins.notifications import (  # noqa: E402
    NotificationsPlugin, PhoneNotification, Removal, parse_notification,
)
from phonebridge.plugins.telephony import CallEvent, TelephonyPlugin, parse_call  # noqa: E402
from phonebridge.protocol import types  # noqa: E402
from phonebridge.protocol.packet import Packet, parse_packet  # noqa: E402
from phonebridge.store.calls import CallRepository  # noqa: E402
from phonebridge.store.database import Database  # noqa: E402
from phonebridge.store.notifications import NotificationRepository  # noqa: E402

pytestmark = pytest.mark.timeout(30)

DEVICE = "0123456789abcdef0123456789abcdef"
NOW = 1_724_316_000_000


def samples(ptype: str) -> list[dict]:
    return [parse_packet(line).body for line in helpers.sample_lines()
            if json.loads(line)["type"] == ptype]


class FakeLink:
    """Serves icon payloads: `payloads[port]` = bytes, or None to never answer."""

    def __init__(self) -> None:
        self.payloads: dict[int, bytes | None] = {}
        self.fetched: list[int] = []

    async def fetch_payload(self, packet, write, progress=None) -> int:  # noqa: ANN001
        port = packet.payload_transfer_info["port"]
        self.fetched.append(port)
        data = self.payloads.get(port)
        if data is None:
            await asyncio.sleep(3600)
        write(data)
        return len(data)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.db = Database(tmp / "test.db")
        self.sent: list[Packet] = []
        self.desktop = FakeDesktop()
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.link = FakeLink()
        self.peer_incoming = frozenset({types.NOTIFICATION_REQUEST, types.NOTIFICATION_REPLY,
                                        types.NOTIFICATION_ACTION, types.TELEPHONY_REQUEST_MUTE})
        self.services = Services(home=tmp, notifications=NotificationRepository(self.db),
                                 calls=CallRepository(self.db))

    def ctx(self) -> PluginContext:
        async def send(packet: Packet) -> None:
            self.sent.append(packet)

        return PluginContext(
            device_id=DEVICE, device_name=lambda: "Pixel", peer_incoming=lambda: self.peer_incoming,
            send_packet=send, bus=self.bus, desktop=self.desktop, services=self.services,
            link=lambda: self.link,
        )

    def drain(self) -> list[tuple[str, dict]]:
        out = []
        while not self.events.queue.empty():
            event = self.events.queue.get_nowait()
            out.append((event.type, event.data))
        return out


@pytest.fixture
async def rig(tmp_path):
    r = Rig(tmp_path)
    await r.db.open()
    try:
        yield r
    finally:
        await r.db.close()


@pytest.fixture
async def plugin(rig):
    p = NotificationsPlugin(rig.ctx())
    yield p
    p.close()


async def got(plugin, rig, key):  # noqa: ANN001, ANN201
    """The stored row, once the plugin's write-behind has caught up."""
    await plugin.flush()
    return await rig.services.notifications.get(DEVICE, key)


def note(key="k1", **body) -> Packet:
    base = {"id": key, "appName": "Chat", "title": "Alice", "text": "Hi", "isClearable": True,
            "time": str(NOW), "silent": False}
    base.update(body)
    return Packet(types.NOTIFICATION, {k: v for k, v in base.items() if v is not None})


# -- parsing ---------------------------------------------------------------------------------------

def test_sample_notifications_parse_as_documented() -> None:
    full, silent, cancel, kde = samples(types.NOTIFICATION)
    n = parse_notification(full, NOW)
    assert isinstance(n, PhoneNotification)
    assert (n.key, n.app, n.title, n.text, n.time) == (
        "0|com.example.chat|42|null|10123", "Chat", "Alice", "Are you coming?", 1724315999000)
    assert n.dismissable and not n.silent and n.reply_id and n.actions == ("Mark as read", "Mute")
    assert n.payload_hash == "d41d8cd98f00b204e9800998ecf8427e"
    s = parse_notification(silent, NOW)
    assert s.silent and s.reply_id is None and s.actions == ()
    assert parse_notification(cancel, NOW) == Removal("0|com.example.chat|42|null|10123")
    k = parse_notification(kde, NOW)
    assert k.time == NOW  # no time: ours
    # KDE's sendnotifications sends an int id (0 for the first one).
    assert parse_notification({"id": 0, "title": "t"}, NOW).key == "0"


def test_sample_calls_parse_as_documented() -> None:
    ringing, cancel, missed, talking = samples(types.TELEPHONY)
    assert parse_call(ringing).event == "ringing" and parse_call(ringing).thumbnail
    assert parse_call(cancel) == CallEvent("ended", "+15555550123", "Alice", None)
    assert parse_call(missed).event == "missed"
    assert parse_call(talking).event == "talking"
    assert parse_call({"event": "sms", "messageBody": "x"}) is None
    assert parse_call({"event": "ringing", "isCancel": True}).event == "ended"
    assert parse_call({"event": "ringing", "isCancel": "false"}).event == "ringing"
    assert parse_call({"event": "ringing", "phoneThumbnail": "not base64!!"}).thumbnail is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
android_ids = st.integers(min_value=-2**40, max_value=2**40) | st.text(min_size=1, max_size=60)
android_bool = st.booleans() | st.sampled_from(["true", "false", "True", ""]) | json_values


@settings(max_examples=300, deadline=None)
@given(key=android_ids | json_values, title=st.text(max_size=40) | json_values,
       text=st.text(max_size=40) | json_values, stamp=st.integers(0, 2**45).map(str) | json_values,
       cancel=android_bool, silent=android_bool, actions=st.lists(st.text(max_size=10)) | json_values,
       reply=st.uuids().map(str) | json_values, ticker=st.text(max_size=40) | json_values)
def test_notification_parsing_is_total_and_well_typed(key, title, text, stamp, cancel, silent,
                                                      actions, reply, ticker) -> None:
    body = {"id": key, "title": title, "text": text, "time": stamp, "isCancel": cancel,
            "silent": silent, "actions": actions, "requestReplyId": reply, "ticker": ticker,
            "appName": "App"}
    n = parse_notification(body, NOW)
    if n is None:
        return
    assert isinstance(n.key, str) and n.key
    if isinstance(key, int) and not isinstance(key, bool):
        assert n.key == str(key)
    if isinstance(n, Removal):
        return
    assert isinstance(n.title, str) and n.title and isinstance(n.text, str)
    assert isinstance(n.time, int) and 0 < n.time <= 10**14
    if isinstance(stamp, str) and stamp.isdigit() and 0 < int(stamp) <= 10**14:
        assert n.time == int(stamp)
    assert all(isinstance(a, str) and a for a in n.actions)
    assert n.reply_id is None or isinstance(n.reply_id, str)
    assert isinstance(n.silent, bool) and isinstance(n.dismissable, bool)


@settings(max_examples=300, deadline=None)
@given(event=st.sampled_from(["ringing", "talking", "missedCall", "disconnected", "sms"]) | json_values,
       cancel=android_bool, number=st.text(max_size=20) | json_values,
       name=st.text(max_size=20) | json_values, thumb=st.binary(max_size=30).map(
           lambda b: __import__("base64").b64encode(b).decode()) | json_values)
def test_call_parsing_is_total_and_well_typed(event, cancel, number, name, thumb) -> None:
    call = parse_call({"event": event, "isCancel": cancel, "phoneNumber": number,
                       "contactName": name, "phoneThumbnail": thumb})
    if call is None:
        assert event not in ("ringing", "talking", "missedCall", "disconnected")
        return
    assert call.event in ("ringing", "talking", "missed", "ended")
    if cancel == "true" and event in ("ringing", "talking"):
        assert call.event == "ended"
    assert call.number is None or isinstance(call.number, str)
    assert call.name is None or isinstance(call.name, str)


# -- the notifications plugin ----------------------------------------------------------------------

async def test_post_update_remove_with_events_toasts_and_store(rig, plugin) -> None:
    await plugin.handle(note(actions=["Mark as read"], requestReplyId="r-1"))
    (kind, data), = rig.drain()
    assert kind == "notification.posted"
    assert data["id"] == "k1" and data["can_reply"] and data["actions"] == ["Mark as read"]
    (handle, toast), = rig.desktop.toasts.shown.items()
    assert toast["title"] == "Alice" and toast["reply"] and toast["actions"] == ("Mark as read",)

    await plugin.handle(note(text="Hi again"))
    assert rig.drain()[0][0] == "notification.updated"
    assert [t["message"] for t in rig.desktop.toasts.shown.values()] == ["Hi again"]

    await plugin.handle(Packet(types.NOTIFICATION, {"id": "k1", "isCancel": True}))
    assert rig.drain() == [("notification.removed", {"id": "k1", "reason": "removed on the device"})]
    assert rig.desktop.toasts.shown == {}
    await plugin.flush()
    stored = await rig.services.notifications.list(DEVICE)
    assert [(r.key, r.text, r.active) for r in stored] == [("k1", "Hi again", False)]
    # A second cancel of the same id is quiet.
    await plugin.handle(Packet(types.NOTIFICATION, {"id": "k1", "isCancel": "true"}))
    assert rig.drain() == []


async def test_silent_only_once_and_muted_apps_raise_no_toast(rig, plugin) -> None:
    await plugin.handle(note("s", silent=True))
    assert rig.desktop.toasts.shown == {}
    assert (await got(plugin, rig, "s")).silent
    await plugin.handle(note("o", onlyOnce=True))
    assert len(rig.desktop.toasts.shown) == 1
    rig.desktop.toasts.user_dismisses(next(iter(rig.desktop.toasts.shown)))
    await asyncio.sleep(0.01)
    rig.sent.clear()
    await plugin.handle(note("o2", onlyOnce=True))
    rig.desktop.toasts.shown.clear()
    plugin._toasts.clear()
    await plugin.handle(note("o2", onlyOnce=True, text="update"))
    assert rig.desktop.toasts.shown == {}  # an update of onlyOnce: no new toast
    await plugin.set_muted("Chat", True)
    await plugin.handle(note("m"))
    assert rig.desktop.toasts.shown == {}
    assert await rig.services.notifications.muted_apps(DEVICE) == {"Chat"}
    await plugin.set_muted("Chat", False)
    await plugin.handle(note("m2"))
    assert len(rig.desktop.toasts.shown) == 1


async def test_toast_dismissed_dismisses_on_the_phone_and_back(rig, plugin) -> None:
    await plugin.handle(note())
    handle = next(iter(rig.desktop.toasts.shown))
    rig.desktop.toasts.user_dismisses(handle)
    await helpers.wait_for(lambda: rig.sent, what="cancel sent")
    assert [(p.type, p.body) for p in rig.sent] == [(types.NOTIFICATION_REQUEST, {"cancel": "k1"})]
    assert not (await got(plugin, rig, "k1")).active
    # The phone then reports the removal, which changes nothing more.
    await plugin.handle(Packet(types.NOTIFICATION, {"id": "k1", "isCancel": True}))
    assert rig.desktop.toasts.withdrawn == []


async def test_reply_and_action_from_toast_and_api(rig, plugin) -> None:
    await plugin.handle(note(requestReplyId="uuid-1", actions=["Mute", "Mark as read"]))
    handle = next(iter(rig.desktop.toasts.shown))
    rig.desktop.toasts.user_replies(handle, "On my way")
    await helpers.wait_for(lambda: rig.sent, what="reply sent")
    assert rig.sent[-1].body == {"requestReplyId": "uuid-1", "message": "On my way"}
    await plugin.action("k1", "Mute")
    assert (rig.sent[-1].type, rig.sent[-1].body) == (types.NOTIFICATION_ACTION, {"key": "k1", "action": "Mute"})


async def test_bad_requests_are_clear_errors_and_send_nothing(rig, plugin) -> None:
    await plugin.handle(note("plain", isClearable=False))
    with pytest.raises(DeviceError, match="takes no reply"):
        await plugin.reply("plain", "hello")
    with pytest.raises(DeviceError, match="no action 'Nope'"):
        await plugin.action("plain", "Nope")
    with pytest.raises(DeviceError, match="cannot be dismissed"):
        await plugin.dismiss("plain")
    with pytest.raises(DeviceError, match="any more"):
        await plugin.reply("vanished", "hello")
    await plugin.handle(note("gone", requestReplyId="r"))
    await plugin.handle(Packet(types.NOTIFICATION, {"id": "gone", "isCancel": True}))
    with pytest.raises(DeviceError, match="any more"):
        await plugin.reply("gone", "too late")
    assert rig.sent == []
    rig.peer_incoming = frozenset({types.PING})  # a peer that takes no replies
    await plugin.handle(note("r2", requestReplyId="r2"))
    with pytest.raises(DeviceError, match="does not accept"):
        await plugin.reply("r2", "x")


async def test_bodies_without_content_are_skipped_and_huge_text_is_cut(rig, plugin) -> None:
    for body in ({"appName": "x"}, {"id": "e"}, {"id": "e", "title": 3, "text": None},
                 {"id": True, "title": "bool id"}, {"id": "", "title": "empty id"}):
        await plugin.handle(Packet(types.NOTIFICATION, body))
    assert rig.drain() == [] and rig.desktop.toasts.shown == {}
    await plugin.handle(Packet(types.NOTIFICATION, {"id": "t", "appName": "Old", "ticker": "Bob: hi"}))
    assert (await got(plugin, rig, "t")).title == "Bob"
    await plugin.handle(note("big", text="x" * 5_000_000, title="y" * 100_000))
    stored = await got(plugin, rig, "big")
    assert len(stored.text) == nmod.MAX_TEXT and len(stored.title) == nmod.MAX_TEXT
    assert len(rig.desktop.toasts.shown) == 2


async def test_on_link_requests_everything_and_marks_old_inactive(rig, plugin) -> None:
    await plugin.handle(note("old"))
    rig.drain()
    await plugin.on_connected()
    assert (rig.sent[-1].type, rig.sent[-1].body) == (types.NOTIFICATION_REQUEST, {"request": True})
    assert rig.drain() == [("notification.removed", {"id": "old", "reason": "resync"})]
    await plugin.handle(note("old", silent=True))
    assert rig.drain()[0][0] == "notification.posted"
    assert (await got(plugin, rig, "old")).active


async def test_icons_are_fetched_cached_by_hash_and_validated(rig, plugin, monkeypatch) -> None:
    png = png_icon((10, 20, 30))
    md5 = __import__("hashlib").md5(png).hexdigest()
    rig.link.payloads[1740] = png
    await plugin.handle(Packet(types.NOTIFICATION, note("a", payloadHash=md5).body,
                               payload_size=len(png), payload_transfer_info={"port": 1740}))
    await helpers.wait_for(lambda: ("notification.updated" in [e for e, _ in rig.drain()]),
                           what="icon event")
    assert (rig.services.home / "cache" / "icons" / f"{md5}.img").read_bytes() == png
    assert (await got(plugin, rig, "a")).icon == md5
    # Another notification with the same icon and no payload (Android sends it once): cached.
    await plugin.handle(note("b", payloadHash=md5))
    assert (await got(plugin, rig, "b")).icon == md5
    # Not an image: dropped. A payload that never arrives: given up, nothing stuck.
    rig.link.payloads[1741] = b"<html>not an image</html>"
    await plugin.handle(Packet(types.NOTIFICATION, note("c").body, payload_size=25,
                               payload_transfer_info={"port": 1741}))
    monkeypatch.setattr(nmod, "ICON_FETCH_TIMEOUT", 0.2)
    await plugin.handle(Packet(types.NOTIFICATION, note("d").body, payload_size=100,
                               payload_transfer_info={"port": 1742}))
    await helpers.wait_for(lambda: not plugin._tasks, what="icon tasks done")
    assert (await got(plugin, rig, "c")).icon is None
    assert (await got(plugin, rig, "d")).icon is None
    assert len(list((rig.services.home / "cache" / "icons").iterdir())) == 1


def test_icon_cache_is_bounded(tmp_path) -> None:
    cache = nmod.IconCache(tmp_path, max_files=3)
    hashes = [cache.store(png_icon((i, i, i), 8)) for i in range(6)]
    assert len(list(tmp_path.glob("*.img"))) == 3
    assert cache.path(hashes[-1]) is not None and cache.path("../../etc/passwd") is None


# -- telephony ---------------------------------------------------------------------------------------

async def test_ringing_then_missed_like_android(rig) -> None:
    phone = TelephonyPlugin(rig.ctx())
    ringing, cancel, missed, _ = samples(types.TELEPHONY)
    await phone.handle(Packet(types.TELEPHONY, ringing))
    assert phone.current["event"] == "ringing" and phone.current["name"] == "Alice"
    (handle, toast), = rig.desktop.toasts.shown.items()
    assert toast["actions"] == ["Mute"]
    rig.desktop.toasts.user_presses(handle, "Mute")
    await helpers.wait_for(lambda: rig.sent, what="mute sent")
    assert (rig.sent[-1].type, rig.sent[-1].body) == (types.TELEPHONY_REQUEST_MUTE, {})
    await phone.handle(Packet(types.TELEPHONY, cancel))
    assert phone.current is None
    await phone.handle(Packet(types.TELEPHONY, missed))
    assert any(t["title"].startswith("Missed call") for t in rig.desktop.toasts.shown.values())
    events = [(e, d["event"], d["active"]) for e, d in rig.drain()]
    assert events == [("call.changed", "ringing", True), ("call.changed", "ended", False),
                      ("call.changed", "missed", False)]
    log = await rig.services.calls.list(DEVICE)
    assert [c.event for c in log] == ["missed", "ended", "ringing"]
    assert log[0].to_json().keys() >= {"event", "number", "name", "time"}


# -- the real toasts backend (desktop-notifier replaced by a recorder) ---------------------------------

async def test_native_toasts_wire_reply_buttons_and_dismissal(monkeypatch, caplog) -> None:
    import desktop_notifier

    from phonebridge.desktop.toasts import NativeToasts

    class Recorder:
        def __init__(self, app_name: str) -> None:
            self.sent: dict[str, object] = {}
            self.cleared: list[str] = []

        async def send_notification(self, notification):  # noqa: ANN001, ANN201
            self.sent[notification.identifier] = notification
            return notification.identifier

        async def clear(self, identifier: str) -> None:
            self.cleared.append(identifier)

    monkeypatch.setattr(desktop_notifier, "DesktopNotifier", Recorder)
    calls: list[tuple] = []
    toasts = NativeToasts(available=True)
    handle = await toasts.show(
        "Alice", "x" * 1000, app="Chat", actions=["Mark as read", "Mute", "A", "B"], reply=True,
        on_dismissed=lambda: calls.append(("dismissed",)),
        on_replied=lambda text: calls.append(("replied", text)),
        on_action=lambda label: calls.append(("action", label)))
    sent = toasts._notifier.sent[handle]
    assert sent.title == "Chat: Alice" and len(sent.message) <= 400
    assert [b.title for b in sent.buttons] == ["Mark as read", "Mute", "A"]  # at most three
    sent.reply_field.on_replied("On my way")
    sent.buttons[1].on_pressed()
    sent.on_dismissed()
    assert calls == [("replied", "On my way"), ("action", "Mute"), ("dismissed",)]
    # Withdrawn by us: a late "closed" signal is not the user's dismissal.
    await toasts.withdraw(handle)
    sent.on_dismissed()
    assert calls[-1] == ("dismissed",) and len(calls) == 3
    assert toasts._notifier.cleared == [handle]

    headless = NativeToasts(available=False)
    with caplog.at_level("INFO"):
        assert await headless.show("Bob", "hi", app="Mail") is None
    assert "notification: Mail: Bob: hi" in caplog.text
