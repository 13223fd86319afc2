"""Native notifications through desktop-notifier (Windows, macOS, Linux via D-Bus).

Where the platform service is missing (a headless server, CI, no session bus) the toast is logged
instead: losing a toast must never break a packet handler.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .toasts import NativeToasts

log = logging.getLogger(__name__)
logging.getLogger("desktop_notifier").setLevel(logging.ERROR)  # it logs full tracebacks itself


def _has_session_bus() -> bool:
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return bool(runtime) and (Path(runtime) / "bus").exists()


class NativeDesktop:
    def __init__(self) -> None:
        from .clipboard import system_clipboard

        self.clipboard = system_clipboard()
        from .opener import SystemOpener

        self.opener = SystemOpener()
        self.toasts = NativeToasts(available=not sys.platform.startswith("linux") or _has_session_bus())
        self._notifier = None
        self._available = not sys.platform.startswith("linux") or _has_session_bus()
        if not self._available:
            log.info("no D-Bus session bus: desktop notifications are logged only")

    async def notify(self, title: str, message: str) -> None:
        if not self._available:
            log.info("notification: %s: %s", title, message)
            return
        log.debug("notification: %s: %s", title, message)
        try:
            if self._notifier is None:
                from desktop_notifier import DesktopNotifier

                self._notifier = DesktopNotifier(app_name="PhoneBridge")
            await self._notifier.send(title=title, message=message)
        except Exception as exc:  # noqa: BLE001 - any backend failure means: no toasts here
            self._available = False
            log.info("desktop notifications unavailable (%s); logging them instead", exc)
