"""Two PhoneBridge daemons share files over real TLS on 127.0.0.1, small ones in bundles.

What must hold (plugins/share.py, protocol/bundle.py): every file arrives whole under its own name
with its date, each is its own transfer on both sides, runs of small files take one payload
connection per bundle, large files still go alone, and a cancel on either side keeps what was
already complete and leaves no part file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest

import helpers
from helpers import wait_for
from phonebridge.protocol import bundle, types
from phonebridge.transports.lan import payload

pytestmark = pytest.mark.timeout(90)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def pair_of_daemons(tmp_path):
    sender = await helpers.start_daemon(tmp_path / "a", download_dir=str(tmp_path / "a-dl"))
    receiver = await helpers.start_daemon(tmp_path / "b", download_dir=str(tmp_path / "b-dl"))
    try:
        await sender.provider.connect("127.0.0.1", receiver.provider.tcp_port)
        b_id, a_id = receiver.identity.device_id, sender.identity.device_id
        await wait_for(lambda: sender.manager.is_linked(b_id) and receiver.manager.is_linked(a_id),
                       what="linked both ways")
        await sender.manager.pair(b_id)
        await wait_for(lambda: helpers.device_json(receiver, a_id)["pair_state"] == "incoming",
                       what="request at the receiver")
        await receiver.manager.pair(a_id)
        await wait_for(lambda: sender.manager.devices[b_id].is_paired
                       and receiver.manager.devices[a_id].is_paired, what="paired")
        await wait_for(lambda: "share" in sender.manager.devices[b_id].plugins
                       and "share" in receiver.manager.devices[a_id].plugins, what="share loaded")
        yield sender, receiver, tmp_path
    finally:
        await sender.stop()
        await receiver.stop()


def share_plugin(daemon, device_id: str):  # noqa: ANN001, ANN201
    return daemon.manager.plugin(device_id, "share")


def count_payload_connections(monkeypatch) -> list[int]:  # noqa: ANN001
    """Count the payload connections the receiver opens (the real fetch runs)."""
    fetched: list[int] = []
    real = payload.fetch

    async def counting(host, port, size, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        fetched.append(size)
        return await real(host, port, size, *args, **kw)

    monkeypatch.setattr(payload, "fetch", counting)
    return fetched


def slow_writes(monkeypatch) -> None:  # noqa: ANN001
    """Each write of the receiver takes 50 ms more, so a bundle is still in flight for a cancel."""
    from phonebridge.plugins import share as share_module

    real_write_all = share_module._write_all

    def slow_write_all(fd: int, data: bytes) -> None:
        time.sleep(0.05)
        real_write_all(fd, data)

    monkeypatch.setattr(share_module, "_write_all", slow_write_all)


def make_files(folder: Path, sizes: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, size in enumerate(sizes):
        path = folder / f"f{n:04d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (1_600_000_000 + n, 1_600_000_000 + n))
        paths.append(path)
    return paths


async def all_settled(daemon, direction: str, count: int) -> list:  # noqa: ANN001
    def settled():  # noqa: ANN202
        ts = [t for t in daemon.transfers.list() if t.direction == direction and t.kind == "file"]
        return ts if len(ts) >= count and all(not t.is_active for t in ts) else None
    return await wait_for(settled, timeout=60, what=f"{count} {direction} transfers settled")


async def test_capability_is_listed_by_both_daemons(pair_of_daemons) -> None:
    sender, receiver, _ = pair_of_daemons
    peer = sender.manager.devices[receiver.identity.device_id].identity
    assert types.SHARE_BUNDLE in peer.incoming
    assert types.SHARE_BUNDLE in peer.outgoing


async def test_many_small_files_go_in_one_payload_and_arrive_whole(pair_of_daemons,
                                                                   monkeypatch) -> None:
    sender, receiver, tmp = pair_of_daemons
    fetched = count_payload_connections(monkeypatch)
    sizes = [10 * 1024] * 300 + [0, 1, 6 * 1024 * 1024, 5, 0]
    paths = make_files(tmp / "src", sizes)
    b_id = receiver.identity.device_id
    out = await share_plugin(sender, b_id).share_files(paths)
    assert len(out) == len(paths)
    received = await all_settled(receiver, "in", len(paths))
    sent = await all_settled(sender, "out", len(paths))
    assert {t.state for t in received} == {"done"}, {t.error for t in received}
    assert {t.state for t in sent} == {"done"}
    downloads = tmp / "b-dl"
    for path in paths:
        got = downloads / path.name
        assert got.stat().st_size == path.stat().st_size
        assert sha(got) == sha(path)
        assert int(got.stat().st_mtime) == int(path.stat().st_mtime)
    assert not [p for p in downloads.iterdir() if p.name.startswith(".")], "part files left"
    # 301 small files in one bundle, the 6 MiB file alone, then the last two in a second bundle
    assert sorted(fetched) == sorted([300 * 10 * 1024 + 1, 6 * 1024 * 1024, 5])


async def test_the_demo_phone_never_gets_a_bundle(tmp_path, monkeypatch) -> None:
    from phonebridge.demo.phone import DemoPhone
    from phonebridge.demo.share import ShareFeature

    daemon = await helpers.start_daemon(tmp_path / "home", download_dir=str(tmp_path / "dl"))
    phone = DemoPhone(tmp_path / "phone")
    try:
        await helpers.link_and_pair(daemon, phone)
        await wait_for(lambda: "share" in daemon.manager.devices[phone.device_id].plugins,
                       what="share loaded")
        paths = make_files(tmp_path / "src", [100] * 5)
        await share_plugin(daemon, phone.device_id).share_files(paths)
        sent = await all_settled(daemon, "out", 5)
        assert {t.state for t in sent} == {"done"}
        share = phone.feature(ShareFeature)
        await wait_for(lambda: len(share.files) == 5, what="five files at the phone")
    finally:
        await phone.stop()
        await daemon.stop()


async def test_receiver_cancelling_one_file_skips_only_that_file(pair_of_daemons,
                                                                 monkeypatch) -> None:
    sender, receiver, tmp = pair_of_daemons
    slow_writes(monkeypatch)
    paths = make_files(tmp / "src", [256 * 1024] * 20)
    await share_plugin(sender, receiver.identity.device_id).share_files(paths)

    def victim():  # noqa: ANN202
        ts = {t.name: t for t in receiver.transfers.list() if t.direction == "in"}
        t = ts.get("f0015.bin")
        return t if t is not None and t.is_active else None

    target = await wait_for(victim, what="the 16th file announced")
    receiver.transfers.cancel(target.id)
    received = await all_settled(receiver, "in", 20)
    states = {t.name: t.state for t in received}
    assert states.pop("f0015.bin") == "cancelled"
    assert set(states.values()) == {"done"}, received
    downloads = tmp / "b-dl"
    assert not (downloads / "f0015.bin").exists()
    assert sorted(p.name for p in downloads.iterdir()) == sorted(
        p.name for p in paths if p.name != "f0015.bin")
    for path in paths:
        if path.name != "f0015.bin":
            assert sha(downloads / path.name) == sha(path)


async def test_sender_cancelling_stops_the_rest_of_the_bundle(pair_of_daemons,
                                                              monkeypatch) -> None:
    sender, receiver, tmp = pair_of_daemons
    slow_writes(monkeypatch)
    paths = make_files(tmp / "src", [1024 * 1024] * 40)
    out = await share_plugin(sender, receiver.identity.device_id).share_files(paths)
    await wait_for(lambda: any(t.state == "done" for t in receiver.transfers.list()
                               if t.direction == "in"), what="a first file received")
    sender.transfers.cancel(out[30].id)
    sent = await all_settled(sender, "out", 40)
    assert out[30].state == "cancelled" and out[30].error == "cancelled by the user"
    together = [t for t in sent if t.state == "cancelled" and t is not out[30]]
    assert together and all("cancelled with f0030.bin" in t.error for t in together)
    received = await all_settled(receiver, "in", 40)
    downloads = tmp / "b-dl"
    done = [t for t in received if t.state == "done"]
    assert done, "files before the cancel are kept"
    for t in received:
        final = downloads / t.name
        if t.state == "done":
            assert sha(final) == sha(tmp / "src" / t.name)
        else:
            assert t.state == "failed" and not final.exists()
    assert not [p for p in downloads.iterdir() if p.name.startswith(".")], "part files left"


async def test_stopping_after_the_peer_left_does_not_wait_for_a_reconnect(pair_of_daemons) -> None:
    sender, receiver, _ = pair_of_daemons
    # Both at once: each one's links drop while the other is stopping.
    async with asyncio.timeout(10):  # it used to sleep out the reconnect back-off (up to minutes)
        await asyncio.gather(sender.stop(), receiver.stop())
