"""The event bus: the core publishes, the WebSocket API, desktop toasts and tests subscribe.

Each subscriber has a bounded queue. A subscriber that falls behind is not allowed to slow the
daemon: its queue is emptied and it receives one `resync` event, after which it re-reads state.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

SUBSCRIBER_QUEUE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """`type` like "device.changed"; `device` the device id it concerns, if any."""

    type: str
    device: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "device": self.device, "data": self.data,
                "time": int(self.time * 1000)}


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    def _offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Event("resync"))

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, maxsize: int = SUBSCRIBER_QUEUE) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscribers.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in list(self._subscribers):
            sub._offer(event)
