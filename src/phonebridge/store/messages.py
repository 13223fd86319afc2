"""Repository of texts (PROTOCOL.md §8.7): threads, messages, MMS attachments, and their search.

Rules:
* A phone message is identified by (device, kind, phone id): SMS and MMS ids are separate spaces
  on Android, so kind is "sms" or "mms". Storing the same message again updates it in place
  (a sent message comes back as outbox 4, then sent 2 or failed 5).
* Messages written here but not yet seen from the phone are kind "local" (status pending/failed);
  the phone's copy replaces them when it arrives (same participants and text).
* `sms_messages.id` grows with the date (date * 4096 + n), so the FTS5 index returns the newest
  hits first by walking rowids backwards: search stays fast whatever the number of matches.
* `sms_messages_fts` is kept in step here, in the same transaction as the rows.
* Every call runs on the database thread (store/database.py); nothing here blocks the loop.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .contacts import names_for, normalize_number
from .database import Database

ID_SLOTS = 4096
"""Ids per millisecond of date: more messages than this with one date spill into the next slot."""
MAX_DATE = 2 ** 50
"""Dates (ms) must be below this so that date * ID_SLOTS fits SQLite's 63-bit integers."""

INCOMING = 1
SMS_KIND, MMS_KIND = "sms", "mms"
LOOKUP_CHUNK = 500
"""Phone ids per `IN (...)` lookup (SQLite's default limit is 32766 parameters)."""
OUTGOING_STATUS = {2: "sent", 4: "pending", 5: "failed", 6: "pending"}
"""Android MESSAGE_TYPE_* of our own messages -> status (1 inbox is "received")."""


class AttachmentFields(Protocol):
    part_id: int
    mime_type: str
    unique_identifier: str
    thumbnail: str | None


class MessageFields(Protocol):
    """What the SMS plugin hands in (plugins/sms.py PhoneMessage)."""

    kind: str
    phone_id: int
    thread_id: int
    date: int
    body: str
    addresses: tuple[str, ...]
    type: int
    read: bool
    sub_id: int
    event: int
    attachments: tuple[AttachmentFields, ...]


@dataclass
class ApplyResult:
    new: set[tuple[str, int]] = field(default_factory=set)
    """Keys (kind, phone id) not stored before."""
    changed: set[tuple[str, int]] = field(default_factory=set)
    """Keys stored before whose fields changed."""
    replaced: dict[tuple[str, int], int] = field(default_factory=dict)
    """Phone message key -> id of the local pending message it replaced."""
    threads: set[int] = field(default_factory=set)
    newest_before: dict[int, int] = field(default_factory=dict)
    """Thread -> date of its newest message before this batch (threads that had messages)."""


@dataclass(frozen=True, slots=True)
class ThreadState:
    thread_id: int
    complete: bool
    oldest: int | None
    newest: int | None
    count: int


def status_of(message_type: int) -> str:
    return "received" if message_type == INCOMING else OUTGOING_STATUS.get(message_type, "pending")


def _address_key(addresses: Iterable[str]) -> str:
    return json.dumps(sorted(normalize_number(a) for a in addresses))


def _slot_maxima(conn: sqlite3.Connection, dates: set[int]) -> dict[int, int]:
    """Date -> highest id already used in that date's slot, for the dates that have one.

    One statement per LOOKUP_CHUNK dates: asking per message cost two queries each, which was most
    of a full sync's time."""
    found: dict[int, int] = {}
    ordered = sorted(dates)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start:start + LOOKUP_CHUNK]
        values = ",".join("(?)" for _ in chunk)
        for date, top in conn.execute(
            f"WITH wanted(d) AS (VALUES {values}) SELECT d, (SELECT max(id) FROM sms_messages"
            f" WHERE id BETWEEN d * {ID_SLOTS} AND d * {ID_SLOTS} + {ID_SLOTS - 1}) FROM wanted",
            chunk,
        ):
            if top is not None:
                found[date] = top
    return found


def _next_id(conn: sqlite3.Connection, date: int, slot_max: int | None) -> int:
    """The id for a new message of `date`, given the highest id in its slot (None: empty)."""
    base = date * ID_SLOTS
    candidate = base if slot_max is None else slot_max + 1
    if candidate >= base + ID_SLOTS:  # the slot is full: spill into later slots where free
        while conn.execute("SELECT 1 FROM sms_messages WHERE id = ?", (candidate,)).fetchone():
            candidate += 1
    return candidate


_MARKS = re.compile("[\u0300-\u036f\u0591-\u05c7\u064b-\u065f\u0670]")
"""Combining accents (Latin, Greek, Cyrillic), Hebrew points and Arabic harakat."""


def fold_text(text: str) -> str:
    """What the index holds and queries are matched against: accents and vowel points removed.

    unicode61's remove_diacritics folds Latin letters only; this also folds Greek tonos,
    Cyrillic accents, Hebrew niqqud and Arabic harakat. The number of tokens is unchanged, so
    snippet() over the original text highlights the right words.
    """
    return unicodedata.normalize("NFC", _MARKS.sub("", unicodedata.normalize("NFD", text)))


def _fts_insert(conn: sqlite3.Connection, message_id: int, body: str) -> None:
    conn.execute("INSERT INTO sms_messages_fts (rowid, body) VALUES (?, ?)", (message_id, fold_text(body)))


def _fts_delete(conn: sqlite3.Connection, message_id: int, body: str) -> None:
    conn.execute("INSERT INTO sms_messages_fts (sms_messages_fts, rowid, body) VALUES ('delete', ?, ?)",
                 (message_id, fold_text(body)))


def _refresh_thread(conn: sqlite3.Connection, device_id: str, thread_id: int) -> None:
    conn.execute(
        "UPDATE sms_threads SET"
        " message_count = (SELECT count(*) FROM sms_messages WHERE device_id = ?1 AND thread_id = ?2),"
        " unread = (SELECT count(*) FROM sms_messages WHERE device_id = ?1 AND thread_id = ?2"
        "           AND read = 0 AND type = 1),"
        " (last_date, last_id) = (SELECT date, id FROM sms_messages WHERE device_id = ?1"
        "           AND thread_id = ?2 ORDER BY date DESC, id DESC LIMIT 1)"
        " WHERE device_id = ?1 AND thread_id = ?2",
        (device_id, thread_id),
    )


def _message_json(row: sqlite3.Row, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    addresses = json.loads(row["addresses"])
    outgoing = row["type"] != INCOMING
    return {
        "id": row["id"], "thread_id": row["thread_id"], "date": row["date"], "body": row["body"],
        "addresses": addresses, "sender": None if outgoing or not addresses else addresses[0],
        "outgoing": outgoing, "read": bool(row["read"]), "status": row["status"],
        "attachments": attachments, "kind": row["kind"], "sub_id": row["sub_id"],
        "event": row["event"],
    }


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes ----------------------------------------------------------------------------------

    async def apply(self, device_id: str, messages: list[MessageFields]) -> ApplyResult:
        """Insert or update a batch of phone messages in one transaction."""
        return await self._db.transaction(lambda conn: self._apply(conn, device_id, messages))

    def _apply(self, conn: sqlite3.Connection, device_id: str,
               messages: list[MessageFields]) -> ApplyResult:
        """Set-wise: one lookup of the known keys per kind, executemany for the new rows."""
        result = ApplyResult()
        batch: dict[tuple[str, int], MessageFields] = {}
        for m in messages:  # the same message twice in one batch: the last copy wins
            batch[(m.kind, m.phone_id)] = m
        for thread_id in {m.thread_id for m in batch.values()}:
            row = conn.execute("SELECT last_date, message_count FROM sms_threads"
                               " WHERE device_id = ? AND thread_id = ?", (device_id, thread_id)).fetchone()
            if row is not None and row["message_count"]:
                result.newest_before[thread_id] = row["last_date"]
        existing: dict[tuple[str, int], sqlite3.Row] = {}
        for kind in (SMS_KIND, MMS_KIND):
            ids = [pid for k, pid in batch if k == kind]
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start:start + LOOKUP_CHUNK]
                for row in conn.execute(
                    "SELECT id, phone_id, date, body, addresses, type, read, thread_id, event, sub_id"
                    " FROM sms_messages WHERE device_id = ? AND kind = ? AND phone_id IN"
                    f" ({','.join('?' * len(chunk))})", (device_id, kind, *chunk),
                ):
                    existing[(kind, row["phone_id"])] = row
        has_local = conn.execute("SELECT 1 FROM sms_messages WHERE device_id = ? AND kind = 'local'"
                                 " LIMIT 1", (device_id,)).fetchone() is not None
        rows, fts, parts = [], [], []
        taken: dict[int, int] = {}
        slot_max = _slot_maxima(conn, {m.date for key, m in batch.items() if key not in existing})
        for key, m in batch.items():
            addresses = json.dumps(list(m.addresses), ensure_ascii=False)
            status = status_of(m.type)
            old = existing.get(key)
            if old is None:
                if has_local and m.type != INCOMING:
                    local = self._find_local(conn, device_id, m)
                    if local is not None:
                        _fts_delete(conn, local["id"], local["body"])
                        conn.execute("DELETE FROM sms_messages WHERE id = ?", (local["id"],))
                        result.replaced[key] = local["id"]
                previous = taken.get(m.date)
                message_id = (_next_id(conn, m.date, slot_max.get(m.date)) if previous is None
                              else previous + 1)
                taken[m.date] = message_id
                rows.append((message_id, device_id, m.kind, m.phone_id, m.thread_id, m.date, m.body,
                             addresses, m.type, int(m.read), m.sub_id, m.event, status))
                fts.append((message_id, fold_text(m.body)))
                result.new.add(key)
            else:
                message_id = old["id"]
                same = (old["date"] == m.date and old["body"] == m.body and old["addresses"] == addresses
                        and old["type"] == m.type and old["read"] == int(m.read)
                        and old["thread_id"] == m.thread_id and old["event"] == m.event
                        and old["sub_id"] == m.sub_id)
                if not same:
                    if old["body"] != m.body:
                        _fts_delete(conn, message_id, old["body"])
                        _fts_insert(conn, message_id, m.body)
                    conn.execute(
                        "UPDATE sms_messages SET thread_id = ?, date = ?, body = ?, addresses = ?,"
                        " type = ?, read = ?, sub_id = ?, event = ?, status = ? WHERE id = ?",
                        (m.thread_id, m.date, m.body, addresses, m.type, int(m.read), m.sub_id,
                         m.event, status, message_id),
                    )
                    if old["thread_id"] != m.thread_id and old["thread_id"] is not None:
                        result.threads.add(old["thread_id"])
                    result.changed.add(key)
            parts.extend((message_id, a.part_id, a.mime_type, a.unique_identifier, a.thumbnail)
                         for a in m.attachments)
            result.threads.add(m.thread_id)
        if rows:
            conn.executemany(
                "INSERT INTO sms_messages (id, device_id, kind, phone_id, thread_id, date, body,"
                " addresses, type, read, sub_id, event, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            conn.executemany("INSERT INTO sms_messages_fts (rowid, body) VALUES (?, ?)", fts)
        if parts:
            conn.executemany(
                "INSERT INTO sms_attachments (message_id, part_id, mime_type, unique_identifier,"
                " thumbnail) VALUES (?,?,?,?,?) ON CONFLICT (message_id, part_id) DO UPDATE SET"
                " mime_type = excluded.mime_type, unique_identifier = excluded.unique_identifier,"
                " thumbnail = coalesce(excluded.thumbnail, thumbnail)", parts)
        newest_per_thread: dict[int, MessageFields] = {}
        for m in batch.values():
            current = newest_per_thread.get(m.thread_id)
            if current is None or m.date >= current.date:
                newest_per_thread[m.thread_id] = m
        for thread_id, newest in newest_per_thread.items():
            is_group = int(bool(newest.event & 0x2) or len(newest.addresses) > 1)
            addresses = json.dumps(list(newest.addresses), ensure_ascii=False)
            conn.execute(
                "INSERT INTO sms_threads (device_id, thread_id, addresses, is_group) VALUES (?,?,?,?)"
                " ON CONFLICT (device_id, thread_id) DO UPDATE SET"
                " addresses = CASE WHEN ? >= last_date THEN excluded.addresses ELSE addresses END,"
                " is_group = max(is_group, excluded.is_group)",
                (device_id, thread_id, addresses, is_group, newest.date),
            )
        for thread_id in result.threads:
            _refresh_thread(conn, device_id, thread_id)
        return result

    def _find_local(self, conn: sqlite3.Connection, device_id: str,
                    m: MessageFields) -> sqlite3.Row | None:
        wanted = _address_key(m.addresses)
        for row in conn.execute(
            "SELECT id, body, addresses FROM sms_messages WHERE device_id = ? AND kind = 'local'"
            " AND body = ? ORDER BY id", (device_id, m.body),
        ):
            if _address_key(json.loads(row["addresses"])) == wanted:
                return row
        return None

    async def import_new(self, device_id: str, messages: list[MessageFields]) -> int:
        """Bulk load messages known to be new (benchmarks, imports): no per-row lookups."""
        def write(conn: sqlite3.Connection) -> int:
            rows, fts, threads = [], [], {}
            last: dict[int, int] = {}
            for m in messages:
                message_id = last.get(m.date)
                message_id = (_next_id(conn, m.date, _slot_maxima(conn, {m.date}).get(m.date))
                              if message_id is None else message_id + 1)
                last[m.date] = message_id
                rows.append((message_id, device_id, m.kind, m.phone_id, m.thread_id, m.date, m.body,
                             json.dumps(list(m.addresses), ensure_ascii=False), m.type, int(m.read),
                             m.sub_id, m.event, status_of(m.type)))
                fts.append((message_id, fold_text(m.body)))
                newest = threads.get(m.thread_id)
                if newest is None or m.date >= newest.date:
                    threads[m.thread_id] = m
            conn.executemany("INSERT INTO sms_messages (id, device_id, kind, phone_id, thread_id, date,"
                             " body, addresses, type, read, sub_id, event, status)"
                             " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            conn.executemany("INSERT INTO sms_messages_fts (rowid, body) VALUES (?, ?)", fts)
            for thread_id, m in threads.items():
                conn.execute("INSERT INTO sms_threads (device_id, thread_id, addresses, is_group, complete)"
                             " VALUES (?,?,?,?,1) ON CONFLICT DO NOTHING",
                             (device_id, thread_id, json.dumps(list(m.addresses), ensure_ascii=False),
                              int(len(m.addresses) > 1)))
                _refresh_thread(conn, device_id, thread_id)
            return len(rows)

        return await self._db.transaction(write)

    async def add_local(self, device_id: str, addresses: list[str], body: str,
                        attachments: list[tuple[str, str]], sub_id: int = -1,
                        now: int | None = None) -> dict[str, Any]:
        """A message sent from here, pending until the phone reports it; returns its JSON."""
        date = now if now is not None else int(time.time() * 1000)

        def write(conn: sqlite3.Connection) -> dict[str, Any]:
            thread_id = self._thread_for(conn, device_id, addresses)
            message_id = _next_id(conn, date, _slot_maxima(conn, {date}).get(date))
            conn.execute(
                "INSERT INTO sms_messages (id, device_id, kind, phone_id, thread_id, date, body,"
                " addresses, type, read, sub_id, event, status)"
                " VALUES (?,?,'local',?,?,?,?,?,4,1,?,?,'pending')",
                (message_id, device_id, message_id, thread_id, date, body,
                 json.dumps(addresses, ensure_ascii=False), sub_id, 2 if len(addresses) > 1 else 1),
            )
            for part, (name, mime) in enumerate(attachments):
                conn.execute("INSERT INTO sms_attachments (message_id, part_id, mime_type,"
                             " unique_identifier) VALUES (?,?,?,?)", (message_id, part, mime, name))
            _fts_insert(conn, message_id, body)
            if thread_id is not None:
                _refresh_thread(conn, device_id, thread_id)
            return self._message(conn, message_id)

        return await self._db.transaction(write)

    def _thread_for(self, conn: sqlite3.Connection, device_id: str, addresses: list[str]) -> int | None:
        wanted = _address_key(addresses)
        for row in conn.execute("SELECT thread_id, addresses FROM sms_threads WHERE device_id = ?",
                                (device_id,)):
            if _address_key(json.loads(row["addresses"])) == wanted:
                return row["thread_id"]
        return None

    async def fail_local(self, device_id: str, message_id: int) -> None:
        """A local message the phone never reported: failed, so it is not silently lost."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE sms_messages SET status = 'failed', type = 5 WHERE id = ? AND"
                         " device_id = ? AND kind = 'local'", (message_id, device_id))

        await self._db.transaction(write)

    async def fail_stale_local(self, device_id: str, older_than: int) -> int:
        def write(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE sms_messages SET status = 'failed', type = 5 WHERE device_id = ?"
                                " AND kind = 'local' AND status = 'pending' AND date < ?",
                                (device_id, older_than)).rowcount

        return await self._db.transaction(write)

    async def set_complete(self, device_id: str, thread_id: int, complete: bool = True) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE sms_threads SET complete = ? WHERE device_id = ? AND thread_id = ?",
                         (int(complete), device_id, thread_id))

        await self._db.transaction(write)

    # -- reads -------------------------------------------------------------------------------------

    async def thread_states(self, device_id: str) -> dict[int, ThreadState]:
        def read(conn: sqlite3.Connection) -> dict[int, ThreadState]:
            rows = conn.execute(
                "SELECT t.thread_id, t.complete, t.message_count,"
                " (SELECT min(date) FROM sms_messages m WHERE m.device_id = t.device_id"
                "  AND m.thread_id = t.thread_id AND m.kind != 'local') AS oldest,"
                " (SELECT max(date) FROM sms_messages m WHERE m.device_id = t.device_id"
                "  AND m.thread_id = t.thread_id AND m.kind != 'local') AS newest"
                " FROM sms_threads t WHERE t.device_id = ?", (device_id,),
            ).fetchall()
            return {r["thread_id"]: ThreadState(r["thread_id"], bool(r["complete"]), r["oldest"],
                                                r["newest"], r["message_count"]) for r in rows}

        return await self._db.run(read)

    async def count_near(self, device_id: str, thread_id: int, date: int) -> int:
        """Phone messages of the thread in the second of `date` (what a page boundary may repeat:
        SMS of that millisecond, MMS of that second)."""
        low = date // 1000 * 1000

        def read(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT count(*) FROM sms_messages WHERE device_id = ? AND thread_id = ?"
                " AND date BETWEEN ? AND ? AND kind != 'local'",
                (device_id, thread_id, low, low + 999)).fetchone()[0]

        return await self._db.run(read)

    async def threads(self, device_id: str) -> list[dict[str, Any]]:
        """Threads newest first, with participants' names from the contacts."""
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT t.*, m.body AS snippet, m.kind AS last_kind FROM sms_threads t"
                " LEFT JOIN sms_messages m ON m.id = t.last_id"
                " WHERE t.device_id = ? ORDER BY t.last_date DESC, t.thread_id DESC", (device_id,),
            ).fetchall()
            out = []
            for r in rows:
                addresses = json.loads(r["addresses"])
                people = names_for(conn, device_id, addresses)
                out.append({
                    "thread_id": r["thread_id"], "addresses": addresses,
                    "names": [p["name"] for p in people],
                    "contacts": [p["uid"] for p in people],
                    "snippet": r["snippet"] or "", "date": r["last_date"], "unread": r["unread"],
                    "message_count": r["message_count"], "is_group": bool(r["is_group"]),
                    "complete": bool(r["complete"]),
                })
            return out

        return await self._db.run(read)

    async def messages(self, device_id: str, thread_id: int, *, limit: int | None = None,
                       before: int | None = None) -> list[dict[str, Any]]:
        """The thread's messages oldest first (the newest `limit` of them, dated before `before`)."""
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT * FROM sms_messages WHERE device_id = ? AND thread_id = ?"
            args: list[Any] = [device_id, thread_id]
            if before is not None:
                sql += " AND date < ?"
                args.append(before)
            sql += " ORDER BY date DESC, id DESC"
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            rows = conn.execute(sql, args).fetchall()[::-1]
            return [self._with_attachments(conn, r) for r in rows]

        return await self._db.run(read)

    def _with_attachments(self, conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        attachments = [
            {"part_id": a["part_id"], "mime_type": a["mime_type"], "name": a["unique_identifier"],
             "has_thumbnail": a["has_thumbnail"]}
            for a in conn.execute(
                "SELECT part_id, mime_type, unique_identifier, thumbnail IS NOT NULL AS has_thumbnail"
                " FROM sms_attachments WHERE message_id = ? ORDER BY part_id", (row["id"],))
        ]
        for a in attachments:
            a["has_thumbnail"] = bool(a["has_thumbnail"])
        return _message_json(row, attachments)

    def _message(self, conn: sqlite3.Connection, message_id: int) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM sms_messages WHERE id = ?", (message_id,)).fetchone()
        return self._with_attachments(conn, row)

    async def message(self, device_id: str, message_id: int) -> dict[str, Any] | None:
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT * FROM sms_messages WHERE id = ? AND device_id = ?",
                               (message_id, device_id)).fetchone()
            return None if row is None else self._with_attachments(conn, row)

        return await self._db.run(read)

    async def attachment(self, device_id: str, message_id: int, part_id: int) -> dict[str, Any] | None:
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT a.* FROM sms_attachments a JOIN sms_messages m ON m.id = a.message_id"
                " WHERE m.device_id = ? AND a.message_id = ? AND a.part_id = ?",
                (device_id, message_id, part_id)).fetchone()
            return None if row is None else dict(row)

        return await self._db.run(read)

    async def counts(self, device_id: str) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(complete), 0), coalesce(sum(message_count), 0)"
                " FROM sms_threads WHERE device_id = ?", (device_id,)).fetchone()
            return {"threads": row[0], "threads_complete": row[1], "messages": row[2]}

        return await self._db.run(read)

    async def all_keys(self, device_id: str) -> list[tuple[str, int]]:
        """Every stored phone message key (tests: completeness)."""
        def read(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            return [(r[0], r[1]) for r in conn.execute(
                "SELECT kind, phone_id FROM sms_messages WHERE device_id = ? AND kind != 'local'",
                (device_id,))]

        return await self._db.run(read)


def search_messages(conn: sqlite3.Connection, match: str, limit: int) -> list[dict[str, Any]]:
    """One kind for store/search.py: FTS5 `match` over message bodies, newest first.

    Ids grow with the date, so ORDER BY rowid DESC is recency without sorting every hit.
    """
    match = fold_text(match)
    rows = conn.execute(
        "SELECT m.id, m.device_id, m.thread_id, m.date,"
        " snippet(sms_messages_fts, 0, '[', ']', '…', 12) AS snippet"
        " FROM sms_messages_fts JOIN sms_messages m ON m.id = sms_messages_fts.rowid"
        " WHERE sms_messages_fts MATCH ? ORDER BY sms_messages_fts.rowid DESC LIMIT ?",
        (match, limit),
    ).fetchall()
    found = [{"kind": "message", "device": r["device_id"], "thread_id": r["thread_id"], "id": r["id"],
              "date": r["date"], "snippet": r["snippet"]} for r in rows]
    return found + _threads_of_named(conn, match, limit, {(r["device"], r["id"]) for r in found})


def _threads_of_named(conn: sqlite3.Connection, match: str, limit: int,
                      seen: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Threads with a contact whose name matches: their newest message, the name highlighted."""
    people: dict[str, dict[str, str]] = {}
    for r in conn.execute(
        "SELECT c.device_id, n.normalized, highlight(contacts_fts, 0, '[', ']') AS name"
        " FROM contacts_fts JOIN contacts c ON c.id = contacts_fts.rowid"
        " JOIN contact_numbers n ON n.contact_id = c.id WHERE contacts_fts MATCH ? LIMIT 500", (match,),
    ):
        people.setdefault(r["device_id"], {})[r["normalized"]] = r["name"]
    out = []
    for device_id, numbers in people.items():
        for t in conn.execute(
            "SELECT t.thread_id, t.addresses, t.last_id, t.last_date, m.body FROM sms_threads t"
            " JOIN sms_messages m ON m.id = t.last_id WHERE t.device_id = ?", (device_id,),
        ):
            names = [numbers[n] for n in (normalize_number(a) for a in json.loads(t["addresses"]))
                     if n in numbers]
            if names and (device_id, t["last_id"]) not in seen:
                body = " ".join(t["body"].split())
                out.append({"kind": "message", "device": device_id, "thread_id": t["thread_id"],
                            "id": t["last_id"], "date": t["last_date"],
                            "snippet": f"{', '.join(names)}: {body[:80]}{'…' if len(body) > 80 else ''}"})
    out.sort(key=lambda r: r["date"], reverse=True)
    return out[:limit]
