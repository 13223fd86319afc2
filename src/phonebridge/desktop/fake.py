"""In-memory desktop for tests and headless runs: remembers what it was asked to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class FakeClipboard:
    def __init__(self) -> None:
        self.text: str | None = None
        self._watchers: list[Callable[[str], None]] = []

    async def get_text(self) -> str | None:
        return self.text

    async def set_text(self, text: str) -> None:
        self.text = text  # set by us: not reported as a user change

    def watch(self, on_change: Callable[[str], None]) -> None:
        self._watchers.append(on_change)

    def user_copies(self, text: str) -> None:
        """Simulate the user copying text on this computer."""
        self.text = text
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


class FakeDesktop:
    def __init__(self) -> None:
        self.notifications: list[tuple[str, str]] = []
        self.clipboard = FakeClipboard()
        self.opener = FakeOpener()

    async def notify(self, title: str, message: str) -> None:
        self.notifications.append((title, message))
