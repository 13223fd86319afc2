"""The phone's files over SFTP (PROTOCOL.md §8.14): the daemon's sftp plugin and PhoneFiles.

Against the demo phone (its real asyncssh SFTP server over a seeded Android tree, linked to a real
daemon over TLS on 127.0.0.1) and against a hand-made phone (RawPeer) that answers sftp.request
however a test needs, with a real asyncssh server of the test's choosing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncssh
import pytest

import helpers
from helpers import PeerCert, RawPeer, wait_for
from phonebridge.core.phonefiles import PhoneFileError, PhoneFiles, StorageRoot
from phonebridge.core.transfers import Transfer
from phonebridge.demo.phone import DemoPhone
from phonebridge.demo.sftp import SftpFeature
from phonebridge.demo.storage import phone_to_local, seed_storage
from phonebridge.errors import DeviceError
from phonebridge.plugins import sftp as sftp_plugin
from phonebridge.protocol import types

pytestmark = pytest.mark.timeout(120)


# -- the demo phone --------------------------------------------------------------------------------

VOLUME = "/storage/emulated/0"
SD = "/storage/1A2B-3C4D"


class Rig:
    def __init__(self, daemon, phone: DemoPhone, tmp: Path, summary) -> None:  # noqa: ANN001
        self.daemon, self.phone, self.tmp, self.summary = daemon, phone, tmp, summary
        self.server: SftpFeature = phone.feature(SftpFeature)
        self.fs = phone.home / "fs"

    def local(self, phone_path: str) -> Path:
        return phone_to_local(self.fs, phone_path)

    async def files(self) -> PhoneFiles:
        return await self.daemon.manager.plugin(self.phone.device_id, "sftp").files()

    def camera_photos(self, count: int) -> list[str]:
        return sorted(p for p in self.summary.newest
                      if p.startswith(f"{VOLUME}/DCIM/Camera/PXL_"))[:count]


@pytest.fixture
async def rig(tmp_path):
    phone_home = tmp_path / "phone"
    summary = await asyncio.to_thread(seed_storage, phone_home / "fs", photos=12, hostile=True,
                                      photo_size=(320, 240))
    daemon = await helpers.start_daemon(tmp_path / "home", download_dir=str(tmp_path / "dl"))
    phone = DemoPhone(phone_home)
    await helpers.link_and_pair(daemon, phone)
    await wait_for(lambda: daemon.manager.devices[phone.device_id].is_paired and phone.is_paired,
                   what="paired")
    await wait_for(lambda: "sftp" in daemon.manager.devices[phone.device_id].plugins, what="plugin")
    try:
        yield Rig(daemon, phone, tmp_path, summary)
    finally:
        await phone.stop()
        await daemon.stop()


async def finished(transfers: list[Transfer]) -> None:
    await wait_for(lambda: not any(t.is_active for t in transfers), timeout=60,
                   what="transfers ended")


def part_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".phonebridge-part")]


async def test_roots_are_the_phones_volumes_and_we_log_in_with_our_key(rig) -> None:
    files = await rig.files()
    assert files.roots == [StorageRoot(VOLUME, "Internal shared storage"),
                           StorageRoot(SD, "SD card")]
    assert rig.server.logins == [("publickey", True)]


async def test_listing_shows_sizes_and_dates_folders_first(rig) -> None:
    files = await rig.files()
    folder = f"{VOLUME}/DCIM/Camera"
    local = rig.local(folder)
    entries = await files.list_dir(folder)
    assert [e.name for e in entries] == sorted(
        os.listdir(local), key=lambda n: (not (local / n).is_dir(), n.casefold(), n))
    for entry in entries:
        st = (local / entry.name).stat()
        assert entry.path == f"{folder}/{entry.name}"
        assert entry.is_dir is (local / entry.name).is_dir()
        assert entry.size == (0 if entry.is_dir else st.st_size)
        assert entry.date == int(st.st_mtime) * 1000  # SFTP 3 carries whole seconds
    top = await files.list_dir(VOLUME)
    kinds = [e.is_dir for e in top]
    assert kinds == sorted(kinds, reverse=True)
    assert {"Android", "DCIM", "Download", "Pictures"} <= {e.name for e in top if e.is_dir}
    assert top[0].to_json() == {"name": top[0].name, "path": top[0].path, "size": 0,
                                "is_dir": True, "date": top[0].date}
    odd = rig.summary.odd_names[0]
    parent, name = odd.rsplit("/", 1)
    assert name in [e.name for e in await files.list_dir(parent)]
    assert await files.read(odd) == rig.local(odd).read_bytes()


async def test_reading_whole_files_and_ranges(rig) -> None:
    files = await rig.files()
    path = rig.camera_photos(1)[0]
    data = rig.local(path).read_bytes()
    assert await files.read(path) == data
    assert await files.read(path, 2, 100) == data[2:102]
    assert await files.read(path, len(data) - 10, 1000) == data[-10:]
    assert b"".join([chunk async for chunk in files.stream(path, 5)]) == data[5:]
    entry = await files.stat(path)
    assert (entry.name, entry.size, entry.is_dir) == (path.rsplit("/", 1)[1], len(data), False)
    with pytest.raises(PhoneFileError) as missing:
        await files.read(f"{VOLUME}/DCIM/Camera/no-such.jpg")
    assert (missing.value.path, missing.value.reason) == (f"{VOLUME}/DCIM/Camera/no-such.jpg",
                                                          "not found")


async def test_protected_folders_say_permission_denied(rig) -> None:
    files = await rig.files()
    with pytest.raises(PhoneFileError) as denied:
        await files.list_dir(f"{VOLUME}/Android/data")
    assert (denied.value.path, denied.value.reason) == (f"{VOLUME}/Android/data",
                                                        "permission denied")
    android = await files.list_dir(f"{VOLUME}/Android")
    assert {"data", "obb"} <= {e.name for e in android}


async def test_walk_ends_despite_the_loop_and_records_unreadable_folders(rig) -> None:
    files = await rig.files()
    seen = [e async for e in files.walk(VOLUME)]
    paths = [e.path for e in seen]
    assert len(set(paths)) == len(paths)  # the loop repeated nothing
    root = rig.local(VOLUME)
    expected = set()
    for folder, dirs, names in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        if relative in ("Android/data", "Android/obb"):
            dirs.clear()
            continue
        prefix = VOLUME if relative == "." else f"{VOLUME}/{relative}"
        expected |= {f"{prefix}/{name}" for name in names}
    assert set(paths) == expected
    assert {(e.path, e.reason) for e in files.walk_errors} == {
        (f"{VOLUME}/Android/data", "permission denied"),
        (f"{VOLUME}/Android/obb", "permission denied")}
    photo = rig.camera_photos(1)[0]
    assert next(e for e in seen if e.path == photo).size == rig.local(photo).stat().st_size
    # From inside the loop it ends too; max_depth and skip_hidden bound what is visited.
    looped = [e.path async for e in files.walk(f"{VOLUME}/Pictures/Loop")]
    assert len(set(looped)) == len(looped)
    assert files.walk_errors == []
    shallow = [e.path async for e in files.walk(VOLUME, max_depth=0)]
    assert all(p.count("/") == VOLUME.count("/") + 1 for p in shallow)
    visible = [e.path async for e in files.walk(f"{VOLUME}/DCIM", skip_hidden=True)]
    assert visible and not any("/." in p for p in visible)


async def test_pull_lands_whole_with_dates_kept_and_numbers_a_clash(rig) -> None:
    files = await rig.files()
    wanted = rig.camera_photos(3)
    to = rig.tmp / "pulled"
    to.mkdir()
    clash = wanted[0].rsplit("/", 1)[1]
    (to / clash).write_bytes(b"already here")
    with rig.daemon.bus.subscribe() as sub:
        transfers = await files.pull(wanted, to)
        assert [(t.direction, t.kind) for t in transfers] == [("in", "file")] * 3
        await finished(transfers)
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [t.state for t in transfers] == ["done"] * 3, [t.error for t in transfers]
    assert (to / clash).read_bytes() == b"already here"
    stem, ext = clash.rsplit(".", 1)
    landed = [Path(t.path) for t in transfers]
    assert landed[0] == to / f"{stem} (1).{ext}"
    assert [t.name for t in transfers] == [p.name for p in landed]
    for path, local in zip(wanted, landed, strict=True):
        source = rig.local(path)
        assert local.read_bytes() == source.read_bytes()
        assert int(local.stat().st_mtime) == int(source.stat().st_mtime)
    assert part_files(to) == []
    done = {e.data["id"] for e in events
            if e.type == "transfer.changed" and e.data["state"] == "done"}
    assert done == {t.id for t in transfers}
    assert {t.id: t.state for t in rig.daemon.transfers.list()} == {t.id: "done" for t in transfers}


async def test_a_session_dropped_in_mid_download_is_retried_once(rig) -> None:
    files = await rig.files()
    big = f"{VOLUME}/Download/big.bin"
    rig.local(big).write_bytes(os.urandom(3_000_000))
    small = rig.camera_photos(1)[0]
    to = rig.tmp / "pulled"
    logins = len(rig.server.logins)
    rig.server.faults.drop_after_bytes = 1_000_000
    rig.server.faults.times = 1  # the first session drops, the next one serves
    [transfer] = await files.pull([big], to)
    await finished([transfer])
    assert transfer.state == "done", transfer.error
    assert (to / "big.bin").read_bytes() == rig.local(big).read_bytes()
    assert len(rig.server.logins) == logins + 1  # one new session, one new login
    # Every session drops now: the file is tried twice, then fails and lands nowhere; the file
    # before it in the batch is kept.
    rig.server.faults.drop_after_bytes = 1_000_000
    kept, failed = await files.pull([small, big], to)
    await finished([kept, failed])
    assert kept.state == "done" and Path(kept.path).read_bytes() == rig.local(small).read_bytes()
    assert (failed.state, failed.error, failed.path) == ("failed", "connection lost", None)
    assert sorted(p.name for p in to.iterdir()) == sorted(["big.bin", Path(kept.path).name])
    # The phone works again once it behaves.
    rig.server.faults.drop_after_bytes = None
    assert await files.read(small) == rig.local(small).read_bytes()


async def test_files_in_flight_together_all_land_after_a_dropped_session(rig) -> None:
    files = await rig.files()
    wanted = rig.camera_photos(8)  # ~110 KB each, several in flight at once
    to = rig.tmp / "together"
    rig.server.faults.drop_after_bytes = 50_000
    rig.server.faults.times = 1  # one drop, which ends every file in flight
    transfers = await files.pull(wanted, to)
    await finished(transfers)
    assert [t.state for t in transfers] == ["done"] * 8, [t.error for t in transfers]
    for path, transfer in zip(wanted, transfers, strict=True):
        assert Path(transfer.path).read_bytes() == rig.local(path).read_bytes()
    assert part_files(to) == []


async def test_a_session_dropped_in_mid_listing_is_retried_once(rig) -> None:
    files = await rig.files()
    folder = f"{VOLUME}/DCIM/Camera"
    count = len(os.listdir(rig.local(folder)))
    rig.server.faults.drop_after_entries = 5
    rig.server.faults.times = 1
    assert len(await files.list_dir(folder)) == count
    rig.server.faults.drop_after_entries = 5
    with pytest.raises(PhoneFileError) as lost:
        await files.list_dir(folder)
    assert (lost.value.path, lost.value.reason) == (folder, "connection lost")
    rig.server.faults.drop_after_entries = None
    assert len(await files.list_dir(folder)) == count


async def test_a_restarted_phone_server_is_found_again(rig) -> None:
    files = await rig.files()
    first = await files.list_dir(VOLUME)
    old_port, requests = rig.server.server_port, rig.server.requests
    await rig.server.restart()  # new port, new password, sessions dropped
    assert await files.list_dir(VOLUME) == first
    assert rig.server.server_port != old_port
    assert rig.server.requests == requests + 1
    assert rig.server.logins[-1] == ("publickey", True)
    assert await rig.files() is files


async def test_cancel_stops_a_download_and_leaves_nothing(rig) -> None:
    files = await rig.files()
    big = f"{VOLUME}/Download/big.bin"
    rig.local(big).write_bytes(os.urandom(40_000_000))
    to = rig.tmp / "pulled"
    [transfer] = await files.pull([big], to)
    await wait_for(lambda: transfer.transferred > 0 or not transfer.is_active, what="started")
    rig.daemon.transfers.cancel(transfer.id)
    assert transfer.state == "cancelled"
    await wait_for(lambda: not part_files(to), what="part file removed")
    assert list(to.iterdir()) == []
    [before] = await files.pull([big], to)  # cancelled before its turn
    rig.daemon.transfers.cancel(before.id)
    assert before.state == "cancelled"
    assert await files.read(big, 0, 10) == rig.local(big).read_bytes()[:10]
    await wait_for(lambda: not part_files(to), what="part file removed")


async def test_push_lands_on_the_phone_with_its_date_and_no_part_file(rig) -> None:
    files = await rig.files()
    src = rig.tmp / "report.pdf"
    src.write_bytes(os.urandom(700_000))
    os.utime(src, (1_600_000_000, 1_600_000_000))
    folder = f"{VOLUME}/Download"
    [transfer] = await files.push([src], folder)
    assert (transfer.direction, transfer.path) == ("out", f"{folder}/report.pdf")
    await finished([transfer])
    assert transfer.state == "done", transfer.error
    landed = rig.local(f"{folder}/report.pdf")
    assert landed.read_bytes() == src.read_bytes()
    assert int(landed.stat().st_mtime) == 1_600_000_000
    [again] = await files.push([src], folder)
    await finished([again])
    assert (again.state, again.path) == ("done", f"{folder}/report (1).pdf")
    assert rig.local(again.path).read_bytes() == src.read_bytes()
    assert part_files(rig.local(folder)) == []
    with pytest.raises(PhoneFileError) as denied:
        await files.push([src], f"{VOLUME}/Android/data")
    assert denied.value.reason == "permission denied"
    with pytest.raises(DeviceError, match="not a regular file"):
        await files.push([rig.tmp], folder)


async def test_the_phones_error_message_is_shown(rig) -> None:
    rig.server.faults.error_message = "Storage permission is not granted"
    plugin = rig.daemon.manager.plugin(rig.phone.device_id, "sftp")
    with pytest.raises(DeviceError) as refused:
        await plugin.files()
    assert str(refused.value) == "Storage permission is not granted"
    rig.server.faults.error_message = None
    assert (await plugin.files()).roots[0] == StorageRoot(VOLUME, "Internal shared storage")


async def test_losing_the_link_ends_the_session(rig) -> None:
    files = await rig.files()
    await files.list_dir(VOLUME)
    await rig.daemon.manager.unpair(rig.phone.device_id)
    assert not files.connected
    with pytest.raises(PhoneFileError) as gone:
        await files.list_dir(VOLUME)
    assert gone.value.reason == "connection lost"
    await wait_for(lambda: not rig.server._connections, what="the phone saw the session end")


# -- a hand-made phone: what the plugin does with whatever a phone answers ------------------------


class SshServer:
    """A real asyncssh SFTP server on 127.0.0.1 with the host key the test chooses."""

    def __init__(self, root: Path, host_key_pem: bytes, desktop_key_pem: bytes,
                 read_cap: int | None = None) -> None:
        self.root = root
        self.read_cap = read_cap
        self.reads: list[int] = []
        self.host_key = asyncssh.import_private_key(host_key_pem)
        self.desktop_key = asyncssh.import_private_key(desktop_key_pem).convert_to_public()
        self.logins: list[tuple[str, bool]] = []
        self.server = None
        self.port = 0

    async def __aenter__(self) -> SshServer:
        outer = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                ok = username == "kdeconnect" and key == outer.desktop_key
                outer.logins.append(("publickey", ok))
                return ok

        class Sftp(asyncssh.SFTPServer):
            def read(self, file_obj: object, offset: int, size: int) -> bytes:
                outer.reads.append(size)
                if outer.read_cap is not None:
                    size = min(size, outer.read_cap)  # as MINA answers (at most 63 KiB)
                return super().read(file_obj, offset, size)

        self.server = await asyncssh.create_server(
            Auth, "127.0.0.1", 0, server_host_keys=[self.host_key],
            sftp_factory=lambda chan: Sftp(chan, chroot=str(self.root).encode()))
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def raw_rig(tmp_path):
    daemon = await helpers.start_daemon(tmp_path / "home")
    caps = {"incoming": [types.SFTP_REQUEST, types.PING], "outgoing": [types.SFTP, types.PING]}
    peer = RawPeer(name="Hand-made Phone")
    await peer.connect(daemon.provider.tcp_port, clear_identity=peer.identity(**caps),
                       tls_identity=peer.identity(**caps))
    await wait_for(lambda: daemon.manager.is_linked(peer.device_id), what="linked")
    await helpers.pair_raw(daemon, peer)
    await wait_for(lambda: "sftp" in daemon.manager.devices[peer.device_id].plugins, what="plugin")
    (tmp_path / "fs" / "storage" / "emulated" / "0").mkdir(parents=True)
    try:
        yield daemon, peer, tmp_path
    finally:
        await peer.close()
        await daemon.stop()


async def answer_next_request(peer: RawPeer, body: dict) -> None:
    """Wait for the daemon's sftp.request and answer it as told."""
    seen = len([p for p in peer.received if p.type == types.SFTP_REQUEST])
    await peer.expect(lambda p: p.type == types.SFTP_REQUEST
                      and len([q for q in peer.received if q.type == types.SFTP_REQUEST]) > seen)
    request = [p for p in peer.received if p.type == types.SFTP_REQUEST][-1]
    assert request.body == {"startBrowsing": True}
    await peer.send(types.SFTP, body)


def offer(port: int, **extra: object) -> dict:
    return {"ip": "203.0.113.9", "port": port, "user": "kdeconnect", "password": "p" * 28,
            "path": "/storage/emulated/0", "multiPaths": ["/storage/emulated/0"],
            "pathNames": ["Internal shared storage"], **extra}


async def test_login_with_our_key_at_the_link_address_not_the_ip_field(raw_rig) -> None:
    daemon, peer, tmp = raw_rig
    (tmp / "fs" / "storage" / "emulated" / "0" / "hello.txt").write_bytes(b"hi")
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    async with SshServer(tmp / "fs", peer.cert.key_pem, daemon.services.key_pem) as server:
        answering = asyncio.ensure_future(answer_next_request(peer, offer(server.port)))
        files = await plugin.files()
        await answering
        assert set(server.logins) == {("publickey", True)}  # asked, then signed
        assert [e.name for e in await files.list_dir("/storage/emulated/0")] == ["hello.txt"]
        assert files.roots == [StorageRoot("/storage/emulated/0", "Internal shared storage")]
        assert await plugin.files() is files  # cached: no second request
        assert len([p for p in peer.received if p.type == types.SFTP_REQUEST]) == 1


async def test_a_server_that_answers_less_than_asked_still_gives_whole_files(raw_rig) -> None:
    daemon, peer, tmp = raw_rig
    data = os.urandom(2_000_003)
    (tmp / "fs" / "storage" / "emulated" / "0" / "video.mp4").write_bytes(data)
    path = "/storage/emulated/0/video.mp4"
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    async with SshServer(tmp / "fs", peer.cert.key_pem, daemon.services.key_pem,
                         read_cap=63 * 1024) as server:
        answering = asyncio.ensure_future(answer_next_request(peer, offer(server.port)))
        files = await plugin.files()
        await answering
        assert await files.read(path) == data
        assert await files.read(path, 1000, 300_000) == data[1000:301_000]
        assert b"".join([b async for b in files.stream(path, 70_000)]) == data[70_000:]
        [transfer] = await files.pull([path], tmp / "pulled")
        await finished([transfer])
        assert (tmp / "pulled" / "video.mp4").read_bytes() == data
        assert max(server.reads[-20:]) <= 63 * 1024  # it learnt the server's limit


async def test_a_server_without_the_phones_key_is_refused(raw_rig) -> None:
    daemon, peer, tmp = raw_rig
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    impostor = PeerCert()
    async with SshServer(tmp / "fs", impostor.key_pem, daemon.services.key_pem) as server:
        answering = asyncio.ensure_future(answer_next_request(peer, offer(server.port)))
        with pytest.raises(DeviceError, match="not the paired phone"):
            await plugin.files()
        await answering
        assert server.logins == []  # refused before authenticating


async def test_the_phones_error_message_is_the_error(raw_rig) -> None:
    daemon, peer, _tmp = raw_rig
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    text = "KDE Connect needs the storage permission to browse files"
    answering = asyncio.ensure_future(answer_next_request(peer, {"errorMessage": text}))
    with pytest.raises(DeviceError) as caught:
        await plugin.files()
    await answering
    assert str(caught.value) == text


async def test_nothing_listening_at_the_port(raw_rig) -> None:
    daemon, peer, _tmp = raw_rig
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    answering = asyncio.ensure_future(answer_next_request(peer, offer(free)))
    with pytest.raises(DeviceError) as caught:
        await plugin.files()
    await answering
    assert str(caught.value) == f"cannot connect to the phone's SFTP server at 127.0.0.1:{free}"


async def test_login_refused(raw_rig) -> None:
    daemon, peer, tmp = raw_rig
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    someone_else = PeerCert()
    async with SshServer(tmp / "fs", peer.cert.key_pem, someone_else.key_pem) as server:
        answering = asyncio.ensure_future(answer_next_request(peer, offer(server.port)))
        with pytest.raises(DeviceError, match="^login refused$"):
            await plugin.files()
        await answering


async def test_a_phone_that_does_not_answer(raw_rig, monkeypatch) -> None:
    daemon, peer, _tmp = raw_rig
    monkeypatch.setattr(sftp_plugin, "ANSWER_TIMEOUT", 0.2)
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    with pytest.raises(DeviceError, match="^no answer from the phone$"):
        await plugin.files()
    await peer.expect(lambda p: p.type == types.SFTP_REQUEST)


async def test_concurrent_callers_share_one_request(raw_rig) -> None:
    daemon, peer, tmp = raw_rig
    plugin = daemon.manager.plugin(peer.device_id, "sftp")
    async with SshServer(tmp / "fs", peer.cert.key_pem, daemon.services.key_pem) as server:
        answering = asyncio.ensure_future(answer_next_request(peer, offer(server.port)))
        results = await asyncio.gather(*(plugin.files() for _ in range(5)))
        await answering
        assert all(r is results[0] for r in results)
        assert len([p for p in peer.received if p.type == types.SFTP_REQUEST]) == 1
        assert set(server.logins) == {("publickey", True)}  # asked, then signed


async def test_an_unpaired_peer_cannot_get_an_offer_accepted(daemon) -> None:
    """The sftp plugin only exists for paired devices; an unpaired one's offer is dropped."""
    dialled = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.append(writer.get_extra_info("peername"))
        writer.close()

    trap = await asyncio.start_server(count, "127.0.0.1", 0)
    caps = {"incoming": [types.SFTP_REQUEST], "outgoing": [types.SFTP]}
    peer = RawPeer(name="Stranger")
    try:
        await peer.connect(daemon.provider.tcp_port, clear_identity=peer.identity(**caps),
                           tls_identity=peer.identity(**caps))
        await wait_for(lambda: daemon.manager.is_linked(peer.device_id), what="linked")
        await peer.send(types.SFTP, offer(trap.sockets[0].getsockname()[1]))
        # The daemon answers data from a stranger with "not paired" once it has dropped it.
        await peer.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is False)
        device = daemon.manager.devices[peer.device_id]
        assert not device.is_paired and "sftp" not in device.plugins
        with pytest.raises(DeviceError, match="not paired"):
            daemon.manager.plugin(peer.device_id, "sftp")
        assert dialled == []
    finally:
        await peer.close()
        trap.close()
