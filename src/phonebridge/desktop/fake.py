"""In-memory desktop for tests and headless runs: remembers what it was asked to show."""

from __future__ import annotations


class FakeDesktop:
    def __init__(self) -> None:
        self.notifications: list[tuple[str, str]] = []

    async def notify(self, title: str, message: str) -> None:
        self.notifications.append((title, message))
