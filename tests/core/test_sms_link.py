"""Texts end to end over real TLS on 127.0.0.1: a Daemon (real store) against the DemoPhone, which
answers exactly as Android pages (PROTOCOL.md §8.7). Small seeded histories keep it fast."""

from __future__ import annotations

import asyncio

import pytest

import helpers
from helpers import wait_for
from phonebridge.demo.phone import FEATURES, DemoPhone
from phonebridge.demo.sms import FAIL_NUMBER, HistorySpec, SmsFeature, generate_history
from phonebridge.errors import DeviceError
from phonebridge.protocol import types

pytestmark = pytest.mark.timeout(60)

SPEC = HistorySpec(threads=10, messages=600, big_thread=260, seed=11)


def sized(spec: HistorySpec) -> tuple:
    """The phone's features with the SMS history of `spec`."""
    cls = type("SizedSms", (SmsFeature,), {"history_spec": spec})
    return tuple(cls if f is SmsFeature else f for f in FEATURES)


async def start_phone(daemon, home, spec: HistorySpec = SPEC, setup=None) -> DemoPhone:  # noqa: ANN001
    phone = DemoPhone(home, features=sized(spec))
    if setup is not None:
        setup(phone.feature(SmsFeature))
    await phone.start(helpers.LOOPBACK, daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(phone.device_id), what="phone linked")
    if not daemon.manager.devices[phone.device_id].is_paired:
        await daemon.manager.pair(phone.device_id)
    return phone


def sms_state(daemon, phone) -> dict:  # noqa: ANN001
    device = daemon.manager.devices.get(phone.device_id)
    return (device.state.get("sms_sync") if device else None) or {}


async def synced(daemon, phone, timeout: float = 30) -> dict:  # noqa: ANN001
    await wait_for(lambda: sms_state(daemon, phone).get("state") in ("synced", "incomplete"),
                   timeout, "sync finished")
    return sms_state(daemon, phone)


def expected_keys(spec: HistorySpec) -> list[tuple[str, int]]:
    return sorted((m.kind, m.id) for m in generate_history(spec).messages)


@pytest.fixture
async def phones():
    made: list[DemoPhone] = []
    try:
        yield made
    finally:
        for p in made:
            await p.stop()


async def test_full_sync_is_complete_and_exact(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone")
    phones.append(phone)
    state = await synced(daemon, phone)
    assert state["state"] == "synced"
    repo = daemon.services.messages
    keys = await repo.all_keys(phone.device_id)
    assert sorted(keys) == expected_keys(SPEC)  # every message once, nothing else
    assert state == {"state": "synced", "threads": SPEC.threads, "messages": SPEC.messages,
                     "threads_complete": SPEC.threads}
    history = phone.feature(SmsFeature).history
    threads = await repo.threads(phone.device_id)
    assert [t["date"] for t in threads] == sorted((t["date"] for t in threads), reverse=True)
    by_id = {t["thread_id"]: t for t in threads}
    for tid, msgs in history.threads.items():
        t = by_id[tid]
        assert t["message_count"] == len(msgs)
        group = len(msgs[-1].addresses) > 1
        assert t["is_group"] is group
        assert sorted(t["addresses"]) == sorted(msgs[-1].addresses)
    # every request for a thread pages as Android is asked: threadID, start, N
    asks = [p.body for p in phone.received if p.type == types.SMS_REQUEST_CONVERSATION]
    assert all("numberToRequest" in b for b in asks)


async def test_link_lost_mid_sync_resumes_without_duplicates(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone",
                              setup=lambda f: setattr(f, "close_after_pages", 4))
    phones.append(phone)
    await wait_for(lambda: phone.feature(SmsFeature).pages_answered >= 4, 20, "pages answered")
    await wait_for(lambda: not daemon.manager.is_linked(phone.device_id), what="link lost")
    state = sms_state(daemon, phone)
    assert state["threads_complete"] < SPEC.threads  # it was cut in mid-sync
    await phone.stop()
    # The phone comes back (same identity, same history) and the sync resumes.
    again = await start_phone(daemon, tmp_path / "phone")
    phones.append(again)
    await wait_for(lambda: sms_state(daemon, again).get("state") == "synced", 30, "resumed sync")
    keys = await daemon.services.messages.all_keys(phone.device_id)
    assert len(keys) == len(set(keys))
    assert sorted(keys) == expected_keys(SPEC)


async def test_reconnect_asks_only_what_is_new(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone")
    phones.append(phone)
    await synced(daemon, phone)
    await phone.stop()
    await wait_for(lambda: not daemon.manager.is_linked(phone.device_id), what="link down")
    added = []
    again = await start_phone(daemon, tmp_path / "phone",
                              setup=lambda f: added.extend(f.add_offline(5)))
    phones.append(again)
    await wait_for(lambda: sms_state(daemon, again).get("state") == "synced"
                   and sms_state(daemon, again).get("messages") == SPEC.messages + 5, 20, "resynced")
    asks = [p for p in again.received if p.type == types.SMS_REQUEST_CONVERSATION]
    touched = {m.thread_id for m in added}
    assert {p.body["threadID"] for p in asks} <= touched | {-1}
    assert len(asks) <= 2 * len(touched) + 1
    keys = await daemon.services.messages.all_keys(phone.device_id)
    assert sorted(keys) == sorted(expected_keys(SPEC) + [(m.kind, m.id) for m in added])


async def test_live_push_and_send_confirmed_and_failed(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone")
    phones.append(phone)
    await synced(daemon, phone)
    feature = phone.feature(SmsFeature)
    repo = daemon.services.messages
    history = feature.history
    tid, msgs = next((t, m) for t, m in history.threads.items() if len(m[-1].addresses) == 1)
    number = msgs[-1].addresses[0]
    incoming = await feature.receive(number, "Are you there? ¿Qué tal?")
    for _ in range(200):
        messages = await repo.messages(phone.device_id, tid)
        if messages[-1]["body"] == incoming.body:
            break
        await asyncio.sleep(0.02)
    last = messages[-1]
    assert last["sender"] == number and not last["outgoing"] and last["status"] == "received"
    assert last["read"] is False

    plugin = daemon.manager.plugin(phone.device_id, "sms")
    result = await plugin.send_message([number], "On my way 🚲", sub_id=1, timeout=10)
    assert result["status"] == "sent" and result["thread_id"] == tid
    messages = await repo.messages(phone.device_id, tid)
    mine = [m for m in messages if m["body"] == "On my way 🚲"]
    assert len(mine) == 1 and mine[0]["status"] == "sent" and mine[0]["outgoing"]
    assert mine[0]["sender"] is None
    request = feature.sent_requests[-1]
    assert request["version"] == 2 and request["addresses"] == [{"address": number}]
    assert request["subID"] == 1

    result = await plugin.send_message([FAIL_NUMBER], "this will fail", timeout=5)
    assert result["status"] == "failed"
    failed = [t for t in await repo.threads(phone.device_id) if t["addresses"] == [FAIL_NUMBER]]
    assert failed
    messages = await repo.messages(phone.device_id, failed[0]["thread_id"])
    assert [m["status"] for m in messages] == ["failed"]

    # several recipients: one group MMS thread
    others = [history.threads[t][-1].addresses[0] for t in list(history.threads)[1:3]]
    result = await plugin.send_message(others, "Dinner at 8?", attachments=[("a.png", "image/png", b"\x89PNG..")],
                                       timeout=10)
    assert result["status"] == "sent"
    group = next(t for t in await repo.threads(phone.device_id) if sorted(t["addresses"]) == sorted(others))
    assert group["is_group"]
    msg = (await repo.messages(phone.device_id, group["thread_id"]))[-1]
    assert msg["attachments"] and msg["attachments"][0]["mime_type"] == "image/png"
    # nothing left pending
    all_threads = await repo.threads(phone.device_id)
    for t in all_threads:
        for m in await repo.messages(phone.device_id, t["thread_id"]):
            assert m["status"] != "pending"


async def test_send_without_confirmation_is_marked_failed(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone")
    phones.append(phone)
    await synced(daemon, phone)
    feature = phone.feature(SmsFeature)

    async def silent(packet) -> None:  # noqa: ANN001 - a phone that takes the request and says nothing
        feature.sent_requests.append(packet.body)

    phone.handlers[types.SMS_REQUEST] = silent
    plugin = daemon.manager.plugin(phone.device_id, "sms")
    with pytest.raises(DeviceError, match="did not report"):
        await plugin.send_message(["+15557654321"], "into the void", timeout=0.5)
    repo = daemon.services.messages
    found = await daemon.search.search("void")
    assert found and found[0]["kind"] == "message"
    message = await repo.message(phone.device_id, found[0]["id"])
    assert message["status"] == "failed"


async def test_attachments_fetched_on_demand_and_missing_ones_fail_cleanly(daemon, tmp_path, phones) -> None:
    phone = await start_phone(daemon, tmp_path / "phone")
    phones.append(phone)
    await synced(daemon, phone)
    feature = phone.feature(SmsFeature)
    repo = daemon.services.messages
    with_parts = [m for m in feature.history.messages if m.attachments]
    assert with_parts
    target = with_parts[0]
    messages = await repo.messages(phone.device_id, target.thread_id)
    stored = next(m for m in messages if m["kind"] == "mms" and m["attachments"]
                  and m["attachments"][0]["name"] == target.attachments[0].unique_identifier)
    assert stored["attachments"][0]["has_thumbnail"]
    plugin = daemon.manager.plugin(phone.device_id, "sms")
    path, mime = await plugin.attachment_file(stored["id"], target.attachments[0].part_id)
    assert path.read_bytes() == target.attachments[0].data and mime == "image/png"

    import phonebridge.plugins.sms as sms_module

    feature.drop_attachments = True
    other = with_parts[1]
    stored = next(m for m in await repo.messages(phone.device_id, other.thread_id)
                  if m["attachments"] and m["attachments"][0]["name"] == other.attachments[0].unique_identifier)
    old = sms_module.ATTACHMENT_TIMEOUT
    sms_module.ATTACHMENT_TIMEOUT = 0.3
    try:
        with pytest.raises(DeviceError, match="did not send"):
            await plugin.attachment_file(stored["id"], other.attachments[0].part_id)
    finally:
        sms_module.ATTACHMENT_TIMEOUT = old
    assert daemon.manager.is_linked(phone.device_id)
