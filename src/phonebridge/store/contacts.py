"""Repository of the phone's contacts (PROTOCOL.md §8.9): one row per (device, uid), its numbers.

Numbers are matched in normalised form (`normalize_number`): the digits only, and of long numbers
the last 10 digits, so "+1 (555) 555-0123", "555-555-0123" and "0015555550123" are one number.
Threads get their participants' names and photos through `names_for`. `contacts_fts` (rowid =
contact row id) is kept in step here, in the same transaction as the row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .database import Database

MATCH_DIGITS = 10
"""Trailing digits compared for long numbers (national part; country prefixes vary in form)."""
MIN_DIGITS = 5
"""Shorter digit strings (short codes) must match whole; strings without digits (e-mail) as text."""


def fold_text(text: str) -> str:
    from .messages import fold_text as fold

    return fold(text)


def normalize_number(address: str) -> str:
    digits = "".join(ch for ch in address if ch.isdigit())
    if len(digits) < MIN_DIGITS:
        return address.strip().casefold()
    return digits[-MATCH_DIGITS:]


@dataclass(frozen=True, slots=True)
class Contact:
    uid: str
    name: str
    timestamp: int
    numbers: tuple[str, ...]
    photo: str | None = None
    """base64 image as the vCard carries it."""


def names_for(conn: sqlite3.Connection, device_id: str, addresses: list[str]) -> list[dict[str, Any]]:
    """For each address: {"name": contact name or the address, "uid": contact uid or None}."""
    out = []
    for address in addresses:
        row = conn.execute(
            "SELECT c.uid, c.name FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id"
            " WHERE n.normalized = ? AND c.device_id = ? ORDER BY c.id LIMIT 1",
            (normalize_number(address), device_id)).fetchone()
        out.append({"name": row["name"] if row and row["name"] else address,
                    "uid": row["uid"] if row else None})
    return out


class ContactRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def timestamps(self, device_id: str) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return {r[0]: r[1] for r in conn.execute(
                "SELECT uid, timestamp FROM contacts WHERE device_id = ?", (device_id,))}

        return await self._db.run(read)

    async def upsert(self, device_id: str, contacts: list[Contact]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            for c in contacts:
                old = conn.execute("SELECT id, name FROM contacts WHERE device_id = ? AND uid = ?",
                                   (device_id, c.uid)).fetchone()
                if old is None:
                    contact_id = conn.execute(
                        "INSERT INTO contacts (device_id, uid, name, timestamp, photo) VALUES (?,?,?,?,?)",
                        (device_id, c.uid, c.name, c.timestamp, c.photo)).lastrowid
                else:
                    contact_id = old["id"]
                    conn.execute("INSERT INTO contacts_fts (contacts_fts, rowid, name)"
                                 " VALUES ('delete', ?, ?)", (contact_id, fold_text(old["name"])))
                    conn.execute("UPDATE contacts SET name = ?, timestamp = ?, photo = ? WHERE id = ?",
                                 (c.name, c.timestamp, c.photo, contact_id))
                    conn.execute("DELETE FROM contact_numbers WHERE contact_id = ?", (contact_id,))
                conn.execute("INSERT INTO contacts_fts (rowid, name) VALUES (?, ?)",
                             (contact_id, fold_text(c.name)))
                conn.executemany(
                    "INSERT INTO contact_numbers (contact_id, number, normalized) VALUES (?,?,?)",
                    [(contact_id, n, normalize_number(n)) for n in dict.fromkeys(c.numbers)])

        await self._db.transaction(write)

    async def remove_except(self, device_id: str, keep: set[str]) -> int:
        """Forget contacts the phone no longer has; returns how many."""
        def write(conn: sqlite3.Connection) -> int:
            gone = [r for r in conn.execute("SELECT id, uid, name FROM contacts WHERE device_id = ?",
                                            (device_id,)) if r["uid"] not in keep]
            for r in gone:
                conn.execute("INSERT INTO contacts_fts (contacts_fts, rowid, name) VALUES ('delete', ?, ?)",
                             (r["id"], fold_text(r["name"])))
                conn.execute("DELETE FROM contacts WHERE id = ?", (r["id"],))
            return len(gone)

        return await self._db.transaction(write)

    async def all(self, device_id: str) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out = []
            for r in conn.execute("SELECT id, uid, name, timestamp, photo IS NOT NULL AS has_photo"
                                  " FROM contacts WHERE device_id = ? ORDER BY name COLLATE NOCASE",
                                  (device_id,)).fetchall():
                numbers = [n[0] for n in conn.execute(
                    "SELECT number FROM contact_numbers WHERE contact_id = ?", (r["id"],))]
                out.append({"uid": r["uid"], "name": r["name"], "timestamp": r["timestamp"],
                            "numbers": numbers, "has_photo": bool(r["has_photo"])})
            return out

        return await self._db.run(read)

    async def photo(self, device_id: str, uid: str) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT photo FROM contacts WHERE device_id = ? AND uid = ?",
                               (device_id, uid)).fetchone()
            return row[0] if row else None

        return await self._db.run(read)

    async def search_names(self, device_id: str | None, match: str, limit: int = 50) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = ("SELECT c.device_id, c.uid, c.name FROM contacts_fts JOIN contacts c"
                   " ON c.id = contacts_fts.rowid WHERE contacts_fts MATCH ?")
            args: list[Any] = [fold_text(match)]
            if device_id is not None:
                sql += " AND c.device_id = ?"
                args.append(device_id)
            rows = conn.execute(sql + " LIMIT ?", [*args, limit]).fetchall()
            result = []
            for r in rows:
                numbers = [n[0] for n in conn.execute(
                    "SELECT normalized FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id"
                    " WHERE c.device_id = ? AND c.uid = ?", (r["device_id"], r["uid"]))]
                result.append({"device": r["device_id"], "uid": r["uid"], "name": r["name"],
                               "normalized": numbers})
            return result

        return await self._db.run(read)
