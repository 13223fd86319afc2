"""Repository of the transfer history (core/transfers.py keeps the live ones in memory)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import Database

HISTORY_LIMIT = 1000
"""Rows kept; older transfers are forgotten (the files themselves stay)."""


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: str
    device: str
    device_name: str
    direction: str
    kind: str
    name: str
    size: int
    transferred: int
    state: str
    path: str | None
    content: str | None
    error: str | None
    started: int
    finished: int | None


_COLUMNS = ("id", "device", "device_name", "direction", "kind", "name", "size", "transferred",
            "state", "path", "content", "error", "started", "finished")


class TransferRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def recent(self, limit: int = HISTORY_LIMIT) -> list[TransferRecord]:
        """Newest first."""
        def query(conn: sqlite3.Connection) -> list[TransferRecord]:
            rows = conn.execute(
                "SELECT * FROM transfers ORDER BY started DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
            return [TransferRecord(**dict(row)) for row in rows]

        return await self._db.run(query)

    async def save(self, record: dict[str, Any]) -> None:
        """Insert or update one transfer (a dict with every column)."""
        await self.save_many([record])

    async def save_many(self, records: list[dict[str, Any]]) -> None:
        """Insert or update several transfers in one transaction."""
        rows = [tuple(r[c] for c in _COLUMNS) for r in records]
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS[1:])

        def upsert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT INTO transfers ({', '.join(_COLUMNS)}) VALUES"  # noqa: S608 - fixed names
                f" ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT(id) DO UPDATE SET {updates}",
                rows,
            )

        await self._db.transaction(upsert)

    async def fail_unfinished(self, reason: str, finished: int) -> int:
        """Mark transfers left active by a daemon that stopped as failed; returns how many."""
        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE transfers SET state = 'failed', error = ?, finished = ? WHERE state = 'active'",
                (reason, finished),
            ).rowcount

        return await self._db.transaction(update)

    async def prune(self, keep: int = HISTORY_LIMIT) -> None:
        await self._db.transaction(lambda conn: conn.execute(
            "DELETE FROM transfers WHERE id NOT IN"
            " (SELECT id FROM transfers ORDER BY started DESC, rowid DESC LIMIT ?)", (keep,)))
