"""Repository of the phones' media indexes (migration 0005): what the gallery lists and in which
order, so a page is one indexed query instead of a walk of the phone.

A listing of the media folders is written with `save_listing`: rows keep what was learnt from the
file's header (EXIF date, size in pixels, errors) as long as the file's size and mtime are
unchanged; a changed file starts over from its mtime. Header results are written with
`save_headers`, which ignores results for a file that changed meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Database

BATCH = 2000
"""Rows per executemany: large enough to be quick, small enough to keep the writer thread fair."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One file found by a listing (what the phone tells without reading the file)."""

    path: str
    name: str
    folder: str
    size: int
    mtime: int
    kind: str
    """"image" or "video"."""


@dataclass(frozen=True, slots=True)
class HeaderResult:
    """What reading a file's first bytes told, for the file of that size and mtime."""

    path: str
    size: int
    mtime: int
    date: int
    width: int | None
    height: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PhotoRecord:
    device_id: str
    path: str
    name: str
    folder: str
    size: int
    mtime: int
    date: int
    kind: str
    width: int | None
    height: int | None
    header_read: bool
    error: str | None
    thumbnail_bad: bool

    def to_json(self) -> dict[str, Any]:
        """The public shape (API, CLI `photos --json`): add fields, never rename."""
        return {
            "path": self.path, "name": self.name, "size": self.size, "date": self.date,
            "kind": self.kind, "width": self.width, "height": self.height,
            "folder": self.folder, "error": self.error,
        }


def _record(row: sqlite3.Row) -> PhotoRecord:
    return PhotoRecord(
        device_id=row["device_id"], path=row["path"], name=row["name"], folder=row["folder"],
        size=row["size"], mtime=row["mtime"], date=row["date"], kind=row["kind"],
        width=row["width"], height=row["height"], header_read=bool(row["header_read"]),
        error=row["error"], thumbnail_bad=bool(row["thumbnail_bad"]),
    )


_UPSERT = """
INSERT INTO photos (device_id, path, name, folder, size, mtime, date, kind, scan)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_id, path) DO UPDATE SET
    scan = excluded.scan,
    name = excluded.name,
    folder = excluded.folder,
    kind = excluded.kind,
    date = CASE WHEN same THEN photos.date ELSE excluded.date END,
    width = CASE WHEN same THEN photos.width END,
    height = CASE WHEN same THEN photos.height END,
    header_read = CASE WHEN same THEN photos.header_read ELSE 0 END,
    error = CASE WHEN same THEN photos.error END,
    thumbnail_bad = CASE WHEN same THEN photos.thumbnail_bad ELSE 0 END,
    size = excluded.size,
    mtime = excluded.mtime
""".replace("same", "(photos.size = excluded.size AND photos.mtime = excluded.mtime)")


class PhotoRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save_listing(self, device_id: str, files: Sequence[MediaFile], scanned_at: int, *,
                           keep_under: Iterable[str] = ()) -> None:
        """Make the index of `device_id` the listing `files`.

        Rows of files the listing did not see are deleted, except below the folders in
        `keep_under` (folders the listing could not read this time: their files are kept as last
        seen rather than vanishing from the gallery).
        """
        kept = tuple(folder.rstrip("/") + "/" for folder in keep_under)

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT scan FROM photo_scans WHERE device_id = ?",
                               (device_id,)).fetchone()
            scan = (row[0] if row else 0) + 1
            for start in range(0, len(files), BATCH):
                conn.executemany(_UPSERT, [
                    (device_id, f.path, f.name, f.folder, f.size, f.mtime, f.mtime, f.kind, scan)
                    for f in files[start : start + BATCH]
                ])
            if kept:
                gone = [(device_id, path) for (path,) in conn.execute(
                    "SELECT path FROM photos WHERE device_id = ? AND scan <> ?", (device_id, scan))
                    if not path.startswith(kept)]
                conn.executemany("DELETE FROM photos WHERE device_id = ? AND path = ?", gone)
            else:
                conn.execute("DELETE FROM photos WHERE device_id = ? AND scan <> ?",
                             (device_id, scan))
            conn.execute(
                "INSERT INTO photo_scans (device_id, scan, scanned_at) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET scan = excluded.scan,"
                " scanned_at = excluded.scanned_at", (device_id, scan, scanned_at))

        await self._db.transaction(write)

    async def save_headers(self, device_id: str, results: Sequence[HeaderResult]) -> int:
        """Store header results; a result for a file whose size or mtime changed since is
        ignored. Returns how many rows took a result."""
        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.executemany(
                "UPDATE photos SET date = ?, width = ?, height = ?, error = ?, header_read = 1"
                " WHERE device_id = ? AND path = ? AND size = ? AND mtime = ?",
                [(r.date, r.width, r.height, r.error, device_id, r.path, r.size, r.mtime)
                 for r in results])
            return cursor.rowcount

        if not results:
            return 0
        return await self._db.transaction(write)

    async def mark_thumbnail_bad(self, device_id: str, path: str, reason: str) -> None:
        """No thumbnail can be made (broken image): remembered until the file changes."""
        await self._db.transaction(lambda conn: conn.execute(
            "UPDATE photos SET thumbnail_bad = 1, error = ? WHERE device_id = ? AND path = ?",
            (reason, device_id, path)))

    async def page(self, device_id: str, offset: int = 0, limit: int = 60
                   ) -> tuple[list[PhotoRecord], int]:
        """(rows newest first, then by path; total rows of the device)."""
        def query(conn: sqlite3.Connection) -> tuple[list[PhotoRecord], int]:
            rows = conn.execute(
                "SELECT * FROM photos WHERE device_id = ? ORDER BY date DESC, path"
                " LIMIT ? OFFSET ?", (device_id, max(0, limit), max(0, offset))).fetchall()
            total = conn.execute("SELECT count(*) FROM photos WHERE device_id = ?",
                                 (device_id,)).fetchone()[0]
            return [_record(r) for r in rows], total

        return await self._db.run(query)

    async def get(self, device_id: str, path: str) -> PhotoRecord | None:
        def query(conn: sqlite3.Connection) -> PhotoRecord | None:
            row = conn.execute("SELECT * FROM photos WHERE device_id = ? AND path = ?",
                               (device_id, path)).fetchone()
            return _record(row) if row else None

        return await self._db.run(query)

    async def unread(self, device_id: str, limit: int = 500) -> list[PhotoRecord]:
        """Images whose header was not read yet, newest (by mtime) first."""
        def query(conn: sqlite3.Connection) -> list[PhotoRecord]:
            rows = conn.execute(
                "SELECT * FROM photos WHERE device_id = ? AND header_read = 0 AND kind = 'image'"
                " ORDER BY date DESC, path LIMIT ?", (device_id, limit)).fetchall()
            return [_record(r) for r in rows]

        return await self._db.run(query)

    async def count_unread(self, device_id: str) -> int:
        return await self._db.run(lambda conn: conn.execute(
            "SELECT count(*) FROM photos WHERE device_id = ? AND header_read = 0"
            " AND kind = 'image'", (device_id,)).fetchone()[0])

    async def scanned_at(self, device_id: str) -> int | None:
        """When the media folders of the device were last listed (ms), None if never."""
        row = await self._db.run(lambda conn: conn.execute(
            "SELECT scanned_at FROM photo_scans WHERE device_id = ?", (device_id,)).fetchone())
        return row[0] if row else None

    async def forget(self, device_id: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM photos WHERE device_id = ?", (device_id,))
            conn.execute("DELETE FROM photo_scans WHERE device_id = ?", (device_id,))

        await self._db.transaction(write)
