"""A hostile peer shares files with the daemon over real TLS on 127.0.0.1.

What must hold (plugins/share.py rules): nothing escapes the download folder, nothing lands under a
final name unless every announced byte arrived, a peer that lies, stalls or floods costs only its
own transfers, and the daemon keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from pathlib import Path

import httpx
import pytest

import helpers
from helpers import RawPeer, wait_for
from phonebridge.protocol import types
from phonebridge.protocol.constants import PAYLOAD_PORT_MAX, PAYLOAD_PORT_MIN
from phonebridge.transports.lan import payload

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def rig(tmp_path):
    downloads = tmp_path / "inside" / "Downloads"
    daemon = await helpers.start_daemon(tmp_path / "home", download_dir=str(downloads))
    peer = RawPeer(name="Hostile Phone")
    await peer.connect(daemon.provider.tcp_port,
                       tls_identity=peer.identity(incoming=[types.SHARE_REQUEST, types.PING],
                                                  outgoing=[types.SHARE_REQUEST, types.PING]),
                       clear_identity=peer.identity(incoming=[types.SHARE_REQUEST, types.PING],
                                                    outgoing=[types.SHARE_REQUEST, types.PING]))
    await wait_for(lambda: daemon.manager.is_linked(peer.device_id), what="linked")
    await helpers.pair_raw(daemon, peer)
    await wait_for(lambda: "share" in daemon.manager.devices[peer.device_id].plugins, what="share")
    cert = tmp_path / "peer.pem"
    key = tmp_path / "peer.key"
    cert.write_bytes(peer.cert.cert_pem)
    key.write_bytes(peer.cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    try:
        yield daemon, peer, ctx, downloads, tmp_path
    finally:
        await peer.close()
        await daemon.stop()


class EvilServer:
    """A payload server that does what the test tells it: serve `data`, then stall or close."""

    def __init__(self, ctx: ssl.SSLContext | None, data: bytes, *, stall: bool = False,
                 tls: bool = True) -> None:
        self.ctx, self.data, self.stall, self.tls = ctx, data, stall, tls
        self.server: asyncio.Server | None = None
        self.port = 0
        self.release = asyncio.Event()

    async def __aenter__(self) -> EvilServer:
        for port in range(PAYLOAD_PORT_MIN, PAYLOAD_PORT_MAX + 1):
            try:
                self.server = await asyncio.start_server(
                    self._serve, "127.0.0.1", port, ssl=self.ctx if self.tls else None)
            except OSError:
                continue
            self.port = port
            return self
        raise RuntimeError("no payload port free")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not self.tls:
                await self.release.wait()  # accepts TCP, never starts TLS
                return
            writer.write(self.data)
            await writer.drain()
            if self.stall:
                await self.release.wait()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.server is not None
        self.server.close()


async def offer(peer: RawPeer, name: str, size: int, port: int, **body: object) -> None:
    await peer.send(types.SHARE_REQUEST, {"filename": name, "numberOfFiles": 1,
                                          "totalPayloadSize": size, **body},
                    payloadSize=size, payloadTransferInfo={"port": port})


def transfers_of(daemon) -> list:  # noqa: ANN001
    return [t for t in daemon.transfers.list() if t.kind == "file"]


async def settled(daemon, count: int) -> list:  # noqa: ANN001
    await wait_for(lambda: len(transfers_of(daemon)) >= count
                   and all(not t.is_active for t in transfers_of(daemon)), timeout=30,
                   what=f"{count} transfers settled")
    return transfers_of(daemon)


def everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


TRAVERSAL_NAMES = {
    "../../escaped.txt": "escaped.txt",
    "/etc/passwd_evil": "passwd_evil",
    "..\\..\\win.txt": "win.txt",
    "C:\\Windows\\boot.ini": "boot.ini",
    "C:evil.txt": "C_evil.txt",
    "..": "received-file",
    "CON": "_CON",
    "nul.txt": "_nul.txt",
    "a\x00b\x1fc\u202e.txt": "abc.txt",
    "x" * 400 + ".txt": "x" * 235 + ".txt",
}


async def test_hostile_names_stay_in_the_download_folder(rig) -> None:
    daemon, peer, ctx, downloads, tmp = rig
    for i, name in enumerate(TRAVERSAL_NAMES):
        async with EvilServer(ctx, b"payload") as server:
            await offer(peer, name, 7, server.port)
            await settled(daemon, i + 1)
    got = await settled(daemon, len(TRAVERSAL_NAMES))
    assert all(t.state == "done" for t in got), [(t.name, t.error) for t in got]
    assert sorted(p.name for p in downloads.iterdir()) == sorted(TRAVERSAL_NAMES.values())
    assert everything_under(tmp / "inside") == {"Downloads"} | {
        f"Downloads/{n}" for n in TRAVERSAL_NAMES.values()}
    assert not (tmp / "escaped.txt").exists() and not (tmp / "inside" / "escaped.txt").exists()
    for t in got:
        assert Path(t.path).parent == downloads


async def test_payload_shorter_than_announced_leaves_no_file(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"s" * 1000) as server:
        await offer(peer, "short.bin", 5000, server.port)
        [t] = await settled(daemon, 1)
    assert t.state == "failed" and "1000 of 5000" in t.error
    assert list(downloads.iterdir()) == []


async def test_payload_longer_than_announced_is_cut_at_the_announced_size(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"L" * 5000) as server:
        await offer(peer, "long.bin", 1000, server.port)
        [t] = await settled(daemon, 1)
    assert t.state == "done"
    assert (downloads / "long.bin").read_bytes() == b"L" * 1000


async def test_payload_port_that_never_answers(rig, monkeypatch) -> None:
    monkeypatch.setattr(payload, "CONNECT_TIMEOUT", 0.5)
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"", tls=False) as server:
        await offer(peer, "silent.bin", 100, server.port)
        [t] = await settled(daemon, 1)
    assert t.state == "failed" and t.error
    assert list(downloads.iterdir()) == []


async def test_peer_stalling_mid_payload_is_abandoned(rig, monkeypatch) -> None:
    monkeypatch.setattr(payload, "IDLE_TIMEOUT", 0.5)
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"h" * 50_000, stall=True) as server:
        await offer(peer, "stalled.bin", 100_000, server.port)
        [t] = await settled(daemon, 1)
    assert t.state == "failed" and "stalled after 50000 bytes" in t.error
    assert list(downloads.iterdir()) == []


async def test_receiver_cancel_closes_the_payload_and_keeps_no_file(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"c" * 10_000, stall=True) as server:
        await offer(peer, "cancel.bin", 100_000, server.port)
        await wait_for(lambda: transfers_of(daemon) and transfers_of(daemon)[0].transferred > 0,
                       what="bytes flowing")
        daemon.transfers.cancel(transfers_of(daemon)[0].id)
        [t] = await settled(daemon, 1)
    assert t.state == "cancelled"
    await wait_for(lambda: list(downloads.iterdir()) == [], what="part file removed")


async def test_a_burst_of_10000_requests_does_not_stall_the_daemon(rig) -> None:
    daemon, peer, ctx, downloads, tmp = rig
    lines = []
    for i in range(10_000):
        if i % 2:
            lines.append(helpers.packet_line(types.SHARE_REQUEST, {"filename": f"../burst{i}"},
                                             payloadSize=10, payloadTransferInfo={"port": 1}))
        else:
            lines.append(helpers.packet_line(types.SHARE_REQUEST, {"filename": f"../burst{i}"},
                                             payloadSize=10,
                                             payloadTransferInfo={"port": PAYLOAD_PORT_MAX}))
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.api_port}",
                               headers={"Authorization": f"Bearer {daemon.token}"}, timeout=10)
    sending = asyncio.create_task(peer.send_raw(b"".join(lines)))
    latencies = []
    for _ in range(5):
        start = time.monotonic()
        r = await client.get("/api/status")
        latencies.append(time.monotonic() - start)
        assert r.status_code == 200
        await asyncio.sleep(0.05)
    await sending
    await peer.send(types.PING, {"message": "after the burst"})
    await wait_for(lambda: (peer.name, "after the burst") in daemon.desktop.notifications,
                   timeout=30, what="ping after the burst")
    r = await client.get("/api/transfers")
    assert r.status_code == 200
    await client.aclose()
    assert max(latencies) < 2.0, latencies
    await wait_for(lambda: all(not t.is_active for t in transfers_of(daemon)), timeout=30,
                   what="burst settled")
    assert len(transfers_of(daemon)) <= 10_000
    assert everything_under(tmp / "inside") <= {"Downloads"}
    assert daemon.manager.is_linked(peer.device_id)


async def test_disk_full_fails_clearly_and_keeps_earlier_files(rig, monkeypatch) -> None:
    import errno
    import os

    from phonebridge.plugins import share

    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"first") as server:
        await offer(peer, "first.txt", 5, server.port)
        await settled(daemon, 1)

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(share, "_write_all", full)
    async with EvilServer(ctx, b"second" * 1000) as server:
        await offer(peer, "second.txt", 6000, server.port)
        got = await settled(daemon, 2)
    second = next(t for t in got if t.name == "second.txt")
    assert second.state == "failed" and "No space left" in second.error
    assert sorted(p.name for p in downloads.iterdir()) == ["first.txt"]


async def test_link_dropping_mid_payload_fails_the_transfer(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"d" * 10_000, stall=True) as server:
        await offer(peer, "dropped.bin", 100_000, server.port)
        await wait_for(lambda: transfers_of(daemon) and transfers_of(daemon)[0].transferred > 0,
                       what="bytes flowing")
        await peer.close()
        [t] = await settled(daemon, 1)
    assert t.state == "failed" and "link" in t.error
    await wait_for(lambda: list(downloads.iterdir()) == [], what="part file removed")


# -- phonebridge.share.bundle: many files in one payload (protocol/bundle.py) ---------------------


def names_in(folder: Path) -> list[str]:
    """Sorted names in `folder`; [] when it was never made (a bundle makes it on its first file)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def offer_bundle(peer: RawPeer, files: list[tuple[object, int]], port: int,
                       payload_size: int | None = None) -> None:
    size = sum(s for _, s in files) if payload_size is None else payload_size
    top = {"payloadSize": size, "payloadTransferInfo": {"port": port}} if size else {}
    await peer.send(types.SHARE_BUNDLE,
                    {"files": [{"filename": n, "size": s, "lastModified": 1_600_000_000_000}
                               for n, s in files]}, **top)


async def test_bundle_names_stay_in_the_download_folder(rig) -> None:
    daemon, peer, ctx, downloads, tmp = rig
    files = [(name, 7) for name in TRAVERSAL_NAMES]
    async with EvilServer(ctx, b"payload" * len(files)) as server:
        await offer_bundle(peer, files, server.port)
        got = await settled(daemon, len(files))
    assert all(t.state == "done" for t in got), [(t.name, t.error) for t in got]
    assert names_in(downloads) == sorted(TRAVERSAL_NAMES.values())
    assert everything_under(tmp / "inside") == {"Downloads"} | {
        f"Downloads/{n}" for n in TRAVERSAL_NAMES.values()}
    assert all((downloads / n).read_bytes() == b"payload" for n in TRAVERSAL_NAMES.values())
    assert all(int((downloads / n).stat().st_mtime) == 1_600_000_000
               for n in TRAVERSAL_NAMES.values())


async def test_bundle_whose_sizes_lie_is_dropped_and_the_daemon_goes_on(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"x" * 100) as server:
        await offer_bundle(peer, [("a.txt", 10), ("b.txt", 10)], server.port, payload_size=100)
        await offer_bundle(peer, [("c.txt", -5), ("d.txt", 105)], server.port)
        await peer.send(types.SHARE_BUNDLE, {"files": "e.txt"})
        await peer.send(types.SHARE_BUNDLE, {"files": [{"filename": "f.txt", "size": 0}] * 10_001})
        await peer.send(types.PING, {"message": "still there"})
        await wait_for(lambda: (peer.name, "still there") in daemon.desktop.notifications,
                       what="ping after the lies")
    assert transfers_of(daemon) == []
    assert names_in(downloads) == []
    assert daemon.manager.is_linked(peer.device_id)


async def test_bundle_cut_short_keeps_whole_files_and_no_partial_one(rig) -> None:
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"AAAAA" + b"BB") as server:  # 7 of 15 bytes
        await offer_bundle(peer, [("a.txt", 5), ("b.txt", 5), ("empty.txt", 0), ("c.txt", 5)],
                           server.port)
        got = {t.name: t for t in await settled(daemon, 4)}
    assert got["a.txt"].state == "done"
    for name in ("b.txt", "empty.txt", "c.txt"):
        assert got[name].state == "failed" and "7 of 15" in got[name].error
    assert names_in(downloads) == ["a.txt"]
    assert (downloads / "a.txt").read_bytes() == b"AAAAA"


async def test_bundle_stalling_mid_payload_is_abandoned(rig, monkeypatch) -> None:
    monkeypatch.setattr(payload, "IDLE_TIMEOUT", 0.5)
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"1" * 30_000 + b"2" * 20_000, stall=True) as server:
        await offer_bundle(peer, [("one.bin", 30_000), ("two.bin", 70_000)], server.port)
        got = {t.name: t for t in await settled(daemon, 2)}
    assert got["one.bin"].state == "done"
    assert got["two.bin"].state == "failed" and "stalled" in got["two.bin"].error
    assert names_in(downloads) == ["one.bin"]


async def test_bundle_with_a_silent_payload_port_fails_every_file(rig, monkeypatch) -> None:
    monkeypatch.setattr(payload, "CONNECT_TIMEOUT", 0.5)
    daemon, peer, ctx, downloads, _ = rig
    async with EvilServer(ctx, b"", tls=False) as server:
        await offer_bundle(peer, [("a", 10), ("b", 10)], server.port)
        got = await settled(daemon, 2)
    assert {t.state for t in got} == {"failed"}
    assert names_in(downloads) == []


async def test_bundle_disk_full_keeps_the_files_written_before(rig, monkeypatch) -> None:
    import errno
    import os

    from phonebridge.plugins import share

    daemon, peer, ctx, downloads, _ = rig
    real = share._write_all
    calls = []

    def full_after_two(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(share, "_write_all", full_after_two)
    async with EvilServer(ctx, b"x" * 40) as server:
        await offer_bundle(peer, [(f"f{i}.txt", 10) for i in range(4)], server.port)
        got = {t.name: t for t in await settled(daemon, 4)}
    assert [got[f"f{i}.txt"].state for i in range(4)] == ["done", "done", "failed", "failed"]
    assert "No space left" in got["f2.txt"].error
    assert names_in(downloads) == ["f0.txt", "f1.txt"]


async def test_a_burst_of_bundles_is_bounded_and_the_daemon_answers(rig) -> None:
    daemon, peer, ctx, downloads, tmp = rig
    files = [{"filename": f"../b{i}", "size": 10} for i in range(100)]
    line = helpers.packet_line(types.SHARE_BUNDLE, {"files": files}, payloadSize=1000,
                               payloadTransferInfo={"port": 1})
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.api_port}",
                               headers={"Authorization": f"Bearer {daemon.token}"}, timeout=10)
    sending = asyncio.create_task(peer.send_raw(line * 2000))  # 200,000 files announced
    for _ in range(5):
        r = await client.get("/api/status")
        assert r.status_code == 200
        await asyncio.sleep(0.05)
    await sending
    await peer.send(types.PING, {"message": "after the bundles"})
    await wait_for(lambda: (peer.name, "after the bundles") in daemon.desktop.notifications,
                   timeout=30, what="ping after the burst")
    await client.aclose()
    await wait_for(lambda: all(not t.is_active for t in transfers_of(daemon)), timeout=60,
                   what="burst settled")
    # the queue holds RECEIVE_QUEUE requests; the rest were dropped, never fetched
    assert len(transfers_of(daemon)) <= (64 + 2) * 100
    assert everything_under(tmp / "inside") <= {"Downloads"}
    assert daemon.manager.is_linked(peer.device_id)


async def test_an_empty_file_is_announced_with_a_port_and_done_even_if_nobody_connects(
        rig, monkeypatch) -> None:
    monkeypatch.setattr(payload, "EMPTY_ACCEPT_TIMEOUT", 0.5)
    daemon, peer, ctx, _, tmp = rig
    for name in ("fetched.txt", "ignored.txt"):
        (tmp / name).write_bytes(b"")
    plugin = daemon.manager.plugin(peer.device_id, "share")

    [sent] = await plugin.share_files([tmp / "fetched.txt"])
    packet = await peer.expect(lambda p: p.type == types.SHARE_REQUEST
                               and p.body.get("filename") == "fetched.txt")
    assert not packet.has_payload and packet.empty_payload_port is not None
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.load_cert_chain(str(tmp / "peer.pem"), str(tmp / "peer.key"))
    reader, writer = await asyncio.open_connection("127.0.0.1", packet.empty_payload_port,
                                                   ssl=client)
    assert await reader.read() == b""  # nothing to read: the daemon closes
    writer.close()
    await wait_for(lambda: sent.state == "done", what="the empty file sent")

    [unfetched] = await plugin.share_files([tmp / "ignored.txt"])
    await peer.expect(lambda p: p.body.get("filename") == "ignored.txt")
    await wait_for(lambda: unfetched.state == "done", what="done without a connection")
