"""Database: one SQLite file in WAL mode, one writer thread, numbered migrations.

Every statement runs on a single worker thread, so the event loop never blocks on SQLite and there
is exactly one writer. Migrations are the files `migrations/NNNN_name.sql`, applied in order inside
one transaction each. The table `schema_migrations` records each one applied, so a migration with a
lower number that arrives later (features land in any order) is still applied; `PRAGMA
user_version` keeps the highest number for tools that look there.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """(number, SQL) of every migration shipped in the package, in order."""
    found = []
    for entry in resources.files("phonebridge.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phonebridge-db")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        # Checkpoint (and fsync) every ~40 MB of WAL instead of SQLite's 4 MB: a full message sync
        # commits hundreds of pages and spent a third of its time in checkpoints.
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        applied = _applied_migrations(conn)
        for number, sql in migrations():
            if number in applied:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (number) VALUES (?)", (number,))
                highest = max([number, *applied])
                conn.execute(f"PRAGMA user_version={highest}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.add(number)
        self._conn = conn

    async def open(self) -> None:
        await self.run(lambda _conn: None, _opening=True)

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, _opening: bool = False) -> T:
        """Run `fn(connection)` on the database thread."""
        def call() -> T:
            if self._conn is None:
                self._open()
            assert self._conn is not None
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        def wrapped(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.run(wrapped)

    async def close(self) -> None:
        def shut(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self.run(shut)
        self._executor.shutdown(wait=True)


def _applied_migrations(conn: sqlite3.Connection) -> set[int]:
    """Numbers of the migrations already applied (databases from before the table: all up to
    user_version)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO schema_migrations (number) VALUES (?)",
                         [(n,) for n, _ in migrations() if n <= version])
        conn.execute("COMMIT")
    return {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}


def _statements(sql: str) -> list[str]:
    """Split a migration into complete statements (sqlite3.complete_statement understands
    semicolons inside strings and trigger bodies)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statement = current.strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current.strip()[:60]}")
    return statements
