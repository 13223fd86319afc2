"""Native notifications through desktop-notifier (Windows, macOS, Linux via D-Bus).

If the platform service is missing (a headless server, CI) the toast is logged instead: losing a
toast must never break a packet handler.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class NativeDesktop:
    def __init__(self) -> None:
        self._notifier = None
        self._broken = False

    async def notify(self, title: str, message: str) -> None:
        log.info("notification: %s: %s", title, message)
        if self._broken:
            return
        try:
            if self._notifier is None:
                from desktop_notifier import DesktopNotifier

                self._notifier = DesktopNotifier(app_name="PhoneBridge")
            await self._notifier.send(title=title, message=message)
        except Exception as exc:  # noqa: BLE001 - any backend failure means: no toasts here
            self._broken = True
            log.info("desktop notifications unavailable (%s); logging them instead", exc)
