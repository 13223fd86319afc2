"""Contacts end to end (PROTOCOL.md §8.9): names on threads, and the incremental re-sync asks for
changed vCards only."""

from __future__ import annotations

import asyncio

import pytest

from helpers import wait_for
from phonebridge.demo.sms import HistorySpec, SmsFeature
from phonebridge.protocol import types

from test_sms_link import phones, start_phone, synced  # noqa: F401

pytestmark = pytest.mark.timeout(60)

SPEC = HistorySpec(threads=6, messages=60, big_thread=20, seed=9)


async def test_names_and_incremental_contacts(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone", SPEC)
    phones.append(phone)
    await synced(daemon, phone)
    feature = phone.feature(SmsFeature)
    contacts = daemon.services.contacts
    expected = feature._contacts()
    await wait_for(lambda: len(feature.phone.received) and any(
        p.type == types.CONTACTS_REQUEST_VCARDS_BY_UID for p in phone.received), what="vcards asked")
    for _ in range(200):
        stored = await contacts.all(phone.device_id)
        if len(stored) == len(expected):
            break
        await asyncio.sleep(0.02)
    assert sorted(c["name"] for c in stored) == sorted(p.name for p in expected)
    threads = await daemon.services.messages.threads(phone.device_id)
    by_number = {p.number: p.name for p in expected}
    for t in threads:
        for address, name in zip(t["addresses"], t["names"], strict=True):
            assert name == by_number.get(address, address)  # vCard numbers are in another format
    assert any(p.photo for p in expected)
    with_photo = next(p for p in expected if p.photo)
    assert await contacts.photo(phone.device_id, with_photo.uid) == with_photo.photo

    # The phone changes one contact and drops another; the next link asks for that one only.
    await phone.stop()
    changed_uid = expected[0].uid
    dropped_uid = expected[1].uid

    def edit(f: SmsFeature) -> None:
        f.history.people[0].name = "Renamed Person"
        f.history.people[0].timestamp += 1
        f.history.people.remove(next(p for p in f.history.people if p.uid == dropped_uid))

    again = await start_phone(daemon, tmp_path / "phone", SPEC, setup=edit)
    phones.append(again)
    asked = await wait_for(lambda: [p.body["uids"] for p in again.received
                                    if p.type == types.CONTACTS_REQUEST_VCARDS_BY_UID], what="vcards")
    assert asked == [[changed_uid]]
    for _ in range(200):
        names = {c["uid"]: c["name"] for c in await contacts.all(phone.device_id)}
        if names.get(changed_uid) == "Renamed Person":
            break
        await asyncio.sleep(0.02)
    assert names[changed_uid] == "Renamed Person" and dropped_uid not in names
