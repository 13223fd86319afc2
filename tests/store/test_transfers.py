"""The transfer history: migration 0002, the repository, and the manager's use of it."""

from __future__ import annotations

import asyncio

from phonebridge.core.transfers import CANCELLED, DONE, TransferManager
from phonebridge.events import EventBus
from phonebridge.store.database import Database
from phonebridge.store.transfers import TransferRepository


async def test_history_survives_a_restart_and_unfinished_ones_fail(tmp_path) -> None:
    db = Database(tmp_path / "pb.db")
    await db.open()
    bus = EventBus()
    manager = TransferManager(bus, TransferRepository(db))
    await manager.start()
    a = manager.create(device="d1", device_name="Phone", direction="in", kind="file", name="a.jpg",
                       size=10, path=None)
    b = manager.create(device="d1", device_name="Phone", direction="out", kind="text", name="hi",
                       size=2, content="hi")
    c = manager.create(device="d1", device_name="Phone", direction="in", kind="file", name="c",
                       size=5)
    manager.finish(a, DONE, path="/x/a.jpg")
    manager.finish(b, DONE)
    manager.cancel(c.id)
    d = manager.create(device="d1", device_name="Phone", direction="in", kind="file", name="cut",
                       size=5)
    await asyncio.sleep(0.1)
    await db.close()  # a crash: d is still active in the store

    db = Database(tmp_path / "pb.db")
    await db.open()
    again = TransferManager(EventBus(), TransferRepository(db))
    await again.start()
    listed = {t.id: t for t in again.list()}
    assert listed[a.id].state == DONE and listed[a.id].path == "/x/a.jpg"
    assert listed[b.id].content == "hi"
    assert listed[c.id].state == CANCELLED and listed[c.id].error == "cancelled by the user"
    assert listed[d.id].state == "failed" and listed[d.id].error == "the daemon stopped"
    assert [t.id for t in again.list()][0] == d.id  # newest first
    await db.close()


async def test_progress_events_are_throttled(tmp_path) -> None:
    bus = EventBus()
    manager = TransferManager(bus)
    with bus.subscribe() as sub:
        t = manager.create(device="d", device_name="P", direction="in", kind="file", name="x",
                           size=1_000_000)
        for n in range(0, 1_000_000, 1000):
            manager.progress(t, n)
        manager.finish(t, DONE)
        events = []
        while not sub.queue.empty():
            events.append(sub.queue.get_nowait())
    assert all(e.type == "transfer.changed" for e in events)
    assert len(events) <= 4  # created, at most a couple of progress steps, done
    assert events[-1].data["state"] == "done" and events[-1].data["transferred"] == 1_000_000
    data = events[0].data
    for key in ("id", "device", "direction", "name", "size", "transferred", "state", "path",
                "rate", "eta", "error", "started", "finished"):
        assert key in data


async def test_repository_prune(tmp_path) -> None:
    db = Database(tmp_path / "pb.db")
    await db.open()
    repo = TransferRepository(db)
    for i in range(20):
        await repo.save({"id": f"t{i}", "device": "d", "device_name": "P", "direction": "in",
                         "kind": "file", "name": f"n{i}", "size": 1, "transferred": 1,
                         "state": "done", "path": None, "content": None, "error": None,
                         "started": i, "finished": i})
    await repo.prune(keep=5)
    assert [r.id for r in await repo.recent()] == ["t19", "t18", "t17", "t16", "t15"]
    await db.close()
