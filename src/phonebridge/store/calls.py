"""Repository of the calls log (PROTOCOL.md §8.8): one row per call event, newest first."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import Database

MAX_CALLS = 5000
"""Rows kept per device; older ones are dropped when a new one is added."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    device_id: str
    event: str
    """"ringing", "talking", "missed" or "ended"."""
    number: str | None
    name: str | None
    time: int
    """Milliseconds since the epoch (our clock: the phone sends no time)."""

    def to_json(self) -> dict[str, Any]:
        """The public shape (CLI `calls --json`, API, `call.changed`): add fields, never rename."""
        return {"event": self.event, "number": self.number, "name": self.name, "time": self.time,
                "device": self.device_id}


class CallRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, call: CallRecord) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO calls (device_id, event, number, name, time) VALUES (?, ?, ?, ?, ?)",
                         (call.device_id, call.event, call.number, call.name, call.time))
            conn.execute(
                "DELETE FROM calls WHERE device_id = ? AND id NOT IN"
                " (SELECT id FROM calls WHERE device_id = ? ORDER BY id DESC LIMIT ?)",
                (call.device_id, call.device_id, MAX_CALLS),
            )

        await self._db.transaction(write)

    async def list(self, device_id: str, limit: int = 500) -> list[CallRecord]:
        def read(conn: sqlite3.Connection) -> list[CallRecord]:
            rows = conn.execute("SELECT device_id, event, number, name, time FROM calls"
                                " WHERE device_id = ? ORDER BY time DESC, id DESC LIMIT ?",
                                (device_id, limit)).fetchall()
            return [CallRecord(**dict(r)) for r in rows]

        return await self._db.run(read)
