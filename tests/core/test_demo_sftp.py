"""The demo phone's SFTP server and seeded storage, as a desktop sees them.

The phone is a real DemoPhone on a real TLS link over 127.0.0.1. Its desktop here is a
LanLinkProvider with its own certificate, so a test sees the phone's `kdeconnect.sftp` answer as it
comes off the wire; one test pairs with the real daemon instead and logs in with the daemon's own
key. Logins go through a real asyncssh client.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from PIL import ExifTags, Image

import helpers
from helpers import LOOPBACK, PeerCert, wait_for
from phonebridge.demo.phone import DemoPhone
from phonebridge.demo.sftp import SftpFeature
from phonebridge.demo.storage import VOLUMES, phone_to_local, seed_storage
from phonebridge.protocol import types
from phonebridge.protocol.constants import PROTOCOL_VERSION
from phonebridge.protocol.framing import BadLine
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet
from phonebridge.transports.lan.link import LanLink
from phonebridge.transports.lan.provider import LanLinkProvider

pytestmark = pytest.mark.timeout(120)

INTERNAL, SD_CARD = VOLUMES[0][0], VOLUMES[1][0]
ANSWER_TIMEOUT = 60.0  # the first answer waits for the storage to be seeded (a second or so)


class Desktop:
    """The desktop end of a real TLS link to the demo phone: pairs, asks for SFTP, keeps answers."""

    def __init__(self) -> None:
        self.cert = PeerCert()
        self.identity = Identity(
            device_id=self.cert.device_id, name="Test Desktop", device_type="desktop",
            protocol_version=PROTOCOL_VERSION,
            incoming=frozenset({types.SFTP}), outgoing=frozenset({types.SFTP_REQUEST}),
        )
        self.link: LanLink | None = None
        self.answers: list[dict] = []
        self._provider = LanLinkProvider(
            identity=lambda: self.identity, cert_pem=self.cert.cert_pem, key_pem=self.cert.key_pem,
            on_link=self._on_link, is_linked=lambda _id: self.link is not None,
            known_identity=lambda _id: None, bind_addresses=[LOOPBACK], discovery=False,
            mdns=False, tcp_ports=helpers.port_range(),
        )
        self._reader: asyncio.Task | None = None

    @property
    def key(self) -> asyncssh.SSHKey:
        """The private key of our TLS certificate, as KDE hands it to sshfs."""
        return asyncssh.import_private_key(self.cert.key_pem)

    async def start(self) -> int:
        await self._provider.start()
        assert self._provider.tcp_port is not None
        return self._provider.tcp_port

    async def _on_link(self, link: LanLink) -> None:
        self.link = link
        self._reader = asyncio.get_running_loop().create_task(self._read(link))

    async def _read(self, link: LanLink) -> None:
        async for item in link.packets():
            if not isinstance(item, BadLine) and item.type == types.SFTP:
                self.answers.append(item.body)

    async def pair(self, phone: DemoPhone) -> None:
        await wait_for(lambda: self.link is not None, what="linked")
        assert self.link is not None
        await self.link.send(Packet(types.PAIR, {"pair": True, "timestamp": int(time.time())}))
        await wait_for(lambda: phone.is_paired, what="paired")

    async def request(self) -> dict:
        """Ask the phone to start browsing, as KDE's mounter does; the phone's answer body."""
        assert self.link is not None
        before = len(self.answers)
        await self.link.send(Packet(types.SFTP_REQUEST, {"startBrowsing": True}))
        await wait_for(lambda: len(self.answers) > before, ANSWER_TIMEOUT, "sftp answer")
        return self.answers[-1]

    async def stop(self) -> None:
        if self.link is not None:
            await self.link.close("test over")
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._provider.stop()


async def connect(answer: dict, *, key: asyncssh.SSHKey | None = None,
                  password: str | None = None, username: str = "kdeconnect",
                  host_key: asyncssh.SSHKey | None = None) -> asyncssh.SSHClientConnection:
    """Log in as the desktop does: the link's address (not `ip`), key and/or password."""
    return await asyncssh.connect(
        LOOPBACK, answer["port"], username=username,
        client_keys=[key] if key is not None else [], password=password,
        known_hosts=([host_key.convert_to_public()], [], []) if host_key is not None else None,
        agent_path=None, config=None, preferred_auth="publickey,password",
    )


@contextlib.asynccontextmanager
async def browse(answer: dict, **login) -> AsyncIterator[asyncssh.SFTPClient]:
    """An SFTP client on a new session (logged in as `connect` does)."""
    async with await connect(answer, **login) as conn, conn.start_sftp_client() as client:
        yield client


@contextlib.asynccontextmanager
async def paired_phone(tmp_path: Path) -> AsyncIterator[tuple[Desktop, DemoPhone, SftpFeature]]:
    """A demo phone (storage in tmp_path/phone) paired with a Desktop; both stop on the way out."""
    desktop = Desktop()
    port = await desktop.start()
    phone = DemoPhone(tmp_path / "phone")
    await phone.start(LOOPBACK, port, desktop.identity)
    await desktop.pair(phone)
    try:
        yield desktop, phone, phone.feature(SftpFeature)
    finally:
        await phone.stop()
        await desktop.stop()


@pytest.fixture
async def rig(tmp_path):
    async with paired_phone(tmp_path) as rig:
        yield rig


@pytest.fixture
async def hostile_rig(tmp_path):
    seed_storage(tmp_path / "phone" / "fs", photos=40, hostile=True)
    async with paired_phone(tmp_path) as rig:
        yield rig


# -- the answer ----------------------------------------------------------------------------------


async def test_answer_has_androids_fields_and_types(rig) -> None:
    desktop, _phone, sftp = rig
    answer = await desktop.request()
    assert set(answer) == {"ip", "port", "user", "password", "path", "multiPaths", "pathNames"}
    assert answer["ip"] == LOOPBACK  # the local address of the phone's link
    assert isinstance(answer["port"], int) and 1739 <= answer["port"] <= 1764
    assert answer["port"] == sftp.server_port
    assert answer["user"] == "kdeconnect"
    assert isinstance(answer["password"], str) and len(answer["password"]) == 28
    assert answer["password"].isalnum() and answer["password"] == sftp.password
    assert answer["path"] == "/storage/emulated/0"  # several volumes: the internal one
    assert answer["multiPaths"] == [INTERNAL, SD_CARD]
    assert answer["pathNames"] == ["Internal shared storage", "SD card"]

    again = await desktop.request()
    assert again["port"] == answer["port"]  # the server keeps running
    assert again["password"] != answer["password"]


async def test_request_without_start_browsing_is_ignored_and_error_message_is_sent(rig) -> None:
    desktop, phone, sftp = rig
    assert desktop.link is not None
    await desktop.link.send(Packet(types.SFTP_REQUEST, {}))
    await wait_for(lambda: any(p.type == types.SFTP_REQUEST for p in phone.received), what="got it")
    sftp.faults.error_message = "Permission to access the storage is missing"
    answer = await desktop.request()
    assert answer == {"errorMessage": "Permission to access the storage is missing"}
    assert len(desktop.answers) == 1  # the request without startBrowsing got nothing
    assert sftp.server_port is None


# -- logging in ----------------------------------------------------------------------------------


async def test_our_certificate_key_logs_in_and_another_key_does_not(rig) -> None:
    desktop, phone, sftp = rig
    answer = await desktop.request()
    phone_host_key = asyncssh.import_private_key((phone.home / "private_key.pem").read_bytes())
    async with browse(answer, key=desktop.key, host_key=phone_host_key) as client:
        assert sorted(await client.listdir("/storage")) == [".", "..", "1A2B-3C4D", "emulated"]
    assert sftp.logins == [("publickey", True)]

    stranger = asyncssh.import_private_key(PeerCert().key_pem)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(answer, key=stranger)
    assert sftp.logins[-1] == ("publickey", False)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(answer, key=desktop.key, username="root")


async def test_password_works_until_the_next_request(rig) -> None:
    desktop, _phone, sftp = rig
    first = await desktop.request()
    async with await connect(first, password=first["password"]):
        pass
    async with await connect(first, password=first["password"]):  # not single-use within a request
        pass
    second = await desktop.request()
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(second, password=first["password"])
    async with await connect(second, password=second["password"]):
        pass
    assert [ok for method, ok in sftp.logins if method == "password"][-2:] == [False, True]
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(second, password="x" * 28)


async def test_the_paired_daemons_own_key_logs_in(tmp_path) -> None:
    daemon = await helpers.start_daemon(tmp_path / "home")
    phone = DemoPhone(tmp_path / "phone")
    try:
        await helpers.link_and_pair(daemon, phone)
        await wait_for(lambda: phone.is_paired, what="paired")
        sftp = phone.feature(SftpFeature)
        # The daemon has no SFTP plugin yet to send the request: hand the phone the packet.
        request = Packet(types.SFTP_REQUEST, {"startBrowsing": True})
        await phone.handlers[types.SFTP_REQUEST](request)
        await wait_for(lambda: sftp.requests, ANSWER_TIMEOUT, "server started")
        assert daemon.services.key_pem is not None
        key = asyncssh.import_private_key(daemon.services.key_pem)
        async with browse({"port": sftp.server_port}, key=key) as client:
            assert "DCIM" in await client.listdir(INTERNAL)
        assert sftp.logins == [("publickey", True)]
    finally:
        await phone.stop()
        await daemon.stop()


# -- what the server shows -----------------------------------------------------------------------


async def test_listing_shows_both_volumes_odd_names_and_refuses_android_data(hostile_rig) -> None:
    desktop, phone, _sftp = hostile_rig
    answer = await desktop.request()
    async with browse(answer, key=desktop.key) as client:
        assert await client.realpath("/../..") == "/"  # the chroot holds
        assert "storage" in await client.listdir("/")
        internal = set(await client.listdir(INTERNAL))
        assert {"DCIM", "Pictures", "Movies", "Download", "Documents", "Android"} <= internal
        assert {"Camera"} <= set(await client.listdir(f"{SD_CARD}/DCIM"))
        assert set(await client.listdir(f"{INTERNAL}/Android")) >= {"data", "obb", "media"}
        for volume in (INTERNAL, SD_CARD):
            for protected in ("Android/data", "Android/obb"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await client.listdir(f"{volume}/{protected}")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.open(f"{volume}/Android/data/com.example.app/files/state.bin")
        sneaky = phone_to_local(phone.home / "fs", f"{INTERNAL}/Download/sneaky")
        sneaky.symlink_to("../Android/data")
        with pytest.raises(asyncssh.SFTPPermissionDenied):  # no way round through a link
            await client.listdir(f"{INTERNAL}/Download/sneaky")
        looped = await client.listdir(f"{INTERNAL}/Pictures/Loop/again/Loop/again")
        assert "Screenshots" in looped
        odd = set(await client.listdir(f"{INTERNAL}/Pictures/Odd names"))
        assert {"-rf.jpg", "🎉 party 🥳.jpg", "100% done %20 %s.jpg", "it's \"quoted\".jpg",
                "café déjà vu ÆØÅ 日本.jpg", "two  spaces and trailing .jpg"} <= odd
        loop = await client.lstat(f"{INTERNAL}/Pictures/Loop/again")
        assert loop.permissions is not None and (loop.permissions & 0o170000) == 0o120000
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await client.listdir(f"{INTERNAL}/Nope")

        newest = phone.feature(SftpFeature).summary.newest[0]
        async with client.open(newest, "rb") as remote:
            assert await remote.read() == phone_to_local(phone.home / "fs", newest).read_bytes()


async def test_uploads_land_on_the_phone(rig) -> None:
    desktop, phone, _sftp = rig
    answer = await desktop.request()
    async with browse(answer, key=desktop.key) as client:
        async with client.open(f"{INTERNAL}/Download/.part", "wb") as remote:
            await remote.write(b"hello phone")
        await client.posix_rename(f"{INTERNAL}/Download/.part", f"{INTERNAL}/Download/hi.txt")
    landed = phone_to_local(phone.home / "fs", f"{INTERNAL}/Download/hi.txt")
    assert landed.read_bytes() == b"hello phone"


# -- faults and restarts -------------------------------------------------------------------------


async def test_drop_mid_listing(tmp_path) -> None:
    seed_storage(tmp_path / "phone" / "fs", photos=300)
    async with paired_phone(tmp_path) as (desktop, _phone, sftp):
        answer = await desktop.request()
        sftp.faults.drop_after_entries = 200
        sftp.faults.times = 1
        conn = await connect(answer, key=desktop.key)
        client = await conn.start_sftp_client()
        received = []
        with pytest.raises(asyncssh.ConnectionLost):
            async for entry in client.scandir(f"{INTERNAL}/DCIM/Camera"):
                received.append(entry.filename)
        assert 0 < len(received) < 300  # the first batches arrived, then the connection went
        await asyncio.wait_for(conn.wait_closed(), 10)
        assert sftp.faults.drop_after_entries is None  # times=1: only once

        async with browse(answer, key=desktop.key) as client:  # the next session works
            names = await client.listdir(f"{INTERNAL}/DCIM/Camera")
        assert len([n for n in names if n.endswith(".jpg")]) >= 250


async def test_drop_mid_read_every_time_until_cleared(rig) -> None:
    desktop, phone, sftp = rig
    answer = await desktop.request()
    path = sftp.summary.newest[0]
    size = phone_to_local(phone.home / "fs", path).stat().st_size
    sftp.faults.drop_after_bytes = size // 2
    for _attempt in range(2):  # no `times`: every session drops
        conn = await connect(answer, key=desktop.key)
        client = await conn.start_sftp_client()
        with pytest.raises(asyncssh.ConnectionLost):
            async with client.open(path, "rb") as remote:
                await remote.read()
        await asyncio.wait_for(conn.wait_closed(), 10)
    sftp.faults.drop_after_bytes = None
    async with browse(answer, key=desktop.key) as client:
        async with client.open(path, "rb") as remote:
            assert len(await remote.read()) == size


async def test_restart_gives_a_new_port_and_password_and_ends_sessions(rig) -> None:
    desktop, _phone, sftp = rig
    before = await desktop.request()
    conn = await connect(before, key=desktop.key)
    await sftp.restart()
    await asyncio.wait_for(conn.wait_closed(), 10)  # the old session is gone
    assert sftp.server_port is not None and sftp.server_port != before["port"]
    assert sftp.password != before["password"]
    after = await desktop.request()
    assert after["port"] == sftp.server_port
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(after, password=before["password"])
    async with await connect(after, password=after["password"]):
        pass


# -- the seeded storage --------------------------------------------------------------------------


def exif_of(path: Path) -> tuple[dict, dict, dict]:
    with Image.open(path) as image:
        exif = image.getexif()
        return dict(exif), exif.get_ifd(ExifTags.IFD.Exif), exif.get_ifd(ExifTags.IFD.IFD1)


def exif_ms(exif_ifd: dict) -> int:
    parsed = time.strptime(exif_ifd[ExifTags.Base.DateTimeOriginal], "%Y:%m:%d %H:%M:%S")
    return int(time.mktime(parsed)) * 1000 + int(exif_ifd.get(ExifTags.Base.SubsecTimeOriginal, 0))


def test_seeded_storage_matches_its_summary(tmp_path) -> None:
    fs = tmp_path / "fs"
    summary = seed_storage(fs, photos=50, hostile=True, seed=7)

    camera = [p for v, _ in VOLUMES for p in (fs / v.lstrip("/") / "DCIM/Camera").glob("PXL_*.jpg")]
    assert len(camera) == summary.photos == 50
    sd = list((fs / SD_CARD.lstrip("/") / "DCIM/Camera").glob("*.jpg"))
    assert len(sd) == summary.sd_photos > 0
    shots = list((fs / INTERNAL.lstrip("/") / "Pictures/Screenshots").glob("Screenshot_*.png"))
    assert len(shots) == summary.screenshots > 0
    videos = [p for folder in ("DCIM/Camera", "Movies")
              for p in (fs / INTERNAL.lstrip("/") / folder).rglob("*.mp4")]
    assert len(videos) == summary.videos > 0
    assert all(p.read_bytes()[4:8] == b"ftyp" for p in videos)

    assert summary.newest == sorted(summary.dates, key=lambda p: (-summary.dates[p], p))
    assert set(summary.newest).isdisjoint(summary.hostile)
    assert set(summary.odd_names) <= set(summary.newest)
    assert len(summary.newest) == (summary.photos + summary.screenshots + summary.whatsapp
                                   + summary.videos + len(summary.odd_names))
    for phone_path in summary.newest:
        local = phone_to_local(fs, phone_path)
        mtime_ms = local.stat().st_mtime_ns // 1_000_000
        if "/Pictures/WhatsApp/" in phone_path:
            _ifd0, exif, _ifd1 = exif_of(local)
            assert exif_ms(exif) == summary.dates[phone_path] < mtime_ms  # EXIF is older: it wins
        elif phone_path.endswith(".jpg"):
            ifd0, exif, ifd1 = exif_of(local)
            assert exif_ms(exif) == summary.dates[phone_path] == mtime_ms
            assert ifd0[ExifTags.Base.Make] == "Google" and ifd0[ExifTags.Base.Model] == "Pixel 8"
            assert ifd0[ExifTags.Base.Orientation] in (1, 6)
            with Image.open(local) as image:
                assert (exif[ExifTags.Base.ExifImageWidth], exif[ExifTags.Base.ExifImageHeight]) \
                    == image.size == (1024, 768)
            data = local.read_bytes()
            start = 12 + ifd1[ExifTags.Base.JpegIFOffset]  # SOI, APP1 header, "Exif\0\0"
            embedded = data[start:start + ifd1[ExifTags.Base.JpegIFByteCount]]
            with Image.open(io.BytesIO(embedded)) as thumb:
                thumb.load()
                assert thumb.size == (320, 240)
        else:
            assert summary.dates[phone_path] == mtime_ms
            if phone_path.endswith(".png"):
                with Image.open(local) as image:
                    assert not image.getexif()
    orientations = {exif_of(p)[0][ExifTags.Base.Orientation] for p in camera}
    assert 1 in orientations

    for phone_path, what in summary.hostile.items():
        assert os.path.lexists(phone_to_local(fs, phone_path)), what
    assert os.readlink(phone_to_local(fs, f"{INTERNAL}/Pictures/Loop/again")) == ".."
    assert (fs / INTERNAL.lstrip("/") / "Documents/Work/2026/Reports/Q1 report.pdf").is_file()
    assert (fs / INTERNAL.lstrip("/") / "DCIM/.thumbnails/.nomedia").exists()


def test_seeding_is_deterministic_and_idempotent(tmp_path) -> None:
    first = seed_storage(tmp_path / "a", photos=20, seed=3)
    marker_mtime = (tmp_path / "a.seed.json").stat().st_mtime_ns
    assert seed_storage(tmp_path / "a", photos=20, seed=3) == first
    assert (tmp_path / "a.seed.json").stat().st_mtime_ns == marker_mtime  # nothing was redone
    assert seed_storage(tmp_path / "b", photos=20, seed=3).newest == first.newest
    other = seed_storage(tmp_path / "a", photos=25, seed=4)  # other parameters: a new tree
    assert other.photos == 25 and other.newest != first.newest
    gone = set(first.newest) - set(other.newest)
    assert gone and not any(phone_to_local(tmp_path / "a", p).exists() for p in gone)
