"""Notifications and calls, as the Android app sends and answers them (PROTOCOL.md §8.6, §8.8).

The phone posts a few notifications once paired, then a new one every ~25 s, updates its chat
(same id) and removes old ones; once a while a call rings and ends up missed (ringing, then the
same packet with `isCancel: "true"`, then `missedCall`, as Android does). Icons are PNG payloads
with `payloadHash` = MD5 of the PNG, attached only the first time per (id, hash). It answers
`notification.request` ({"request": true}: every current one, `silent: true`; {"cancel": id}),
replies and actions, and `telephony.request_mute`.

Tests drive it directly: `post`, `update`, `remove`, `ring`, `end_call`, `missed_call`; the
timeline runs only with `timeline=True` (the daemon's --demo), its pace set by
$PHONEBRIDGE_DEMO_SPEED (2 = twice as fast).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import os
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet
from phonebridge.transports.lan.payload import bytes_chunks

from .feature import Handler, PhoneFeature

log = logging.getLogger(__name__)

FIRST_CALL_AFTER = 12.0
"""Seconds after pairing until the demo's first call rings."""
RING_FOR = 20.0
"""Seconds a demo call rings before it is missed."""
NEW_EVERY = 25.0
"""Seconds between two new demo notifications."""
MAX_ACTIVE = 8
"""The demo removes its oldest notification beyond this many."""


def png_icon(rgb: tuple[int, int, int], size: int = 48) -> bytes:
    """A small PNG: a filled circle of `rgb` on transparency (what an app icon payload looks like)."""
    r = size / 2
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            inside = (x + 0.5 - r) ** 2 + (y + 0.5 - r) ** 2 <= (r - 0.5) ** 2
            row += bytes((*rgb, 255 if inside else 0))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


# The caller's photo. Android sends a base64 JPEG; the demo draws a PNG (browsers sniff the type).
CONTACT_PHOTO = base64.b64encode(png_icon((99, 102, 241), 64)).decode()


@dataclass
class DemoApp:
    package: str
    name: str
    color: tuple[int, int, int]
    icon: bytes = field(init=False)
    icon_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.icon = png_icon(self.color)
        self.icon_hash = hashlib.md5(self.icon, usedforsecurity=False).hexdigest()


APPS = {
    "chat": DemoApp("org.example.chat", "Chat", (34, 197, 94)),
    "mail": DemoApp("org.example.mail", "Mail", (59, 130, 246)),
    "calendar": DemoApp("org.example.calendar", "Calendar", (234, 88, 12)),
    "delivery": DemoApp("org.example.parcels", "Parcels", (168, 85, 247)),
    "news": DemoApp("org.example.news", "News", (220, 38, 38)),
}

STORY: list[tuple[str, str, str, dict[str, Any]]] = [
    ("mail", "Invoice #2291", "Your invoice for November is ready. Amount due: 42.00 €.", {}),
    ("delivery", "Parcel on its way", "Your parcel will arrive today between 14:00 and 16:00.",
     {"actions": ["Track", "Reschedule"]}),
    ("news", "Café culture", "Why the best espresso in town is served in a laundrette.", {}),
    ("calendar", "Stand-up in 10 minutes", "Room Ada · every weekday",
     {"actions": ["Snooze", "Join"]}),
    ("mail", "Weekend plans?", "Bob: Are we still on for the hike on Saturday?", {}),
    ("delivery", "Delivered", "Your parcel was left at the front door.", {}),
]


class NotificationsFeature(PhoneFeature):
    def __init__(self, phone, *, timeline: bool = False) -> None:  # noqa: ANN001
        super().__init__(phone)
        self.timeline = timeline
        self.speed = max(0.05, float(os.environ.get("PHONEBRIDGE_DEMO_SPEED", "1") or 1))
        self.current: dict[str, dict[str, Any]] = {}
        """id -> body of every notification shown on the phone."""
        self.apps: dict[str, DemoApp] = {}
        self.replies: list[tuple[str, str]] = []
        self.actions: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.ringer_muted = 0
        self.call: dict[str, Any] | None = None
        self._icons_sent: set[tuple[str, str]] = set()
        self._counter = itertools.count(100)
        self._tasks: set[asyncio.Task] = set()
        self._timeline: asyncio.Task | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            types.NOTIFICATION_REQUEST: self._on_request,
            types.NOTIFICATION_REPLY: self._on_reply,
            types.NOTIFICATION_ACTION: self._on_action,
            types.TELEPHONY_REQUEST_MUTE: self._on_mute,
        }

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def on_paired(self) -> None:
        if self.timeline and self._timeline is None:
            self._timeline = self._spawn(self._run_timeline())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what the phone does -----------------------------------------------------------------------

    def key(self, app: DemoApp, number: int | None = None) -> str:
        """An Android status-bar key: "0|package|id|tag|uid"."""
        return f"0|{app.package}|{number if number is not None else next(self._counter)}|null|10123"

    async def post(self, app_id: str, title: str, text: str, *, key: str | None = None,
                   actions: list[str] | None = None, reply: bool = False, silent: bool = False,
                   clearable: bool = True, icon: bool = True, **extra: Any) -> str:
        """Post (or, with an existing `key`, update) a notification; returns its id."""
        app = APPS[app_id]
        key = key or self.key(app)
        old = self.current.get(key, {})
        body: dict[str, Any] = {
            "id": key, "appName": app.name, "title": title, "text": text,
            "ticker": f"{title}: {text}", "isClearable": clearable,
            "time": str(int(time.time() * 1000)), "silent": silent,
        }
        if actions:
            body["actions"] = list(actions)
        if reply:
            body["requestReplyId"] = old.get("requestReplyId") or str(uuid.uuid4())
        if icon:
            body["payloadHash"] = app.icon_hash
        body.update(extra)
        self.current[key] = body
        self.apps[key] = app
        await self._send(body, app if icon else None)
        return key

    async def _send(self, body: dict[str, Any], app: DemoApp | None) -> None:
        packet = Packet(types.NOTIFICATION, body)
        link = self.phone.link
        first = app is not None and (body["id"], app.icon_hash) not in self._icons_sent
        if not first or link is None or types.NOTIFICATION not in link.identity.incoming:
            await self.phone.send(packet)
            return
        assert app is not None
        self._icons_sent.add((body["id"], app.icon_hash))
        sent = asyncio.Event()
        real_send = link.send

        async def send_then_signal(p: Packet) -> None:
            await real_send(p)
            sent.set()

        async def offer() -> None:
            with contextlib.suppress(Exception):  # the desktop may not fetch (cached icon)
                await link.offer_payload(packet, len(app.icon), bytes_chunks(app.icon))
            sent.set()

        # offer_payload sends the packet through link.send: wait for that, not for the transfer,
        # so that what the phone sends next stays in order.
        link.send = send_then_signal  # type: ignore[method-assign]
        try:
            self._spawn(offer())
            await asyncio.wait_for(sent.wait(), 5)
        finally:
            link.send = real_send  # type: ignore[method-assign]

    async def update(self, key: str, **changes: Any) -> None:
        body = {**self.current[key], **changes, "time": str(int(time.time() * 1000)), "silent": False}
        self.current[key] = body
        await self._send(body, self.apps.get(key))

    async def remove(self, key: str) -> None:
        """The notification went away on the phone (Android sends only the id and isCancel)."""
        if self.current.pop(key, None) is not None:
            self.apps.pop(key, None)
            await self.phone.send(Packet(types.NOTIFICATION, {"id": key, "isCancel": True}))

    async def post_initial(self) -> None:
        """The demo's first notifications: a chat that takes replies, mail, a calendar event."""
        await self.post("chat", "Alice", "Are you coming tonight?", key=self.key(APPS["chat"], 42),
                        reply=True, actions=["Mark as read", "Mute"],
                        conversation=[{"sender": "Alice", "content": "Are you coming tonight?"}])
        await self.post("mail", "Your order shipped", "Order 1184 left the warehouse this morning.")
        await self.post("calendar", "Dentist", "Tomorrow 09:30 · Main Street 12", actions=["Snooze"])

    # -- calls ---------------------------------------------------------------------------------------

    def _call_body(self, event: str, name: str | None, number: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"event": event}
        if number:
            body["phoneNumber"] = number
        if name:
            body["contactName"] = name
        return body

    async def ring(self, name: str | None = "Alice Martin", number: str | None = "+15555550123") -> None:
        body = self._call_body("ringing", name, number)
        body["phoneThumbnail"] = CONTACT_PHOTO
        self.call = body
        await self.phone.send(Packet(types.TELEPHONY, body))

    async def end_call(self) -> None:
        """The call state ends: Android resends the last packet with isCancel "true" (a string)."""
        if self.call is None:
            return
        body = {k: v for k, v in self.call.items() if k != "phoneThumbnail"}
        body["isCancel"] = "true"
        self.call = None
        await self.phone.send(Packet(types.TELEPHONY, body))

    async def missed_call(self, name: str | None = "Alice Martin",
                          number: str | None = "+15555550123") -> None:
        """A ringing call nobody answered: ringing ends, then missedCall (Android's order)."""
        if self.call is None:
            await self.ring(name, number)
        await self.end_call()
        await self.phone.send(Packet(types.TELEPHONY, self._call_body("missedCall", name, number)))

    # -- answers ----------------------------------------------------------------------------------------

    async def _on_request(self, packet: Packet) -> None:
        cancel = packet.body.get("cancel")
        if isinstance(cancel, str):
            self.cancelled.append(cancel)
            # Android cancels it, and its listener then reports the removal.
            await self.remove(cancel)
        if packet.body.get("request") is True:
            for key, body in list(self.current.items()):
                await self._send({**body, "silent": True}, self.apps.get(key))

    async def _on_reply(self, packet: Packet) -> None:
        reply_id, message = packet.body.get("requestReplyId"), packet.body.get("message")
        if not isinstance(reply_id, str) or not isinstance(message, str):
            return
        key = next((k for k, b in self.current.items() if b.get("requestReplyId") == reply_id), None)
        if key is None:
            log.info("demo phone: reply to a notification that is gone")
            return
        self.replies.append((key, message))
        body = self.current[key]
        conversation = [*body.get("conversation", []), {"sender": "You", "content": message}]
        await self.update(key, text=f"You: {message}", conversation=conversation)

    async def _on_action(self, packet: Packet) -> None:
        key, action = packet.body.get("key"), packet.body.get("action")
        if not isinstance(key, str) or not isinstance(action, str) or key not in self.current:
            return
        self.actions.append((key, action))
        if action in ("Mark as read", "Join", "Track"):
            await self.remove(key)

    async def _on_mute(self, packet: Packet) -> None:
        self.ringer_muted += 1

    # -- the demo's timeline ---------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)

    async def _run_timeline(self) -> None:
        try:
            await self.post_initial()
            await self._sleep(FIRST_CALL_AFTER)
            await self.ring()
            await self._sleep(RING_FOR)
            await self.missed_call()
            chat = self.key(APPS["chat"], 42)
            for step in itertools.count():
                await self._sleep(NEW_EVERY)
                app_id, title, text, extra = STORY[step % len(STORY)]
                await self.post(app_id, title, text, **extra)
                if step % 3 == 1 and chat in self.current:
                    await self.update(chat, text="Alice: I saved you a seat")
                if len(self.current) > MAX_ACTIVE:
                    oldest = next(k for k in self.current if k != chat)
                    await self.remove(oldest)
        except (ConnectionError, OSError) as exc:
            log.info("demo phone timeline stopped: %s", exc)
