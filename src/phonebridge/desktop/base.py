"""The desktop services the core and plugins use, as small interfaces; fakes live in fake.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol


class Clipboard(Protocol):
    """The OS clipboard (text). Real backends: desktop/clipboard.py."""

    async def get_text(self) -> str | None:
        """Current text on the clipboard, None if empty or not text."""

    async def set_text(self, text: str) -> None:
        """Put text on the clipboard (must not be reported back as a local change)."""

    changed_at: int
    """When the clipboard last changed (ms since the epoch), 0 if never seen to change."""

    def watch(self, on_change: Callable[[str], None]) -> Callable[[], None]:
        """Call `on_change(text)` whenever the user copies new text (polling is fine); returns
        the function that stops watching (plugins come and go with links)."""


class Opener(Protocol):
    """Opening things for the user. Real backend: desktop/opener.py."""

    async def open_url(self, url: str) -> None: ...

    async def reveal(self, path: Path) -> None:
        """Show the file in the system's file manager."""


class Toasts(Protocol):
    """Native notifications with callbacks (phone notifications). Real backend: desktop/toasts.py.

    `show` returns a handle for `update`/`withdraw`, or None when nothing could be shown (no
    notification service: then it logs). No method raises. Callbacks run on the event loop:
    `on_dismissed()` when the user closed the toast (not when we withdrew it), `on_replied(text)`
    from the reply field, `on_action(label)` from a button.
    """

    async def show(
        self, title: str, message: str, *, app: str = "", icon: Path | None = None,
        actions: Sequence[str] = (), reply: bool = False,
        on_dismissed: Callable[[], object] | None = None,
        on_replied: Callable[[str], object] | None = None,
        on_action: Callable[[str], object] | None = None,
    ) -> str | None: ...

    async def update(self, handle: str, title: str, message: str, **options: object) -> str | None:
        """Replace the toast's content (same options as `show`); returns the (new) handle."""

    async def withdraw(self, handle: str) -> None:
        """Remove the toast without calling `on_dismissed`."""


class Desktop(Protocol):
    clipboard: Clipboard
    opener: Opener
    toasts: Toasts

    async def notify(self, title: str, message: str) -> None:
        """Show a native notification (a toast); never raises."""
