"""`phonebridge messages/send/sync/search` against an in-process daemon (127.0.0.1, no discovery)
and the demo phone with a small history: the JSON contract and the exit codes."""

from __future__ import annotations

import json

import pytest

import helpers
from helpers import run_cli, wait_for
from phonebridge.demo.phone import FEATURES, DemoPhone
from phonebridge.demo.sms import FAIL_NUMBER, HistorySpec, SmsFeature

pytestmark = pytest.mark.timeout(90)

SPEC = HistorySpec(threads=8, messages=240, big_thread=60, seed=3)
THREAD_FIELDS = {"thread_id": int, "addresses": list, "names": list, "snippet": str, "date": int,
                 "unread": int, "message_count": int}
MESSAGE_FIELDS = {"id": int, "thread_id": int, "date": int, "body": str, "addresses": list,
                  "outgoing": bool, "read": bool, "status": str, "attachments": list}



@pytest.fixture
async def setup(tmp_path):
    home = tmp_path / "home"
    daemon = await helpers.start_daemon(home)
    sized = type("SizedSms", (SmsFeature,), {"history_spec": SPEC})
    phone = DemoPhone(tmp_path / "phone", features=tuple(sized if f is SmsFeature else f for f in FEATURES))
    try:
        await helpers.link_and_pair(daemon, phone)
        await wait_for(lambda: (daemon.manager.devices[phone.device_id].state.get("sms_sync") or {})
                       .get("state") == "synced", 30, "synced")
        yield home, daemon, phone
    finally:
        await phone.stop()
        await daemon.stop()


async def test_messages_sync_send_search(setup) -> None:
    home, daemon, phone = setup
    history = phone.feature(SmsFeature).history

    code, out, err = await run_cli(home, "sync", "Demo Pixel", "--json")
    assert code == 0, err
    assert json.loads(out) == {"state": "synced", "threads": SPEC.threads, "messages": SPEC.messages,
                               "threads_complete": SPEC.threads}

    code, out, err = await run_cli(home, "messages", "Demo Pixel", "--json")
    assert code == 0, err
    threads = json.loads(out)
    assert len(threads) == SPEC.threads
    for t in threads:
        for name, kind in THREAD_FIELDS.items():
            assert isinstance(t[name], kind), (name, t)
        assert len(t["names"]) == len(t["addresses"])
    assert [t["date"] for t in threads] == sorted((t["date"] for t in threads), reverse=True)
    # contacts: most numbers show a name instead of the number
    named = sum(n != a for t in threads for n, a in zip(t["names"], t["addresses"], strict=True))
    assert named > 0

    tid = threads[0]["thread_id"]
    code, out, err = await run_cli(home, "messages", "Demo Pixel", "--thread", str(tid), "--json")
    assert code == 0, err
    messages = json.loads(out)
    assert len(messages) == len(history.threads[tid])
    assert [m["date"] for m in messages] == sorted(m["date"] for m in messages)
    for m in messages:
        for name, kind in MESSAGE_FIELDS.items():
            assert isinstance(m[name], kind), (name, m)
        assert m["status"] in ("received", "sent")
        assert (m["sender"] is None) == m["outgoing"]
        for a in m["attachments"]:
            assert set(a) >= {"part_id", "mime_type", "name"}
    code, out, err = await run_cli(home, "messages", "Demo Pixel", "--thread", str(tid))
    assert code == 0 and out.strip(), err

    number = history.threads[tid][-1].addresses[0]
    code, out, err = await run_cli(home, "send", "Demo Pixel", "--to", number, "Crème brûlée tonight?")
    assert code == 0, err
    code, out, err = await run_cli(home, "send", "Demo Pixel", "--to", FAIL_NUMBER, "nope")
    assert code == 1 and "could not send" in err

    code, out, err = await run_cli(home, "search", "creme", "--json")
    assert code == 0, err
    found = [r for r in json.loads(out) if r["kind"] == "message"]
    assert found and found[0]["thread_id"] == tid and "[Crème]" in found[0]["snippet"]
    assert set(found[0]) >= {"kind", "device", "thread_id", "id", "date", "snippet"}

    code, out, err = await run_cli(home, "messages", "nosuchphone")
    assert code != 0 and "no device" in err
