"""The store: numbered migrations, WAL, trusted devices, and surviving a killed process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from importlib import resources

import pytest

from phonebridge.store import database as database_module
from phonebridge.store.database import Database, _statements, migrations
from phonebridge.store.devices import DeviceRepository, TrustedDevice

pytestmark = pytest.mark.timeout(30)


def device(n: int = 1, **overrides) -> TrustedDevice:
    values = dict(
        id=f"{n:032x}",
        name=f"Phone {n}",
        type="phone",
        protocol_version=8,
        certificate=bytes(range(256)) * 2 + n.to_bytes(4, "big"),
        last_host="192.168.1.23",
        last_port=1716,
        paired_at=1795653568 + n,
    )
    values.update(overrides)
    return TrustedDevice(**values)


def pragma(path, name: str):  # noqa: ANN001
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "phonebridge.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


# -- migrations -----------------------------------------------------------------------------------------


def test_migrations_are_numbered_and_ordered():
    found = migrations()
    assert found, "no migrations shipped"
    numbers = [n for n, _sql in found]
    assert numbers == sorted(numbers) == list(range(1, len(numbers) + 1))
    names = [e.name for e in resources.files("phonebridge.store.migrations").iterdir()
             if e.name.endswith(".sql")]
    assert len(names) == len(found), "every .sql file must follow NNNN_name.sql"


async def test_migrations_apply_once_and_set_user_version(tmp_path):
    path = tmp_path / "phonebridge.db"
    database = Database(path)
    await database.open()
    await database.close()
    latest = migrations()[-1][0]
    assert pragma(path, "user_version") == latest
    tables = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "trusted_devices" in tables


async def test_second_open_does_nothing(tmp_path, monkeypatch):
    path = tmp_path / "phonebridge.db"
    first = Database(path)
    await first.open()
    await DeviceRepository(first).save(device(1))
    await first.close()

    # A new migration appears: it runs exactly once, on the next open only.
    shipped = migrations()
    extra = (shipped[-1][0] + 1, "CREATE TABLE runs (n INTEGER);\nINSERT INTO runs VALUES (1);")
    monkeypatch.setattr(database_module, "migrations", lambda: [*shipped, extra])
    for _ in range(3):
        again = Database(path)
        await again.open()
        assert len(await DeviceRepository(again).all()) == 1
        await again.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    conn.close()
    assert pragma(path, "user_version") == extra[0]


async def test_failed_migration_rolls_back_and_keeps_the_version(tmp_path, monkeypatch):
    path = tmp_path / "phonebridge.db"
    database = Database(path)
    await database.open()
    await database.close()
    shipped = migrations()
    broken = (shipped[-1][0] + 1, "CREATE TABLE half (n INTEGER);\nTHIS IS NOT SQL;")
    monkeypatch.setattr(database_module, "migrations", lambda: [*shipped, broken])
    again = Database(path)
    with pytest.raises(sqlite3.Error):
        await again.open()
    await again.close()
    assert pragma(path, "user_version") == shipped[-1][0]
    tables = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half" not in tables


def test_statement_splitter_ignores_comment_lines():
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x);\n\n-- another\nCREATE TABLE b (y);\n"
    assert _statements(sql) == ["CREATE TABLE a (x)", "CREATE TABLE b (y)"]


async def test_wal_mode_is_on(db):
    mode = await db.run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0])
    assert mode.lower() == "wal"
    assert pragma(db.path, "journal_mode").lower() == "wal"  # persistent in the file
    assert await db.run(lambda conn: conn.execute("PRAGMA foreign_keys").fetchone()[0]) == 1


# -- trusted devices ---------------------------------------------------------------------------------------


async def test_trusted_devices_round_trip(db):
    repo = DeviceRepository(db)
    assert await repo.all() == []
    saved = [device(2, name="Zeta"), device(1, name="Alpha", last_host=None, last_port=None)]
    for item in saved:
        await repo.save(item)
    loaded = await repo.all()
    assert loaded == sorted(saved, key=lambda d: d.name)
    assert isinstance(loaded[0].certificate, bytes)


async def test_save_updates_an_existing_device(db):
    repo = DeviceRepository(db)
    await repo.save(device(1))
    changed = device(1, name="Renamed", protocol_version=7, certificate=b"new-der",
                     last_host="10.0.0.2", last_port=1720)
    await repo.save(changed)
    (loaded,) = await repo.all()
    assert loaded.name == "Renamed" and loaded.certificate == b"new-der"
    assert loaded.protocol_version == 7
    assert (loaded.last_host, loaded.last_port) == ("10.0.0.2", 1720)
    assert loaded.paired_at == device(1).paired_at


async def test_delete(db):
    repo = DeviceRepository(db)
    await repo.save(device(1))
    await repo.save(device(2))
    await repo.delete(device(1).id)
    await repo.delete("not-there")
    assert [d.id for d in await repo.all()] == [device(2).id]


async def test_devices_survive_reopen(tmp_path):
    path = tmp_path / "phonebridge.db"
    first = Database(path)
    await first.open()
    await DeviceRepository(first).save(device(5))
    await first.close()
    second = Database(path)
    await second.open()
    assert await DeviceRepository(second).all() == [device(5)]
    await second.close()


async def test_transaction_rolls_back_on_error(db):
    repo = DeviceRepository(db)
    await repo.save(device(1))

    def half_then_fail(conn):  # noqa: ANN001
        conn.execute("DELETE FROM trusted_devices")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.transaction(half_then_fail)
    assert [d.id for d in await repo.all()] == [device(1).id]


# -- crash safety ------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import asyncio, sys
    from phonebridge.store.database import Database
    from phonebridge.store.devices import DeviceRepository, TrustedDevice

    async def main(path):
        db = Database(path)
        await db.open()
        repo = DeviceRepository(db)
        n = 0
        while True:
            n += 1
            await repo.save(TrustedDevice(
                id=f"{n % 50:032x}", name=f"Phone {n}", type="phone", protocol_version=8,
                certificate=bytes(2000) + n.to_bytes(8, "big"), last_host="10.0.0.1",
                last_port=1716, paired_at=n))
            if n % 7 == 0:
                await repo.delete(f"{(n * 3) % 50:032x}")
            if n == 20:
                print("ready", flush=True)

    asyncio.run(main(sys.argv[1]))
""")


async def test_database_readable_after_writer_is_killed(tmp_path):
    path = tmp_path / "phonebridge.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        time.sleep(0.3)  # keep writing for a while, then kill in the middle of it
        assert proc.poll() is None, "the writer stopped on its own"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT COUNT(*) FROM trusted_devices").fetchone()[0]
        assert 1 <= count <= 50
    finally:
        conn.close()
    # The daemon's own code opens it again and reads every row.
    database = Database(path)
    await database.open()
    rows = await DeviceRepository(database).all()
    await database.close()
    assert len(rows) == count
    assert all(len(r.certificate) == 2008 for r in rows)


def test_statement_splitter_keeps_trigger_bodies_and_quoted_semicolons():
    sql = ("CREATE TABLE a (x TEXT DEFAULT ';');\n"
           "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND;\n")
    assert _statements(sql) == [
        "CREATE TABLE a (x TEXT DEFAULT ';')",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND",
    ]


def test_a_lower_numbered_migration_that_arrives_later_is_applied(tmp_path, monkeypatch):
    import sqlite3

    from phonebridge.store import database

    path = tmp_path / "late.db"
    shipped = database.migrations()
    monkeypatch.setattr(database, "migrations", lambda: [m for m in shipped if m[0] != 2])
    asyncio.run(_open_close(path))
    monkeypatch.setattr(database, "migrations", lambda: shipped)
    asyncio.run(_open_close(path))
    conn = sqlite3.connect(path)
    applied = {n for (n,) in conn.execute("SELECT number FROM schema_migrations")}
    conn.close()
    assert applied == {n for n, _ in shipped}


async def _open_close(path):
    from phonebridge.store.database import Database

    db = Database(path)
    await db.open()
    await db.close()
