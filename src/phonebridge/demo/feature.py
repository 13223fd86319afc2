"""PhoneFeature: one feature of the simulated phone, as the Android app implements it.

A feature answers some packet types (`handlers`) and may act once the phone is paired and linked
(`on_paired`), e.g. send its battery like Android does on connect. Add a feature = one module here
and one entry in `phone.FEATURES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from phonebridge.protocol.packet import Packet

if TYPE_CHECKING:
    from .phone import DemoPhone

Handler = Callable[[Packet], Awaitable[None]]


class PhoneFeature:
    def __init__(self, phone: DemoPhone) -> None:
        self.phone = phone

    def handlers(self) -> dict[str, Handler]:
        """Packet type -> coroutine handling it (only called while paired)."""
        return {}

    async def on_paired(self) -> None:
        """The link to the desktop is up and paired (first time or again)."""

    async def close(self) -> None:
        """The phone stops."""
