"""The phone's clipboard, as KDE Connect for Android 10 and later handles it (PROTOCOL.md §8.4).

Android 10+ cannot read the clipboard in the background, so the app sends its clipboard only when
the user shares it ("Send clipboard": `share_clipboard`). It does accept the desktop's clipboard at
any time, and on connect sends `clipboard.connect` with the text it knows and when that changed,
applying the desktop's `clipboard.connect` under the same timestamp rule as the desktop.
"""

from __future__ import annotations

import logging
import time

from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int

from .feature import Handler, PhoneFeature

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


class ClipboardFeature(PhoneFeature):
    def __init__(self, phone) -> None:  # noqa: ANN001
        super().__init__(phone)
        self.text: str | None = None
        self.changed_at = 0
        """When `text` last changed (ms), 0 if never: the clipboard.connect timestamp."""
        self.received: list[str] = []
        """Every text the desktop put on this phone's clipboard, in order."""

    def handlers(self) -> dict[str, Handler]:
        return {types.CLIPBOARD: self._on_clipboard, types.CLIPBOARD_CONNECT: self._on_connect}

    async def on_paired(self) -> None:
        await self.phone.send(Packet(types.CLIPBOARD_CONNECT, {
            "content": self.text or "", "timestamp": self.changed_at,
        }))

    async def _on_clipboard(self, packet: Packet) -> None:
        content = packet.body.get("content")
        if isinstance(content, str):
            self._set(content)

    async def _on_connect(self, packet: Packet) -> None:
        content = packet.body.get("content")
        timestamp = body_int(packet.body.get("timestamp"))
        if not isinstance(content, str) or not timestamp or timestamp < self.changed_at:
            return
        self._set(content)

    def _set(self, content: str) -> None:
        self.received.append(content)
        if content != self.text:
            self.text = content
            self.changed_at = now_ms()
        log.info("demo phone clipboard set by the desktop (%d characters)", len(content))

    async def share_clipboard(self, text: str) -> bool:
        """The user copies `text` and taps "Send clipboard" (the only way on Android 10+)."""
        self.text = text
        self.changed_at = now_ms()
        return await self.phone.send(Packet(types.CLIPBOARD, {"content": text}))
