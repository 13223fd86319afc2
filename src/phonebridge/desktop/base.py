"""The desktop services the core uses."""

from __future__ import annotations

from typing import Protocol


class Desktop(Protocol):
    async def notify(self, title: str, message: str) -> None:
        """Show a native notification (a toast); never raises."""
