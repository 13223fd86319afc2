"""Texts from a phone that misbehaves (PROTOCOL.md §8.7, STYLE §6.8): bad messages are logged and
skipped, repeated pages and unanswered requests end the sync anyway, nothing already stored is
lost, and the link stays up."""

from __future__ import annotations

import asyncio
import copy

import pytest

from phonebridge.demo.sms import HistorySpec, SmsFeature
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

from test_sms_link import expected_keys, phones, sms_state, start_phone, synced  # noqa: F401

pytestmark = pytest.mark.timeout(60)

SPEC = HistorySpec(threads=6, messages=300, big_thread=150, seed=5)


def with_garbage(messages: list[dict]) -> list[dict]:
    """Each page gets bad messages mixed in: wrong types, missing fields, unknown `type`."""
    out = list(messages)
    template = copy.deepcopy(messages[0]) if messages else {"thread_id": 1, "date": 5, "_id": 1}
    bad = []
    for change in ({"_id": None}, {"_id": "abc"}, {"date": "yesterday"}, {"date": -5},
                   {"type": 99}, {"type": 3}, {"type": None}, {"body": 42},
                   {"addresses": "+1555"}, {"thread_id": [1]}, {"_id": True}):
        m = dict(template)
        m.update(change)
        m["_id"] = m["_id"] if "_id" in change else 900_000 + len(bad)
        bad.append(m)
    return out + bad + ["not a message", None, 17]


async def test_bad_messages_are_skipped_and_sync_completes(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone", SPEC,
                              setup=lambda f: setattr(f, "mangle", with_garbage))
    phones.append(phone)
    state = await synced(daemon, phone)
    assert state["state"] == "synced"
    keys = await daemon.services.messages.all_keys(phone.device_id)
    assert sorted(keys) == expected_keys(SPEC)
    # string-typed numbers are tolerated (§10.8): "2" is a sent message
    await phone.send(Packet(types.SMS_MESSAGES, {"messages": [
        {"_id": "77777", "thread_id": "1", "date": "1700000000000", "type": "2", "read": "1",
         "body": "typed as text", "addresses": [{"address": "+15551112222"}]},
    ]}))
    await phone.send(Packet(types.SMS_MESSAGES, {"messages": "nope"}))
    await phone.send(Packet(types.SMS_MESSAGES, {}))
    repo = daemon.services.messages
    for _ in range(100):
        if ("sms", 77777) in await repo.all_keys(phone.device_id):
            break
        await asyncio.sleep(0.02)
    stored = await repo.messages(phone.device_id, 1)
    typed = [m for m in stored if m["body"] == "typed as text"]
    assert typed and typed[0]["status"] == "sent" and typed[0]["outgoing"]
    assert daemon.manager.is_linked(phone.device_id)


async def test_repeated_pages_do_not_end_or_duplicate(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone", SPEC,
                              setup=lambda f: setattr(f, "repeat_pages", True))
    phones.append(phone)
    state = await synced(daemon, phone)
    assert state["state"] == "synced"
    keys = await daemon.services.messages.all_keys(phone.device_id)
    assert len(keys) == len(set(keys))
    assert sorted(keys) == expected_keys(SPEC)


async def test_unanswered_pages_end_the_sync_incomplete(daemon, tmp_path, phones, monkeypatch) -> None:
    import phonebridge.plugins.sms as sms

    monkeypatch.setattr(sms, "PAGE_TIMEOUT", 0.5)
    monkeypatch.setattr(sms, "LIST_QUIET", 0.5)

    def mute(feature: SmsFeature) -> None:
        async def ignore(packet) -> None:  # noqa: ANN001 - never answers a page (nor the fence)
            return None

        feature.phone.handlers[types.SMS_REQUEST_CONVERSATION] = ignore

    phone = await start_phone(daemon, tmp_path / "phone", SPEC, setup=mute)
    phones.append(phone)
    state = await synced(daemon, phone)
    assert state["state"] == "incomplete"
    assert state["threads"] == SPEC.threads and state["threads_complete"] == 0
    assert state["messages"] == SPEC.threads  # the newest of each thread, from the list
    assert daemon.manager.is_linked(phone.device_id)
