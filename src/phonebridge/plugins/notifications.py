"""Phone notifications on the desktop (PROTOCOL.md §8.6): mirror, dismiss, reply, act.

Rules:
1. A `kdeconnect.notification` is posted (new id), updated (known id) or removed (`isCancel`).
   Peers disagree on types (§10.8): `id` may be an int (KDE on Windows, KDE's sendnotifications),
   `time` is a string of ms (Android) or absent (KDE), booleans may be strings. A body without an
   id, or without any of title/text/ticker, is skipped with a log line.
2. `silent: true` marks a notification that already existed (the answer to our request on link):
   stored, listed, no toast. `onlyOnce` (Valent's schema): an update of it raises no new toast.
   Muted apps (per device, in the store) never raise a toast either.
3. Icons come as a payload only the first time a (id, payloadHash) is sent; they are cached on disk
   under HOME/cache/icons by hash (bounded, oldest evicted) and fetched in the background so a
   payload that never arrives cannot hold up the link. Non-images are dropped.
4. On link we ask for every current notification (`notification.request {"request": true}`) after
   marking what we had as inactive: what is still there comes back, silently.
5. Dismiss/reply/act only on what the phone offered: an unknown or removed notification, a
   notification without `requestReplyId`, or an action not in its list is a DeviceError (HTTP
   409, CLI exit 1) and nothing is sent. A toast the user closes dismisses the phone's
   notification; a removal on the phone withdraws the toast.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_bool, body_int

MAX_TEXT = 16 * 1024
"""Characters of title/text kept (a phone may send a whole e-mail as text)."""
MAX_FIELD = 256
"""Characters of app names, keys and action labels kept."""
MAX_ACTIONS = 8
MAX_ICON_BYTES = 512 * 1024
"""Icons larger than this are not fetched (Android sends ~100 px PNGs of a few KiB)."""
ICON_CACHE_FILES = 500
"""Icons kept on disk; the least recently written go first."""
ICON_FETCH_TIMEOUT = 15.0
"""Seconds an icon download may take in all before it is given up."""
_HASH = re.compile(r"^[0-9a-f]{32}$")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


@dataclass(frozen=True, slots=True)
class PhoneNotification:
    key: str
    app: str
    title: str
    text: str
    time: int
    dismissable: bool
    reply_id: str | None
    actions: tuple[str, ...]
    icon: str | None
    """Hash of the cached icon, or None."""
    silent: bool
    only_once: bool = False
    payload_hash: str | None = None
    active: bool = True

    def to_json(self, device_id: str) -> dict[str, Any]:
        """Same shape as store.notifications.NotificationRecord.to_json."""
        return {
            "id": self.key, "device": device_id, "app": self.app, "title": self.title,
            "text": self.text, "time": self.time, "active": self.active,
            "dismissable": self.dismissable, "can_reply": self.reply_id is not None,
            "actions": list(self.actions), "icon": self.icon, "silent": self.silent,
        }


@dataclass(frozen=True, slots=True)
class Removal:
    key: str


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if isinstance(value, str):
        return value[:limit]
    return ""


def notification_key(value: Any) -> str | None:
    """The notification id as text: strings as they are, integers (KDE) in decimal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value and len(value) <= 1024:
        return value
    return None


def parse_notification(body: dict[str, Any], now_ms: int) -> PhoneNotification | Removal | None:
    """A notification packet's body -> what it means; None when it is unusable (rule 1)."""
    key = notification_key(body.get("id"))
    if key is None:
        return None
    if body_bool(body.get("isCancel")):
        return Removal(key)
    app = _text(body.get("appName"), MAX_FIELD)
    title = _text(body.get("title"))
    text = _text(body.get("text"))
    ticker = _text(body.get("ticker"))
    if not title and not text:
        if not ticker:
            return None
        # Old peers send only the ticker, "title: text".
        head, sep, tail = ticker.partition(": ")
        if sep:
            title, text = head, tail
        else:
            title, text = (app, ticker) if app else (ticker, "")
    if not title:
        title = app or "Notification"
    stamp = body_int(body.get("time"))
    if stamp is None or stamp <= 0 or stamp > 10**14:
        stamp = now_ms
    raw_actions = body.get("actions")
    actions: list[str] = []
    if isinstance(raw_actions, list):
        for action in raw_actions:
            if isinstance(action, str) and action and action not in actions:
                actions.append(action[:MAX_FIELD])
    reply_id = body.get("requestReplyId")
    reply_id = reply_id if isinstance(reply_id, str) and reply_id and len(reply_id) <= MAX_FIELD else None
    payload_hash = body.get("payloadHash")
    payload_hash = payload_hash.lower() if isinstance(payload_hash, str) and _HASH.match(payload_hash.lower()) else None
    return PhoneNotification(
        key=key, app=app, title=title, text=text, time=stamp,
        dismissable=body_bool(body.get("isClearable")), reply_id=reply_id,
        actions=tuple(actions[:MAX_ACTIONS]), icon=None, silent=body_bool(body.get("silent")),
        only_once=body_bool(body.get("onlyOnce")), payload_hash=payload_hash,
    )


def is_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


class IconCache:
    """Icons on disk by MD5 hash (`<hash>.img`), at most `max_files`, oldest written evicted."""

    def __init__(self, folder: Path, max_files: int = ICON_CACHE_FILES) -> None:
        self.folder = folder
        self.max_files = max_files

    def path(self, icon_hash: str) -> Path | None:
        if not _HASH.match(icon_hash):
            return None
        path = self.folder / f"{icon_hash}.img"
        return path if path.exists() else None

    def store(self, data: bytes) -> str:
        """Write an image; returns its hash (the MD5 of the bytes, as payloadHash is)."""
        icon_hash = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{icon_hash}.img"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            self._evict()
        return icon_hash

    def _evict(self) -> None:
        files = list(self.folder.glob("*.img"))
        if len(files) <= self.max_files:
            return
        files.sort(key=lambda p: p.stat().st_mtime)
        for old in files[: len(files) - self.max_files]:
            with contextlib.suppress(OSError):
                old.unlink()


class NotificationsPlugin(Plugin):
    info = PluginInfo(
        name="notifications",
        incoming=frozenset({types.NOTIFICATION}),
        outgoing=frozenset({types.NOTIFICATION_REQUEST, types.NOTIFICATION_ACTION,
                            types.NOTIFICATION_REPLY}),
        description="Show the phone's notifications; dismiss, reply and act on them",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self.active: dict[str, PhoneNotification] = {}
        self._toasts: dict[str, str] = {}
        self._muted: set[str] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writes: list[tuple] = []
        self._writer: asyncio.Task | None = None
        home = ctx.services.home
        self.icons = IconCache(Path(home) / "cache" / "icons") if home is not None else None

    @property
    def _repo(self) -> Any:
        return self.ctx.services.notifications

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the store, written behind ---------------------------------------------------------------
    # What is shown lives in `active` (memory): events and toasts go out from there at once, and
    # the store gets what arrived meanwhile in one transaction (a burst of notifications costs one
    # commit, and the store never delays an event). Writes keep their order.

    def _write(self, *op: Any) -> None:
        if self._repo is None:
            return
        self._writes.append(op)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all())

    async def _write_all(self) -> None:
        while self._writes:
            batch, self._writes = self._writes, []
            try:
                await self._repo.apply(self.ctx.device_id, batch)
            except Exception:  # noqa: BLE001 - the store failing must not stop the mirror
                self.log.exception("%s: storing %d notification changes failed", self.ctx.device_id,
                                   len(batch))

    async def flush(self) -> None:
        """Wait until every change so far is in the store."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    # -- link ------------------------------------------------------------------------------------

    async def on_connected(self) -> None:
        stale = set(self.active)
        self.active.clear()
        await self.flush()
        if self._repo is not None:
            stale |= set(await self._repo.deactivate_all(self.ctx.device_id))
        for key in stale:
            await self._withdraw_toast(key)
            self.ctx.publish("notification.removed", id=key, reason="resync")
        await self.ctx.send(Packet(types.NOTIFICATION_REQUEST, {"request": True}))

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- packets ---------------------------------------------------------------------------------

    async def handle(self, packet: Packet) -> None:
        parsed = parse_notification(packet.body, int(time.time() * 1000))
        if parsed is None:
            self.log.info("%s: skipping a notification without id or content", self.ctx.device_id)
            return
        if isinstance(parsed, Removal):
            await self._removed(parsed.key)
            return
        icon = None
        if parsed.payload_hash and self.icons is not None and self.icons.path(parsed.payload_hash):
            icon = parsed.payload_hash
        elif packet.has_payload and self.icons is not None:
            self._spawn(self._fetch_icon(packet, parsed.key))
        previous = self.active.get(parsed.key)
        if icon is None and previous is not None and parsed.payload_hash == previous.payload_hash:
            icon = previous.icon
        notification = replace(parsed, icon=icon)
        self.active[notification.key] = notification
        self._write("upsert", notification)
        is_new = previous is None  # after a link, `active` starts empty (on_connected)
        event = "notification.posted" if is_new else "notification.updated"
        self.ctx.publish(event, **notification.to_json(self.ctx.device_id))
        await self._toast(notification, is_new)

    async def _removed(self, key: str) -> None:
        was = self.active.pop(key, None) is not None
        if was:
            self._write("deactivate", key)
        await self._withdraw_toast(key)
        if was:
            self.ctx.publish("notification.removed", id=key, reason="removed on the device")

    async def _fetch_icon(self, packet: Packet, key: str) -> None:
        size = packet.payload_size or 0
        if size < 0 or size > MAX_ICON_BYTES:
            self.log.info("%s: not fetching an icon of %d bytes", self.ctx.device_id, size)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(ICON_FETCH_TIMEOUT):
                await self.ctx.fetch_payload(packet, chunks.append)
        except (ConnectionError, OSError, TimeoutError, DeviceError) as exc:
            self.log.info("%s: icon of %s did not arrive: %s", self.ctx.device_id, key, exc)
            return
        data = b"".join(chunks)
        if not is_image(data):
            self.log.info("%s: icon of %s is not an image; dropped", self.ctx.device_id, key)
            return
        assert self.icons is not None
        icon_hash = await asyncio.to_thread(self.icons.store, data)
        current = self.active.get(key)
        if current is None:
            return
        updated = replace(current, icon=icon_hash)
        self.active[key] = updated
        self._write("icon", key, icon_hash)
        self.ctx.publish("notification.updated", **updated.to_json(self.ctx.device_id))

    # -- toasts ----------------------------------------------------------------------------------

    async def muted_apps(self) -> set[str]:
        if self._muted is None:
            self._muted = await self._repo.muted_apps(self.ctx.device_id) if self._repo else set()
        return self._muted

    async def set_muted(self, app: str, muted: bool) -> None:
        apps = await self.muted_apps()
        (apps.add if muted else apps.discard)(app)
        if self._repo is not None:
            await self._repo.set_muted(self.ctx.device_id, app, muted)

    async def _toast(self, n: PhoneNotification, is_new: bool) -> None:
        toasts = getattr(self.ctx.desktop, "toasts", None)
        if toasts is None or n.silent or n.app in await self.muted_apps():
            return
        handle = self._toasts.get(n.key)
        if not is_new and n.only_once and handle is None:
            return
        key = n.key
        options: dict[str, Any] = {
            "app": n.app,
            "icon": self.icons.path(n.icon) if self.icons and n.icon else None,
            "actions": n.actions, "reply": n.reply_id is not None,
            "on_dismissed": lambda: self._spawn(self._quietly(self.dismiss(key, from_toast=True))),
            "on_replied": lambda text: self._spawn(self._quietly(self.reply(key, text))),
            "on_action": lambda action: self._spawn(self._quietly(self.action(key, action))),
        }
        if handle is not None:
            new = await toasts.update(handle, n.title, n.text, **options)
        else:
            new = await toasts.show(n.title, n.text, **options)
        if new is not None:
            self._toasts[key] = new
        else:
            self._toasts.pop(key, None)

    async def _withdraw_toast(self, key: str) -> None:
        handle = self._toasts.pop(key, None)
        toasts = getattr(self.ctx.desktop, "toasts", None)
        if handle is not None and toasts is not None:
            await toasts.withdraw(handle)

    async def _quietly(self, coro) -> None:  # noqa: ANN001
        try:
            await coro
        except DeviceError as exc:
            self.log.info("%s: %s", self.ctx.device_id, exc)

    # -- what the user does ----------------------------------------------------------------------

    def _get(self, key: str) -> PhoneNotification:
        n = self.active.get(key)
        if n is None:
            raise DeviceError(f"no notification {key!r} is shown on the device (any more)")
        return n

    async def _send(self, packet: Packet) -> None:
        if not await self.ctx.send(packet):
            raise DeviceError(f"the device does not accept {packet.type}")

    async def dismiss(self, key: str, *, from_toast: bool = False) -> None:
        """Dismiss on the phone (and here). Raises DeviceError if it is not dismissable."""
        n = self._get(key)
        if not n.dismissable:
            raise DeviceError(f"the notification {key!r} cannot be dismissed from here")
        await self._send(Packet(types.NOTIFICATION_REQUEST, {"cancel": key}))
        if from_toast:
            self._toasts.pop(key, None)
        await self._removed(key)

    async def reply(self, key: str, message: str) -> None:
        n = self._get(key)
        if n.reply_id is None:
            raise DeviceError(f"the notification {key!r} takes no reply")
        if not message:
            raise DeviceError("the reply is empty")
        await self._send(Packet(types.NOTIFICATION_REPLY, {"requestReplyId": n.reply_id,
                                                           "message": message}))

    async def action(self, key: str, action: str) -> None:
        n = self._get(key)
        if action not in n.actions:
            offered = ", ".join(n.actions) or "none"
            raise DeviceError(f"the notification {key!r} has no action {action!r} (actions: {offered})")
        await self._send(Packet(types.NOTIFICATION_ACTION, {"key": key, "action": action}))
