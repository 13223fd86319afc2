"""The texts repository and message search: upserts by (kind, id), local pending messages replaced
by the phone's copy, FTS5 prefix search over any script with diacritics folded, newest first."""

from __future__ import annotations

import pytest

from phonebridge.plugins.sms import PhoneMessage, SmsAttachment
from phonebridge.store.contacts import ContactRepository
from phonebridge.store.database import Database
from phonebridge.store.messages import MessageRepository
from phonebridge.store.search import SearchRepository
from phonebridge.plugins.contacts import PhoneContact

DEV = "dev1"


@pytest.fixture
async def db(tmp_path):
    d = Database(tmp_path / "t.db")
    await d.open()
    try:
        yield d
    finally:
        await d.close()


def msg(mid: int, body: str, date: int, *, kind: str = "sms", thread: int = 1, mtype: int = 1,
        addresses: tuple[str, ...] = ("+15555550123",), event: int = 1, attachments=()) -> PhoneMessage:  # noqa: ANN001
    return PhoneMessage(kind, mid, thread, date, body, addresses, mtype, True, 1, event, attachments)


async def test_upsert_threads_and_search(db) -> None:
    repo = MessageRepository(db)
    search = SearchRepository(db)
    bodies = ["Café à 15h ?", "Naïve façade", "مرحبا، كيف حالك؟", "שלום, מה שלומך?", "你好 明天见",
              "Привет! Как дела?", "Meeting moved 🎉", "meeting notes", "Καλημέρα σας"]
    result = await repo.apply(DEV, [msg(i, b, 1_000_000 + i * 1000) for i, b in enumerate(bodies)])
    assert len(result.new) == len(bodies)
    again = await repo.apply(DEV, [msg(0, "Café à 15h ?", 1_000_000)])
    assert not again.new and not again.changed
    mms = await repo.apply(DEV, [msg(0, "same id, other table", 2_000_000, kind="mms", thread=2,
                                     addresses=("+1555", "+1666"), event=3,
                                     attachments=(SmsAttachment(5, "image/png", "a.png", "iVBORw0KGgo="),))])
    assert mms.new == {("mms", 0)}

    async def hits(q: str) -> list[str]:
        return [r["snippet"] for r in await search.search(q, kinds=["message"])]

    assert await hits("cafe") == ["[Café] à 15h ?"]
    assert await hits("CAF") == ["[Café] à 15h ?"]
    assert await hits("naive faca") == ["[Naïve] [façade]"]
    assert await hits("مرحب") and await hits("שלו") and await hits("Привет") and await hits("καλημερα")
    assert await hits("你好")
    meetings = await search.search("meet", kinds=["message"])
    assert [r["snippet"] for r in meetings] == ["[meeting] notes", "[Meeting] moved 🎉"]  # newest first
    assert meetings[0]["thread_id"] == 1 and meetings[0]["kind"] == "message"
    assert await hits("  ") == [] and await hits("zzzz") == []

    threads = await repo.threads(DEV)
    assert [t["thread_id"] for t in threads] == [2, 1]
    assert threads[0]["is_group"] and threads[0]["addresses"] == ["+1555", "+1666"]
    assert threads[1]["message_count"] == len(bodies) and threads[1]["snippet"] == "Καλημέρα σας"
    messages = await repo.messages(DEV, 2)
    assert messages[0]["attachments"] == [{"part_id": 5, "mime_type": "image/png", "name": "a.png",
                                           "has_thumbnail": True}]

    # an edit (the body changed): the index follows
    await repo.apply(DEV, [msg(7, "rescheduled", 1_000_000 + 7000)])
    assert await hits("meeting") == ["[Meeting] moved 🎉"] and await hits("resched")


async def test_local_message_replaced_by_the_phones_copy(db) -> None:
    repo = MessageRepository(db)
    await repo.apply(DEV, [msg(1, "hi", 1000, addresses=("+1 555 555 0123",))])
    local = await repo.add_local(DEV, ["(555) 555-0123"], "On my way", [], now=5000)
    assert local["status"] == "pending" and local["thread_id"] == 1 and local["outgoing"]
    result = await repo.apply(DEV, [msg(9, "On my way", 5100, mtype=4, addresses=("+15555550123",))])
    assert result.replaced == {("sms", 9): local["id"]}
    result = await repo.apply(DEV, [msg(9, "On my way", 5100, mtype=2, addresses=("+15555550123",))])
    assert result.changed == {("sms", 9)}
    statuses = [(m["body"], m["status"]) for m in await repo.messages(DEV, 1)]
    assert statuses == [("hi", "received"), ("On my way", "sent")]
    search = SearchRepository(db)
    assert len(await search.search("way", kinds=["message"])) == 1


async def test_contact_names_on_threads(db) -> None:
    repo = MessageRepository(db)
    contacts = ContactRepository(db)
    await repo.apply(DEV, [msg(1, "x", 1000, addresses=("+15555550123", "+15555550199"), event=3)])
    await contacts.upsert(DEV, [PhoneContact("1", "Zoë Müller", 5, ("(555) 555-0123",), "iVBORw0KGgo=")])
    thread = (await repo.threads(DEV))[0]
    assert thread["names"] == ["Zoë Müller", "+15555550199"] and thread["contacts"] == ["1", None]
    assert await contacts.timestamps(DEV) == {"1": 5}
    assert [c["name"] for c in await contacts.search_names(DEV, '"zoe"*')] == ["Zoë Müller"]
    await contacts.upsert(DEV, [PhoneContact("1", "Zoë M.", 6, ("+15555550199",))])
    thread = (await repo.threads(DEV))[0]
    assert thread["names"] == ["+15555550123", "Zoë M."]
    search = SearchRepository(db)
    by_name = await search.search("zoe", kinds=["message"])
    assert [(r["thread_id"], r["snippet"]) for r in by_name] == [(1, "[Zoë] M.: x")]
    assert await contacts.remove_except(DEV, set()) == 1
    assert (await repo.threads(DEV))[0]["names"] == ["+15555550123", "+15555550199"]
