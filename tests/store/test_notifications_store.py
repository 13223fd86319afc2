"""Notification history, muted apps, calls log and search on a real SQLite file (migration 0004)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from phonebridge.store.calls import CallRecord, CallRepository
from phonebridge.store.database import Database
from phonebridge.store.notifications import NotificationRepository
from phonebridge.store.search import KINDS, SearchRepository, fts_query

DEV = "0123456789abcdef0123456789abcdef"


@dataclass
class N:
    key: str
    title: str
    text: str
    time: int
    app: str = "Chat"
    dismissable: bool = True
    reply_id: str | None = None
    actions: tuple[str, ...] = ()
    icon: str | None = None
    silent: bool = False


@pytest.fixture
async def db(tmp_path):
    d = Database(tmp_path / "s.db")
    await d.open()
    yield d
    await d.close()


async def test_upsert_update_deactivate_and_list_newest_first(db) -> None:
    repo = NotificationRepository(db)
    assert await repo.upsert(DEV, N("a", "Alice", "hi", 1000)) is True
    assert await repo.upsert(DEV, N("b", "Bob", "yo", 2000, actions=("Mute",))) is True
    assert await repo.upsert(DEV, N("a", "Alice", "hi again", 3000)) is False  # update
    assert [r.key for r in await repo.list(DEV)] == ["a", "b"]
    assert await repo.deactivate(DEV, "a") is True and await repo.deactivate(DEV, "a") is False
    assert [r.key for r in await repo.list(DEV, active_only=True)] == ["b"]
    assert await repo.upsert(DEV, N("a", "Alice", "back", 4000)) is True  # active again = new
    record = await repo.get(DEV, "b")
    assert record.to_json() == {
        "id": "b", "device": DEV, "app": "Chat", "title": "Bob", "text": "yo", "time": 2000,
        "active": True, "dismissable": True, "can_reply": False, "actions": ["Mute"],
        "icon": None, "silent": False}
    assert sorted(await repo.deactivate_all(DEV)) == ["a", "b"]
    await repo.set_muted(DEV, "Chat", True)
    await repo.set_muted(DEV, "Chat", True)
    assert await repo.muted_apps(DEV) == {"Chat"}
    await repo.set_muted(DEV, "Chat", False)
    assert await repo.muted_apps(DEV) == set()


async def test_search_prefix_diacritics_updates_and_order(db) -> None:
    repo = NotificationRepository(db)
    search = SearchRepository(db)
    await repo.upsert(DEV, N("1", "Café culture", "Best espresso in town", 1000, app="News"))
    await repo.upsert(DEV, N("2", "Alice", "Are you coming tonight?", 2000))
    await repo.upsert(DEV, N("3", "Alicia", "Lunch?", 3000))
    assert [r["id"] for r in await search.search("cafe")] == ["1"]
    assert [r["id"] for r in await search.search("ali")] == ["3", "2"]  # prefix, newest first
    assert [r["id"] for r in await search.search("espr town")] == ["1"]
    hit = (await search.search("tonight"))[0]
    assert hit == {"kind": "notification", "device": DEV, "id": "2", "date": 2000,
                   "snippet": "Are you coming [tonight]?"}
    await repo.upsert(DEV, N("2", "Alice", "Changed text", 2500))
    assert await search.search("tonight") == []  # the index follows updates
    assert await search.search('"); DROP TABLE notifications; --') == []
    assert await search.search("   ") == [] and fts_query("!!") is None


async def test_search_unions_kinds(db) -> None:
    repo = NotificationRepository(db)
    await repo.upsert(DEV, N("1", "Hello", "world", 1000))

    def fake_messages(conn, match, limit):  # noqa: ANN001 - another kind, as messages will be
        return [{"kind": "message", "device": DEV, "id": "m1", "date": 5000, "snippet": "hello"}]

    search = SearchRepository(db, kinds={**KINDS, "message": fake_messages})
    assert [r["kind"] for r in await search.search("hello")] == ["message", "notification"]
    assert [r["kind"] for r in await search.search("hello", kinds=["notification"])] == ["notification"]


async def test_calls_log(db) -> None:
    calls = CallRepository(db)
    await calls.add(CallRecord(DEV, "ringing", "+1555", "Alice", 1000))
    await calls.add(CallRecord(DEV, "missed", "+1555", "Alice", 2000))
    assert [c.to_json() for c in await calls.list(DEV)] == [
        {"event": "missed", "number": "+1555", "name": "Alice", "time": 2000, "device": DEV},
        {"event": "ringing", "number": "+1555", "name": "Alice", "time": 1000, "device": DEV}]


async def test_history_is_pruned_on_link(db) -> None:
    repo = NotificationRepository(db)
    for i in range(10):
        await repo.upsert(DEV, N(f"k{i}", f"title {i}", "word", 1000 + i))
    assert len(await repo.deactivate_all(DEV, keep=4)) == 10
    assert [r.key for r in await repo.list(DEV)] == ["k9", "k8", "k7", "k6"]
    assert len(await SearchRepository(db).search("word")) == 4
