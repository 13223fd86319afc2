"""Sharing with the demo phone over real TLS on 127.0.0.1, both ways, through the daemon's API."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
import pytest

import helpers
from helpers import wait_for
from phonebridge.demo.phone import DemoPhone
from phonebridge.demo.share import ShareFeature

pytestmark = pytest.mark.timeout(60)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def rig(tmp_path):
    daemon = await helpers.start_daemon(tmp_path / "home", download_dir=str(tmp_path / "dl"))
    phone = DemoPhone(tmp_path / "phone")
    await phone.start("127.0.0.1", daemon.provider.tcp_port, daemon.identity)
    await wait_for(lambda: daemon.manager.is_linked(phone.device_id), what="phone linked")
    await daemon.manager.pair(phone.device_id)
    await wait_for(lambda: daemon.manager.devices[phone.device_id].is_paired and phone.is_paired,
                   what="paired")
    await wait_for(lambda: "share" in daemon.manager.devices[phone.device_id].plugins, what="plugin")
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{daemon.api_port}",
        headers={"Authorization": f"Bearer {daemon.token}"}, timeout=30)
    try:
        yield daemon, phone, client, tmp_path
    finally:
        await client.aclose()
        await phone.stop()
        await daemon.stop()


async def test_phone_sends_files_android_style_and_they_arrive_whole(rig) -> None:
    daemon, phone, client, tmp = rig
    src = tmp / "src"
    src.mkdir()
    files = {"photo.jpg": os.urandom(3_000_000), "empty.txt": b"", "note.txt": b"hello"}
    for name, data in files.items():
        (src / name).write_bytes(data)
    os.utime(src / "photo.jpg", (1_600_000_000, 1_600_000_000))
    share = phone.feature(ShareFeature)
    with daemon.bus.subscribe() as sub:
        await share.send_files([src / n for n in files])
        await wait_for(lambda: all((tmp / "dl" / n).exists() for n in files), what="three files")
        await wait_for(lambda: all(t.state == "done" for t in daemon.transfers.list()), what="done")
        events = []
        while not sub.queue.empty():
            events.append(sub.queue.get_nowait())
    for name, data in files.items():
        assert (tmp / "dl" / name).read_bytes() == data
    assert int((tmp / "dl" / "photo.jpg").stat().st_mtime) == 1_600_000_000
    changed = [e for e in events if e.type == "transfer.changed"]
    assert changed and all(e.data["direction"] == "in" for e in changed)
    listed = (await client.get("/api/transfers")).json()
    done = {t["name"]: t for t in listed if t["state"] == "done"}
    assert set(done) == set(files)
    assert done["photo.jpg"]["path"] == str(tmp / "dl" / "photo.jpg")
    assert done["photo.jpg"]["size"] == 3_000_000
    assert not [p for p in (tmp / "dl").iterdir() if p.name.startswith(".")]  # no part files left


async def test_same_name_twice_is_numbered(rig) -> None:
    daemon, phone, _client, tmp = rig
    (tmp / "a.txt").write_bytes(b"one")
    share = phone.feature(ShareFeature)
    await share.send_files([tmp / "a.txt"])
    await share.send_files([tmp / "a.txt"])
    await wait_for(lambda: (tmp / "dl" / "a (1).txt").exists(), what="numbered copy")
    assert (tmp / "dl" / "a.txt").read_bytes() == b"one"


async def test_phone_text_goes_to_the_clipboard_and_url_is_offered(rig) -> None:
    daemon, phone, client, _tmp = rig
    share = phone.feature(ShareFeature)
    await share.send_text("shared from the phone")
    await wait_for(lambda: daemon.desktop.clipboard.text == "shared from the phone", what="clipboard")
    await share.send_url("https://example.org/x?y=1")
    await wait_for(lambda: any("https://example.org/x?y=1" in m for _, m in daemon.desktop.notifications),
                   what="url notification")
    listed = (await client.get("/api/transfers")).json()
    url = next(t for t in listed if t["kind"] == "url")
    assert url["content"] == "https://example.org/x?y=1" and url["direction"] == "in"
    r = await client.post("/api/open-url", json={"url": url["content"]})
    assert r.status_code == 200
    assert daemon.desktop.opener.opened_urls == ["https://example.org/x?y=1"]
    r = await client.post("/api/open-url", json={"url": "file:///etc/passwd"})
    assert r.status_code == 400
    r = await client.post("/api/open-url", json={"url": "javascript:alert(1)"})
    assert r.status_code == 400


async def test_desktop_sends_files_text_and_url_to_the_phone(rig) -> None:
    daemon, phone, client, tmp = rig
    big = tmp / "big.bin"
    big.write_bytes(os.urandom(5_000_000))
    empty = tmp / "empty.bin"
    empty.write_bytes(b"")
    r = await client.post(f"/api/devices/{phone.device_id}/share",
                          json={"paths": [str(big), str(empty)]})
    assert r.status_code == 200, r.text
    transfers = r.json()["transfers"]
    assert [t["name"] for t in transfers] == ["big.bin", "empty.bin"]
    assert all(t["direction"] == "out" for t in transfers)
    share = phone.feature(ShareFeature)
    await wait_for(lambda: len(share.files) == 2, timeout=20, what="phone got both")
    assert sha(share.download_dir / "big.bin") == sha(big)
    assert (share.download_dir / "empty.bin").read_bytes() == b""
    bodies = [p for p in phone.received if p.type == "kdeconnect.share.request"]
    assert all(p.body["numberOfFiles"] == 2 and p.body["totalPayloadSize"] == 5_000_000
               for p in bodies)
    assert bodies[1].payload_size is None  # an empty file carries no payload fields (§1)
    for t in transfers:
        got = (await client.get(f"/api/transfers/{t['id']}")).json()
        await wait_for(lambda: daemon.transfers.get(t["id"]).state == "done", what="done")
    await client.post(f"/api/devices/{phone.device_id}/share", json={"text": "hi phone"})
    await client.post(f"/api/devices/{phone.device_id}/share", json={"url": "https://kde.org"})
    await wait_for(lambda: share.texts == ["hi phone"] and share.urls == ["https://kde.org"],
                   what="text and url")
    assert got["state"] in ("active", "done")


async def test_browser_upload_is_shared_and_its_temp_file_removed(rig) -> None:
    daemon, phone, client, tmp = rig
    data = os.urandom(700_000)
    r = await client.post(f"/api/devices/{phone.device_id}/share/upload",
                          files=[("files", ("up load.bin", data, "application/octet-stream")),
                                 ("files", ("../../evil.txt", b"x", "text/plain"))])
    assert r.status_code == 200, r.text
    names = [t["name"] for t in r.json()["transfers"]]
    assert names == ["up load.bin", "evil.txt"]
    share = phone.feature(ShareFeature)
    await wait_for(lambda: len(share.files) == 2, timeout=20, what="uploaded files at the phone")
    assert (share.download_dir / "up load.bin").read_bytes() == data
    outgoing = daemon.settings.home / "outgoing"
    await wait_for(lambda: not any(outgoing.iterdir()), what="temp upload removed")


async def test_cancel_and_reveal(rig) -> None:
    daemon, phone, client, tmp = rig
    r = await client.post("/api/transfers/nope/cancel")
    assert r.status_code == 404
    (tmp / "r.txt").write_bytes(b"reveal me")
    await phone.feature(ShareFeature).send_files([tmp / "r.txt"])
    await wait_for(lambda: (tmp / "dl" / "r.txt").exists(), what="file")
    t = next(t for t in (await client.get("/api/transfers")).json() if t["name"] == "r.txt")
    r = await client.post(f"/api/transfers/{t['id']}/reveal")
    assert r.status_code == 200
    assert daemon.desktop.opener.revealed == [tmp / "dl" / "r.txt"]
    r = await client.post(f"/api/transfers/{t['id']}/cancel")
    assert r.status_code == 409  # already done


async def test_desktop_cancels_an_outgoing_file_midway(rig, monkeypatch) -> None:
    daemon, phone, client, tmp = rig
    share = phone.feature(ShareFeature)
    gate = asyncio.Event()
    original = phone.link.fetch_payload

    async def slow_fetch(packet, write, progress=None):
        def slow_write(data):
            write(data)
        await gate.wait()
        return await original(packet, slow_write, progress)

    monkeypatch.setattr(phone.link, "fetch_payload", slow_fetch)
    big = tmp / "big.bin"
    big.write_bytes(os.urandom(2_000_000))
    r = await client.post(f"/api/devices/{phone.device_id}/share", json={"paths": [str(big)]})
    tid = r.json()["transfers"][0]["id"]
    r = await client.post(f"/api/transfers/{tid}/cancel")
    assert r.json()["state"] == "cancelled"
    gate.set()
    await wait_for(lambda: share.failed, timeout=15, what="phone sees the failure")
    assert not (share.download_dir / "big.bin").exists()
    assert daemon.transfers.get(tid).state == "cancelled"
