"""Calls on the desktop (PROTOCOL.md §8.8): ringing, talking, missed; mute the ringer.

Rules:
1. Android sends `ringing`/`talking`; when that call state ends it resends the same packet with
   `isCancel: "true"` (a *string*; others send a bool) and, if the call was never answered, a
   `missedCall` packet follows. KDE's mmtelephony may send `disconnected`. So: isCancel (or
   `disconnected`) = "ended", `missedCall` = "missed"; `sms` (deprecated) and unknown events are
   ignored.
2. Every event goes into the calls log (store/calls.py) with our clock (the phone sends none) and
   is published as `call.changed` ({event, number, name, time, thumbnail, active}); `current`
   holds the call in progress for the UI's banner.
3. A ringing call raises a toast with a "Mute" button; it is withdrawn when the call state ends.
   A missed call raises a toast of its own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_bool

EVENTS = {"ringing": "ringing", "talking": "talking", "missedCall": "missed", "disconnected": "ended"}
"""The phone's event names -> ours."""
MAX_THUMBNAIL = 256 * 1024
"""Characters of base64 contact photo passed on (larger ones are dropped)."""
MAX_FIELD = 256
MUTE_ACTION = "Mute"


@dataclass(frozen=True, slots=True)
class CallEvent:
    event: str
    """"ringing", "talking", "missed" or "ended"."""
    number: str | None
    name: str | None
    thumbnail: str | None
    """base64 JPEG, already checked to decode."""


def _field(value: Any) -> str | None:
    return value[:MAX_FIELD] if isinstance(value, str) and value.strip() else None


def parse_call(body: dict[str, Any]) -> CallEvent | None:
    """A telephony body -> the call event it means (rule 1); None for what we ignore."""
    raw = body.get("event")
    if not isinstance(raw, str) or raw not in EVENTS:
        return None
    event = EVENTS[raw]
    if body_bool(body.get("isCancel")) and event in ("ringing", "talking"):
        event = "ended"
    number = _field(body.get("phoneNumber"))
    name = _field(body.get("contactName"))
    thumbnail = body.get("phoneThumbnail")
    if isinstance(thumbnail, str) and 0 < len(thumbnail) <= MAX_THUMBNAIL:
        try:
            base64.b64decode(thumbnail, validate=True)
        except (binascii.Error, ValueError):
            thumbnail = None
    else:
        thumbnail = None
    return CallEvent(event, number, name, thumbnail)


class TelephonyPlugin(Plugin):
    info = PluginInfo(
        name="telephony",
        incoming=frozenset({types.TELEPHONY}),
        outgoing=frozenset({types.TELEPHONY_REQUEST_MUTE}),
        description="Show incoming and missed calls; mute the ringer",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self.current: dict[str, Any] | None = None
        self._toast: str | None = None
        self._tasks: set[asyncio.Task] = set()

    def _mute_from_toast(self, _label: str) -> None:
        async def run() -> None:
            try:
                await self.mute()
            except DeviceError as exc:
                self.log.info("%s: %s", self.ctx.device_id, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, packet: Packet) -> None:
        call = parse_call(packet.body)
        if call is None:
            self.log.debug("%s: ignoring telephony event %r", self.ctx.device_id, packet.body.get("event"))
            return
        now = int(time.time() * 1000)
        data = {"event": call.event, "number": call.number, "name": call.name, "time": now,
                "thumbnail": call.thumbnail, "active": call.event in ("ringing", "talking")}
        self.current = data if data["active"] else None
        repo = self.ctx.services.calls
        if repo is not None:
            await repo.add(CallRow(self.ctx.device_id, call.event, call.number, call.name, now))
        self.ctx.publish("call.changed", **data)
        await self._show(call)

    async def _show(self, call: CallEvent) -> None:
        toasts = getattr(self.ctx.desktop, "toasts", None)
        if toasts is None:
            return
        if self._toast is not None:
            await toasts.withdraw(self._toast)
            self._toast = None
        who = call.name or call.number or "Unknown number"
        if call.name and call.number and call.name != call.number:
            who = f"{call.name} ({call.number})"
        if call.event == "ringing":
            self._toast = await toasts.show(
                f"Incoming call on {self.ctx.device_name()}", who, actions=[MUTE_ACTION],
                on_action=self._mute_from_toast)
        elif call.event == "missed":
            await toasts.show(f"Missed call on {self.ctx.device_name()}", who)

    async def mute(self) -> None:
        """Silence the phone's ringer. Raises DeviceError if the phone does not accept it."""
        if not await self.ctx.send(Packet(types.TELEPHONY_REQUEST_MUTE, {})):
            raise DeviceError("the device does not accept requests to mute its ringer")

    def close(self) -> None:
        self.current = None
        for task in list(self._tasks):
            task.cancel()


@dataclass(frozen=True, slots=True)
class CallRow:
    """One line of the calls log, as store.calls.CallRepository.add takes it (plugins do not
    import the store)."""

    device_id: str
    event: str
    number: str | None
    name: str | None
    time: int
