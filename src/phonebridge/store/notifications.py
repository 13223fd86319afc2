"""Repository of phone notifications (history with full-text search) and of muted apps.

One row per (device, phone key): an update from the phone (same id) rewrites the row, a removal
clears `active`, a later post with the same key makes it active again. `notifications_fts` (rowid =
row id) is kept in step here, in the same transaction as the row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .database import Database

MAX_LIST = 1000
"""Most rows one listing returns."""
MAX_HISTORY = 5000
"""Removed notifications kept per device (older ones are pruned when the device links)."""


class NotificationFields(Protocol):
    """What the notifications plugin hands in (plugins/notifications.py PhoneNotification)."""

    key: str
    app: str
    title: str
    text: str
    time: int
    dismissable: bool
    reply_id: str | None
    actions: tuple[str, ...]
    icon: str | None
    silent: bool


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    device_id: str
    key: str
    app: str
    title: str
    text: str
    time: int
    active: bool
    dismissable: bool
    reply_id: str | None
    actions: tuple[str, ...]
    icon: str | None
    silent: bool

    def to_json(self) -> dict[str, Any]:
        """The public shape (CLI `notifications --json`, API, events): add fields, never rename."""
        return {
            "id": self.key, "device": self.device_id, "app": self.app, "title": self.title,
            "text": self.text, "time": self.time, "active": self.active,
            "dismissable": self.dismissable, "can_reply": self.reply_id is not None,
            "actions": list(self.actions), "icon": self.icon, "silent": self.silent,
        }


def _record(row: sqlite3.Row) -> NotificationRecord:
    try:
        actions = tuple(a for a in json.loads(row["actions"]) if isinstance(a, str))
    except (ValueError, TypeError):
        actions = ()
    return NotificationRecord(
        device_id=row["device_id"], key=row["key"], app=row["app"], title=row["title"],
        text=row["text"], time=row["time"], active=bool(row["active"]),
        dismissable=bool(row["dismissable"]), reply_id=row["reply_id"], actions=actions,
        icon=row["icon"], silent=bool(row["silent"]),
    )


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, device_id: str, n: NotificationFields) -> bool:
        """Store a posted or updated notification; True when it was not active before (new)."""
        return await self._db.transaction(lambda conn: _upsert(conn, device_id, n))

    async def apply(self, device_id: str, ops: list[tuple]) -> None:
        """Several writes in one transaction, in order: ("upsert", n), ("deactivate", key),
        ("icon", key, hash). The plugin batches what arrives in a burst this way."""
        def write(conn: sqlite3.Connection) -> None:
            for op in ops:
                if op[0] == "upsert":
                    _upsert(conn, device_id, op[1])
                elif op[0] == "deactivate":
                    conn.execute("UPDATE notifications SET active = 0 WHERE device_id = ? AND key = ?",
                                 (device_id, op[1]))
                elif op[0] == "icon":
                    conn.execute("UPDATE notifications SET icon = ? WHERE device_id = ? AND key = ?",
                                 (op[2], device_id, op[1]))
                else:
                    raise ValueError(f"unknown operation {op[0]!r}")

        await self._db.transaction(write)

    async def deactivate(self, device_id: str, key: str) -> bool:
        """Mark removed; True when it was active."""
        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE notifications SET active = 0 WHERE device_id = ? AND key = ?"
                               " AND active = 1", (device_id, key))
            return cur.rowcount > 0

        return await self._db.transaction(write)

    async def deactivate_all(self, device_id: str, keep: int = MAX_HISTORY) -> list[str]:
        """Mark every active notification of the device removed (returns their keys), and prune
        the history to the newest `keep` rows."""
        def write(conn: sqlite3.Connection) -> list[str]:
            keys = [r[0] for r in conn.execute(
                "SELECT key FROM notifications WHERE device_id = ? AND active = 1", (device_id,))]
            conn.execute("UPDATE notifications SET active = 0 WHERE device_id = ? AND active = 1",
                         (device_id,))
            old = [r[0] for r in conn.execute(
                "SELECT id FROM notifications WHERE device_id = ? ORDER BY time DESC, id DESC"
                " LIMIT -1 OFFSET ?", (device_id, keep))]
            conn.executemany("DELETE FROM notifications_fts WHERE rowid = ?", [(i,) for i in old])
            conn.executemany("DELETE FROM notifications WHERE id = ?", [(i,) for i in old])
            return keys

        return await self._db.transaction(write)

    async def set_icon(self, device_id: str, key: str, icon: str) -> None:
        await self._db.transaction(lambda conn: conn.execute(
            "UPDATE notifications SET icon = ? WHERE device_id = ? AND key = ?", (icon, device_id, key)))

    async def get(self, device_id: str, key: str) -> NotificationRecord | None:
        def read(conn: sqlite3.Connection) -> NotificationRecord | None:
            row = conn.execute("SELECT * FROM notifications WHERE device_id = ? AND key = ?",
                               (device_id, key)).fetchone()
            return _record(row) if row else None

        return await self._db.run(read)

    async def list(self, device_id: str, *, active_only: bool = False,
                   limit: int = MAX_LIST) -> list[NotificationRecord]:
        """Newest first (by the phone's post time, then by arrival)."""
        def read(conn: sqlite3.Connection) -> list[NotificationRecord]:
            where = "device_id = ?" + (" AND active = 1" if active_only else "")
            rows = conn.execute(f"SELECT * FROM notifications WHERE {where}"  # noqa: S608 - constant
                                " ORDER BY time DESC, id DESC LIMIT ?", (device_id, limit)).fetchall()
            return [_record(r) for r in rows]

        return await self._db.run(read)

    # -- muted apps -------------------------------------------------------------------------------

    async def muted_apps(self, device_id: str) -> set[str]:
        def read(conn: sqlite3.Connection) -> set[str]:
            return {r[0] for r in conn.execute("SELECT app FROM muted_apps WHERE device_id = ?",
                                               (device_id,))}

        return await self._db.run(read)

    async def set_muted(self, device_id: str, app: str, muted: bool) -> None:
        def write(conn: sqlite3.Connection) -> None:
            if muted:
                conn.execute("INSERT OR IGNORE INTO muted_apps (device_id, app) VALUES (?, ?)",
                             (device_id, app))
            else:
                conn.execute("DELETE FROM muted_apps WHERE device_id = ? AND app = ?", (device_id, app))

        await self._db.transaction(write)


def _upsert(conn: sqlite3.Connection, device_id: str, n: NotificationFields) -> bool:
    now = int(time.time() * 1000)
    old = conn.execute("SELECT id, active FROM notifications WHERE device_id = ? AND key = ?",
                       (device_id, n.key)).fetchone()
    values = (n.app, n.title, n.text, n.time, int(n.dismissable), n.reply_id,
              json.dumps(list(n.actions)), int(n.silent), now)
    if old is None:
        cur = conn.execute(
            "INSERT INTO notifications (app, title, text, time, dismissable, reply_id, actions,"
            " silent, updated_at, device_id, key, icon, active)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (*values, device_id, n.key, n.icon),
        )
        rowid = cur.lastrowid
    else:
        rowid = old["id"]
        conn.execute(
            "UPDATE notifications SET app = ?, title = ?, text = ?, time = ?, dismissable = ?,"
            " reply_id = ?, actions = ?, silent = ?, updated_at = ?, active = 1,"
            " icon = COALESCE(?, icon) WHERE id = ?",
            (*values, n.icon, rowid),
        )
        conn.execute("DELETE FROM notifications_fts WHERE rowid = ?", (rowid,))
    conn.execute("INSERT INTO notifications_fts (rowid, app, title, text) VALUES (?, ?, ?, ?)",
                 (rowid, n.app, n.title, n.text))
    return old is None or not old["active"]


def search_notifications(conn: sqlite3.Connection, match: str, limit: int) -> list[dict[str, Any]]:
    """One kind for store/search.py: FTS5 `match` over app, title and text."""
    rows = conn.execute(
        "SELECT n.device_id, n.key, n.time,"
        " snippet(notifications_fts, -1, '[', ']', '…', 12) AS snippet"
        " FROM notifications_fts JOIN notifications n ON n.id = notifications_fts.rowid"
        " WHERE notifications_fts MATCH ? ORDER BY n.time DESC LIMIT ?",
        (match, limit),
    ).fetchall()
    return [{"kind": "notification", "device": r["device_id"], "id": r["key"], "date": r["time"],
             "snippet": r["snippet"]} for r in rows]
