"""TransferManager: every file, text and URL share in either direction, live and in history.

Rules:
1. A transfer is `active` until it ends `done`, `failed` or `cancelled`; the end state never
   changes again and `error` says why it did not complete (the peer closed, the disk is full, the
   link dropped, the user cancelled on either side).
2. Progress is published as "transfer.changed" at most PROGRESS_EVENT_INTERVAL apart per transfer;
   state changes are published at once. The event's data is `Transfer.to_json()`.
3. The history is written to the store when a transfer starts and when it ends (not on every
   progress step), the changes of one loop turn in one transaction (a bundle of 1,000 files is a
   few writes, not 2,000); transfers a stopped daemon left `active` are marked failed at start.
4. Cancelling calls the canceller the feature registered (the share plugin cancels the payload
   task, which closes the payload connection).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from phonebridge.errors import DeviceError, UnknownDeviceError
from phonebridge.events import Event, EventBus

log = logging.getLogger(__name__)

PROGRESS_EVENT_INTERVAL = 0.25
"""Seconds between progress events of one transfer (a few per second is enough for a UI)."""
RATE_WINDOW = 2.0
"""Seconds of history the transfer rate is averaged over."""
LIVE_LIMIT = 2000
"""Finished transfers kept in memory (the store keeps its own history)."""
TRIM_SLACK = 500

RECORD_FIELDS = ("id", "device", "device_name", "direction", "kind", "name", "size", "transferred",
                 "state", "path", "content", "error", "started", "finished")
"""What the store keeps of a transfer (store/transfers.py columns)."""

ACTIVE, DONE, FAILED, CANCELLED = "active", "done", "failed", "cancelled"
STATES = (ACTIVE, DONE, FAILED, CANCELLED)


class UnknownTransferError(UnknownDeviceError):
    """No transfer has this id (the API answers 404)."""


class TransferStore(Protocol):
    """What the manager needs from store/transfers.py (a fake can stand in)."""

    async def recent(self, limit: int = ...) -> list[Any]: ...
    async def save_many(self, records: list[dict[str, Any]]) -> None: ...
    async def fail_unfinished(self, reason: str, finished: int) -> int: ...
    async def prune(self) -> None: ...


@dataclass
class Transfer:
    id: str
    device: str
    device_name: str
    direction: str
    """"in" (to this computer) or "out"."""
    kind: str
    """"file", "text" or "url"."""
    name: str
    size: int
    transferred: int = 0
    state: str = ACTIVE
    path: str | None = None
    content: str | None = None
    """The text or URL of a text/URL share."""
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    rate: float = 0.0
    """Bytes per second over the last RATE_WINDOW seconds."""
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)
    _last_event: float = field(default=0.0, repr=False)

    @property
    def is_active(self) -> bool:
        return self.state == ACTIVE

    @property
    def eta(self) -> float | None:
        if not self.is_active or self.rate <= 0 or self.size <= 0:
            return None
        return max(0.0, (self.size - self.transferred) / self.rate)

    def to_json(self) -> dict[str, Any]:
        """The public JSON of a transfer (API, `phonebridge transfers --json`): add, never rename."""
        return {
            "id": self.id,
            "device": self.device,
            "device_name": self.device_name,
            "direction": self.direction,
            "kind": self.kind,
            "name": self.name,
            "size": self.size,
            "transferred": self.transferred,
            "state": self.state,
            "path": self.path,
            "content": self.content,
            "error": self.error,
            "rate": round(self.rate, 1),
            "eta": round(self.eta, 1) if self.eta is not None else None,
            "started": int(self.started * 1000),
            "finished": int(self.finished * 1000) if self.finished else None,
        }


class TransferManager:
    def __init__(self, bus: EventBus, store: TransferStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._store = store
        self._clock = clock
        self._live: dict[str, Transfer] = {}
        self._history: list[Transfer] = []
        self._cancellers: dict[str, Callable[[], None]] = {}
        self._unsaved: dict[str, dict[str, Any]] = {}
        self._saver: asyncio.Task | None = None
        self._done_callbacks: dict[str, list[Callable[[Transfer], None]]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._store is None:
            return
        failed = await self._store.fail_unfinished("the daemon stopped", int(self._clock() * 1000))
        if failed:
            log.info("%d transfers were cut off when the daemon last stopped", failed)
        await self._store.prune()
        self._history = [_from_record(r) for r in await self._store.recent()]

    async def stop(self) -> None:
        for transfer in list(self._live.values()):
            if transfer.is_active:
                self.cancel_silently(transfer.id)
                self.finish(transfer, FAILED, "the daemon stopped")
        if self._saver is not None:
            await asyncio.gather(self._saver, return_exceptions=True)

    # -- what features do -------------------------------------------------------------------------

    def create(self, *, device: str, device_name: str, direction: str, kind: str, name: str,
               size: int, path: str | None = None, content: str | None = None) -> Transfer:
        transfer = Transfer(id=secrets.token_hex(6), device=device, device_name=device_name,
                            direction=direction, kind=kind, name=name, size=max(0, size),
                            path=path, content=content, started=self._clock())
        self._live[transfer.id] = transfer
        self._trim()
        self._publish_and_save(transfer)
        return transfer

    def set_canceller(self, transfer: Transfer, cancel: Callable[[], None] | None) -> None:
        if cancel is None:
            self._cancellers.pop(transfer.id, None)
        else:
            self._cancellers[transfer.id] = cancel

    def progress(self, transfer: Transfer, transferred: int) -> None:
        if not transfer.is_active:
            return
        now = time.monotonic()
        transfer.transferred = transferred
        samples = transfer._samples
        samples.append((now, transferred))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.pop(0)
        first_time, first_bytes = samples[0]
        if now > first_time:
            transfer.rate = (transferred - first_bytes) / (now - first_time)
        if now - transfer._last_event >= PROGRESS_EVENT_INTERVAL:
            transfer._last_event = now
            self._publish(transfer)

    def finish(self, transfer: Transfer, state: str, error: str | None = None,
               path: str | None = None) -> None:
        """End a transfer (idempotent: the first end state wins)."""
        assert state in (DONE, FAILED, CANCELLED)
        if not transfer.is_active:
            return
        transfer.state = state
        transfer.error = error
        if path is not None:
            transfer.path = path
        if state == DONE:
            transfer.transferred = transfer.size
        transfer.finished = self._clock()
        transfer.rate = 0.0 if state != DONE else transfer.rate
        self._cancellers.pop(transfer.id, None)
        self._publish_and_save(transfer)
        for callback in self._done_callbacks.pop(transfer.id, []):
            try:
                callback(transfer)
            except Exception:  # noqa: BLE001
                log.exception("a transfer callback failed")

    def add_done_callback(self, transfer: Transfer, callback: Callable[[Transfer], None]) -> None:
        """Call `callback(transfer)` when it ends (at once if it has ended)."""
        if not transfer.is_active:
            callback(transfer)
        else:
            self._done_callbacks.setdefault(transfer.id, []).append(callback)

    # -- what users do ----------------------------------------------------------------------------

    def get(self, transfer_id: str) -> Transfer:
        transfer = self._live.get(transfer_id)
        if transfer is None:
            transfer = next((t for t in self._history if t.id == transfer_id), None)
        if transfer is None:
            raise UnknownTransferError(f"unknown transfer {transfer_id}")
        return transfer

    def list(self) -> list[Transfer]:
        """Newest first: live transfers of this run, then the stored history."""
        seen = set(self._live)
        merged = list(self._live.values()) + [t for t in self._history if t.id not in seen]
        return sorted(merged, key=lambda t: t.started, reverse=True)

    def cancel(self, transfer_id: str, reason: str = "cancelled by the user") -> Transfer:
        transfer = self.get(transfer_id)
        if not transfer.is_active:
            raise DeviceError(f"transfer {transfer_id} is already {transfer.state}")
        self.cancel_silently(transfer_id)
        self.finish(transfer, CANCELLED, reason)
        return transfer

    def cancel_silently(self, transfer_id: str) -> None:
        cancel = self._cancellers.pop(transfer_id, None)
        if cancel is not None:
            try:
                cancel()
            except Exception:  # noqa: BLE001 - cancelling must not fail the caller
                log.exception("cancelling transfer %s failed", transfer_id)

    # -- internals --------------------------------------------------------------------------------

    def _publish(self, transfer: Transfer, data: dict[str, Any] | None = None) -> None:
        self._bus.publish(Event("transfer.changed", transfer.device, data or transfer.to_json()))

    def _publish_and_save(self, transfer: Transfer) -> None:
        data = transfer.to_json()
        self._publish(transfer, data)
        if self._store is None:
            return
        self._unsaved[transfer.id] = {key: data[key] for key in RECORD_FIELDS}
        if self._saver is None or self._saver.done():
            try:
                self._saver = asyncio.get_running_loop().create_task(self._save_pending())
            except RuntimeError:
                return

    async def _save_pending(self) -> None:
        """Write what changed, in one transaction per round, until nothing is left."""
        assert self._store is not None
        while self._unsaved:
            records = list(self._unsaved.values())
            self._unsaved.clear()
            try:
                await self._store.save_many(records)
            except Exception as exc:  # noqa: BLE001 - the live list still has them
                log.warning("could not save %d transfers: %s", len(records), exc)

    def _trim(self) -> None:
        # Trimmed in steps of TRIM_SLACK, not on every new transfer: sorting thousands of live
        # transfers per file made a bundle of 1,000 small files wait on this.
        if len(self._live) <= LIVE_LIMIT + TRIM_SLACK:
            return
        for transfer in sorted(self._live.values(), key=lambda t: t.started):
            if len(self._live) <= LIVE_LIMIT:
                break
            if not transfer.is_active:
                del self._live[transfer.id]
                self._history.insert(0, transfer)
        del self._history[LIVE_LIMIT:]


def _from_record(record: Any) -> Transfer:
    return Transfer(
        id=record.id, device=record.device, device_name=record.device_name,
        direction=record.direction, kind=record.kind, name=record.name, size=record.size,
        transferred=record.transferred, state=record.state, path=record.path,
        content=record.content, error=record.error, started=record.started / 1000,
        finished=record.finished / 1000 if record.finished else None,
    )

