"""Clipboard, both ways (PROTOCOL.md §8.4).

Rules:
1. Desktop -> device: every text the user copies here (`ctx.desktop.clipboard.watch`) is sent as
   `kdeconnect.clipboard {content}`.
2. Device -> desktop: `kdeconnect.clipboard {content}` puts `content` on our clipboard and is kept
   as the device's last received clipboard (`state["clipboard"]`, event "clipboard.received").
3. On link we send `kdeconnect.clipboard.connect {content, timestamp}`: our clipboard's text and
   the time (ms) it last changed, 0 if unknown (KDE `ClipboardPlugin::sendConnectPacket`).
   A received `clipboard.connect` is applied only if its timestamp is not 0 and not older than our
   clipboard's last change (KDE and Android do the same), so a reconnect never overwrites newer
   text.
4. No echo: `last_synced` is the text this device and we last agreed on (sent or received). A
   local change equal to it is not sent (that is the text the device just gave us), and text we
   set from the device is not reported by the clipboard as a user change anyway.
Android 10 and later send their clipboard only when the user shares it (GSConnect #702).
"""

from __future__ import annotations

import asyncio
import time

from phonebridge.core.plugin import Plugin, PluginContext, PluginInfo
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int

STATE_KEY = "clipboard"
"""device.state key of the last received clipboard: {"content": str, "time": ms}."""


class ClipboardPlugin(Plugin):
    info = PluginInfo(
        name="clipboard",
        incoming=frozenset({types.CLIPBOARD, types.CLIPBOARD_CONNECT}),
        outgoing=frozenset({types.CLIPBOARD, types.CLIPBOARD_CONNECT}),
        description="Share the clipboard with the device",
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.last_synced: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        unwatch = ctx.desktop.clipboard.watch(self._on_local_change)
        self._unwatch = unwatch if callable(unwatch) else None

    # -- what the clipboard knows --------------------------------------------------------------

    def _changed_at(self) -> int:
        """Our clipboard's last change (ms), 0 if unknown (backends without `changed_at`)."""
        value = getattr(self.ctx.desktop.clipboard, "changed_at", 0)
        return value if isinstance(value, int) and value > 0 else 0

    # -- desktop -> device ----------------------------------------------------------------------

    async def on_connected(self) -> None:
        content = await self.ctx.desktop.clipboard.get_text()
        timestamp = self._changed_at()
        await self.ctx.send(Packet(types.CLIPBOARD_CONNECT, {
            "content": content or "",
            "timestamp": timestamp if content else 0,
        }))

    def _on_local_change(self, text: str) -> None:
        if self._closed or text == self.last_synced:
            return
        task = asyncio.get_running_loop().create_task(self.send_text(text))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.info("%s: clipboard not sent: %s", self.ctx.device_id, task.exception())

    async def send_text(self, text: str) -> bool:
        """Send `text` as this device's new clipboard; returns whether the device accepts it."""
        if not isinstance(text, str):
            raise DeviceError("clipboard content must be text")
        self.last_synced = text
        return await self.ctx.send(Packet(types.CLIPBOARD, {"content": text}))

    # -- device -> desktop ----------------------------------------------------------------------

    async def handle(self, packet: Packet) -> None:
        content = packet.body.get("content")
        if not isinstance(content, str):
            self.log.info("%s: ignoring %s without text content", self.ctx.device_id, packet.type)
            return
        if packet.type == types.CLIPBOARD_CONNECT:
            timestamp = body_int(packet.body.get("timestamp"))
            if timestamp is None or timestamp <= 0:
                self.log.debug("%s: clipboard.connect without a timestamp (or 0): ignored",
                               self.ctx.device_id)
                return
            if timestamp < self._changed_at():
                self.log.debug("%s: clipboard.connect older than our clipboard: ignored",
                               self.ctx.device_id)
                return
        await self._received(content, packet.type)

    async def _received(self, content: str, packet_type: str) -> None:
        self.log.debug("%s: clipboard received (%s, %d characters)", self.ctx.device_id,
                       packet_type, len(content))
        self.last_synced = content
        self.ctx.state[STATE_KEY] = {"content": content, "time": int(time.time() * 1000)}
        self.ctx.publish("clipboard.received", content=content)
        if await self.ctx.desktop.clipboard.get_text() != content:
            await self.ctx.desktop.clipboard.set_text(content)

    def close(self) -> None:
        self._closed = True
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for task in list(self._tasks):
            task.cancel()
