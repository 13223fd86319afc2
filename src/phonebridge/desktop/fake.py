"""In-memory desktop for tests and headless runs: remembers what it was asked to do."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


class FakeClipboard:
    """`changed_at` (ms, 0 = never) and `watch` returning an unwatch function are as in
    desktop/clipboard.py; `set_texts` records what was put there for the user."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.changed_at = 0
        self.set_texts: list[str] = []
        self._watchers: list[Callable[[str], None]] = []

    async def get_text(self) -> str | None:
        return self.text

    async def set_text(self, text: str) -> None:
        self.text = text  # set by us: not reported as a user change
        self.changed_at = int(time.time() * 1000)
        self.set_texts.append(text)

    def watch(self, on_change: Callable[[str], None]) -> Callable[[], None]:
        self._watchers.append(on_change)

        def unwatch() -> None:
            if on_change in self._watchers:
                self._watchers.remove(on_change)

        return unwatch

    def user_copies(self, text: str, at: int | None = None) -> None:
        """Simulate the user copying text on this computer (at `at` ms, default now)."""
        self.text = text
        self.changed_at = int(time.time() * 1000) if at is None else at
        for watcher in list(self._watchers):
            watcher(text)


class FakeOpener:
    def __init__(self) -> None:
        self.opened_urls: list[str] = []
        self.revealed: list[Path] = []

    async def open_url(self, url: str) -> None:
        self.opened_urls.append(url)

    async def reveal(self, path: Path) -> None:
        self.revealed.append(path)


class FakeToasts:
    """Toasts kept in `shown` (handle -> dict); tests play the user with dismiss/reply/press."""

    def __init__(self) -> None:
        self.shown: dict[str, dict] = {}
        self.withdrawn: list[str] = []
        self._next = 0

    async def show(self, title: str, message: str, **options) -> str | None:  # noqa: ANN003
        self._next += 1
        handle = f"toast-{self._next}"
        self.shown[handle] = {"title": title, "message": message, **options}
        return handle

    async def update(self, handle: str, title: str, message: str, **options) -> str | None:  # noqa: ANN003
        self.shown.pop(handle, None)
        return await self.show(title, message, **options)

    async def withdraw(self, handle: str) -> None:
        if self.shown.pop(handle, None) is not None:
            self.withdrawn.append(handle)

    def find(self, title: str) -> str | None:
        return next((h for h, t in self.shown.items() if t["title"] == title), None)

    def user_dismisses(self, handle: str) -> None:
        toast = self.shown.pop(handle)
        if toast.get("on_dismissed"):
            toast["on_dismissed"]()

    def user_replies(self, handle: str, text: str) -> None:
        toast = self.shown.pop(handle)
        toast["on_replied"](text)

    def user_presses(self, handle: str, action: str) -> None:
        toast = self.shown.pop(handle)
        toast["on_action"](action)


class FakeDesktop:
    def __init__(self) -> None:
        self.notifications: list[tuple[str, str]] = []
        self.clipboard = FakeClipboard()
        self.opener = FakeOpener()
        self.toasts = FakeToasts()

    async def notify(self, title: str, message: str) -> None:
        self.notifications.append((title, message))
