"""Native toasts with reply field and buttons through desktop-notifier (Windows, macOS, Linux).

desktop-notifier maps a `ReplyField` and `Button`s to what the platform has (Linux: D-Bus
actions, inline reply where the server supports it; macOS/Windows: native reply and buttons) and
calls `on_dismissed`/`on_clicked`/`on_pressed`/`on_replied` from its own loop integration.
Where there is no notification service (no session bus, a headless server, CI) toasts are logged
instead and `show` returns None: a missing toast must never break a packet handler.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_TOAST_TEXT = 400
"""Characters of the body shown in a toast (the web UI shows the whole text)."""
MAX_BUTTONS = 3
"""Most platforms show at most three buttons."""


def _call(callback: Callable[..., object] | None, *args: Any) -> None:
    """Run a user callback; coroutines are scheduled, errors logged."""
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result)
    except Exception:  # noqa: BLE001 - a toast callback must not break the notifier
        log.exception("toast callback failed")


class NativeToasts:
    def __init__(self, available: bool = True, app_name: str = "PhoneBridge") -> None:
        self._available = available
        self._app_name = app_name
        self._notifier: Any = None
        self._withdrawn: set[str] = set()
        if not available:
            log.info("no notification service: phone notifications are logged only")

    async def show(
        self, title: str, message: str, *, app: str = "", icon: Path | None = None,
        actions: Sequence[str] = (), reply: bool = False,
        on_dismissed: Callable[[], object] | None = None,
        on_replied: Callable[[str], object] | None = None,
        on_action: Callable[[str], object] | None = None,
    ) -> str | None:
        text = message if len(message) <= MAX_TOAST_TEXT else message[: MAX_TOAST_TEXT - 1] + "…"
        heading = f"{app}: {title}" if app and app != title else title
        if not self._available:
            log.info("notification: %s: %s", heading, text)
            return None
        try:
            from desktop_notifier import Button, DesktopNotifier, Icon, Notification, ReplyField

            if self._notifier is None:
                self._notifier = DesktopNotifier(app_name=self._app_name)
            withdrawn = self._withdrawn

            def guarded(fn: Callable[..., object] | None, *args: Any) -> Callable[..., None]:
                def run(*more: Any) -> None:
                    if notification.identifier not in withdrawn:
                        _call(fn, *args, *more)
                return run

            buttons = tuple(Button(title=label, on_pressed=None) for label in list(actions)[:MAX_BUTTONS])
            notification = Notification(
                title=heading, message=text,
                icon=Icon(path=icon) if icon is not None and icon.exists() else None,
                reply_field=ReplyField(title="Reply", button_title="Send") if reply else None,
                buttons=buttons,
            )
            # Callbacks need the notification's identifier: bind them once it exists.
            object.__setattr__(notification, "on_dismissed", guarded(on_dismissed))
            if reply and notification.reply_field is not None:
                object.__setattr__(notification.reply_field, "on_replied", guarded(on_replied))
            for button in buttons:
                object.__setattr__(button, "on_pressed", guarded(on_action, button.title))
            return await self._notifier.send_notification(notification)
        except Exception as exc:  # noqa: BLE001 - any backend failure means: no toasts here
            self._available = False
            log.info("desktop notifications unavailable (%s); logging them instead", exc)
            log.info("notification: %s: %s", heading, text)
            return None

    async def update(self, handle: str, title: str, message: str, **options: Any) -> str | None:
        # No platform replaces a toast with new buttons reliably: withdraw and show again.
        await self.withdraw(handle)
        return await self.show(title, message, **options)

    async def withdraw(self, handle: str) -> None:
        if not handle or self._notifier is None:
            return
        self._withdrawn.add(handle)
        try:
            await self._notifier.clear(handle)
        except Exception as exc:  # noqa: BLE001
            log.debug("could not withdraw toast %s: %s", handle, exc)
