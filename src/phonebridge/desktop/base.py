"""The desktop services the core and plugins use, as small interfaces; fakes live in fake.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class Clipboard(Protocol):
    """The OS clipboard (text). Real backends: desktop/clipboard.py."""

    async def get_text(self) -> str | None:
        """Current text on the clipboard, None if empty or not text."""

    async def set_text(self, text: str) -> None:
        """Put text on the clipboard (must not be reported back as a local change)."""

    def watch(self, on_change: Callable[[str], None]) -> None:
        """Call `on_change(text)` whenever the user copies new text (polling is fine)."""


class Opener(Protocol):
    """Opening things for the user. Real backend: desktop/opener.py."""

    async def open_url(self, url: str) -> None: ...

    async def reveal(self, path: Path) -> None:
        """Show the file in the system's file manager."""


class Desktop(Protocol):
    clipboard: Clipboard
    opener: Opener

    async def notify(self, title: str, message: str) -> None:
        """Show a native notification (a toast); never raises."""
