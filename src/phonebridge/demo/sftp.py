"""The phone's storage over SFTP, as the KDE Connect Android app serves it (PROTOCOL.md §8.14).

The app (SftpPlugin.kt, SimpleSftpServer.kt) answers `kdeconnect.sftp.request {"startBrowsing":
true}` by starting one SSH server on the first free port of 1739..1764, which then keeps running;
every request makes a new 28-character password (kept as its SHA-256, compared in constant time)
and is answered with `{ip, port, user, password, path, multiPaths, pathNames}`, or `{errorMessage}`
when the app lacks the storage permission. The host key is the phone's TLS key; public-key auth is
accepted for user `kdeconnect` when the key is the paired desktop certificate's. On Android 11+ the
server shows the native file system: volumes are real paths and `Android/data`, `Android/obb` are
refused.

Here the server is asyncssh, its SFTP subsystem chrooted at `phone.home / "fs"` (seeded by
demo/storage.py the first time it is needed) and bound to the local address of the phone's current
link (loopback in the demo, a namespace's address in benchmarks). The refusal of `Android/data` is
enforced by the SFTP server itself (tests run as root, where file modes refuse nothing). Tests
break it on purpose through `faults` and watch `logins`.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import secrets
import stat
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NoReturn

import asyncssh
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phonebridge.identity_store import KEY_FILE
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

from .feature import Handler, PhoneFeature
from .storage import PROTECTED_DIRS, VOLUMES, SeedSummary, seed_storage, seeded_summary

log = logging.getLogger(__name__)

PORTS = range(1739, 1765)
"""SimpleSftpServer.PORT_RANGE: the first free one is used."""
USER = "kdeconnect"
PASSWORD_LENGTH = 28
PASSWORD_ALPHABET = string.ascii_letters + string.digits
TEST_PHOTOS = 60
"""Photos of a phone created with `storage=True` (cheap for tests; the demo asks for 2,000)."""


@dataclass
class SftpFaults:
    """Failures a test asks for. Entries count per listing, bytes per open file."""

    drop_after_entries: int | None = None
    """Drop the SSH connection when a listing reaches this many entries (`.` and `..` aside).
    Names go out in batches of up to 128, so the client has received the batches before it."""
    drop_after_bytes: int | None = None
    """Drop the SSH connection once this many bytes of one file were read."""
    error_message: str | None = None
    """Answer requests with `{errorMessage}` (as the app does without its storage permission)."""
    times: int | None = None
    """How many connections the drops apply to, after which both are cleared; None: all."""


class SftpFeature(PhoneFeature):
    def __init__(self, phone) -> None:  # noqa: ANN001
        super().__init__(phone)
        self.fs_root = phone.home / "fs"
        self.faults = SftpFaults()
        self.logins: list[tuple[str, bool]] = []
        """("publickey" | "password", accepted) for every login attempt, in order."""
        self.server_port: int | None = None
        self.password: str | None = None
        """The current one-time password (None before the first request)."""
        self.summary: SeedSummary | None = None
        """The SeedSummary of the served tree, once prepared (None for an unseeded tree)."""
        self.requests = 0
        """Requests answered (with a server or an errorMessage)."""
        self._password_hash = b""
        self._host: str | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._lock = asyncio.Lock()
        self._storage_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._desktop_key: tuple[bytes, bytes] | None = None  # (certificate DER, SSH key blob)

    def handlers(self) -> dict[str, Handler]:
        return {types.SFTP_REQUEST: self._on_request}

    async def on_paired(self) -> None:
        if type(self.phone.storage) is int:  # a size was asked for (the demo): prepare it now
            self._storage()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._storage_task is not None:
            await asyncio.gather(self._storage_task, return_exceptions=True)
        async with self._lock:
            await self._stop_server()

    async def restart(self) -> None:
        """Stop the server (dropping its sessions) and start it on another port, new password."""
        async with self._lock:
            old_port = self.server_port
            host = self._host or self._link_host()
            await self._stop_server()
            await self._start_server(host, avoid=old_port)
            self._new_password()

    @property
    def volumes(self) -> list[tuple[str, str]]:
        """(path, description) of the volumes present, as StorageManager lists them."""
        return [(path, name) for path, name in VOLUMES
                if (self.fs_root / path.lstrip("/")).is_dir()]

    # -- the request ------------------------------------------------------------------------------

    async def _on_request(self, packet: Packet) -> None:
        if packet.body.get("startBrowsing") is not True:
            return  # the app ignores anything else
        # Answer from a task: preparing the storage may take a moment and the link keeps reading.
        task = asyncio.get_running_loop().create_task(self._answer())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self) -> None:
        async with self._lock:
            if self.faults.error_message is not None:
                self.requests += 1
                error = {"errorMessage": self.faults.error_message}
                await self.phone.send(Packet(types.SFTP, error))
                return
            try:
                await asyncio.shield(self._storage())
            except OSError as exc:
                log.warning("demo phone: storage not ready: %s", exc)
                await self.phone.send(Packet(types.SFTP, {"errorMessage": f"No storage: {exc}"}))
                return
            host = self._link_host()
            if self._acceptor is not None and host != self._host:
                await self._stop_server()  # the phone moved to another network
            if self._acceptor is None:
                try:
                    await self._start_server(host)
                except OSError as exc:
                    log.warning("demo phone: no SFTP server: %s", exc)
                    return  # the app does not answer either
            self._new_password()
            volumes = self.volumes
            paths = [path for path, _name in volumes]
            body = {
                "ip": host,
                "port": self.server_port,
                "user": USER,
                "password": self.password,
                "path": paths[0] if len(paths) == 1 else VOLUMES[0][0],
            }
            if paths:
                body["multiPaths"] = paths
                body["pathNames"] = [name for _path, name in volumes]
            self.requests += 1
            await self.phone.send(Packet(types.SFTP, body))

    def _link_host(self) -> str:
        link = self.phone.link
        return (link.local_host if link is not None else None) or "127.0.0.1"

    def _new_password(self) -> None:
        self.password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        self._password_hash = hashlib.sha256(self.password.encode()).digest()

    # -- storage ----------------------------------------------------------------------------------

    def _storage(self) -> asyncio.Task:
        """Seed the tree in a worker thread, once; a tree seeded before (by a test) is kept."""
        if self._storage_task is None:
            self._storage_task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(self._make_storage))
        return self._storage_task

    def _make_storage(self) -> None:
        summary = seeded_summary(self.fs_root)
        storage = self.phone.storage
        if summary is None and storage is not False:
            summary = seed_storage(self.fs_root, photos=TEST_PHOTOS if storage is True else storage)
        elif summary is None:
            for path, _name in VOLUMES:
                (self.fs_root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.summary = summary

    # -- the server -------------------------------------------------------------------------------

    async def _start_server(self, host: str, avoid: int | None = None) -> None:
        host_key = asyncssh.import_private_key((self.phone.home / KEY_FILE).read_bytes())
        for port in PORTS:
            if port == avoid:
                continue
            try:
                self._acceptor = await asyncssh.listen(
                    host, port,
                    server_host_keys=[host_key],
                    server_factory=lambda: _SshServer(self),
                    sftp_factory=lambda chan: _PhoneSftpServer(chan, self),
                    allow_scp=False,
                    agent_forwarding=False,
                    x11_forwarding=False,
                    allow_pty=False,
                )
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                continue
            self._host, self.server_port = host, port
            log.info("demo phone: SFTP on %s:%d", host, port)
            return
        raise OSError(errno.EADDRINUSE, f"no free port in {PORTS.start}-{PORTS.stop - 1}")

    async def _stop_server(self) -> None:
        for conn in list(self._connections):
            conn.abort()  # as a server going away: no goodbye
        for conn in list(self._connections):
            await conn.wait_closed()
        self._connections.clear()
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        self._acceptor = None
        self.server_port = None

    # -- authentication, as SimpleSftpServer's authenticators -------------------------------------

    def is_desktop_key(self, key: asyncssh.SSHKey) -> bool:
        """Is `key` the public key of the paired desktop's certificate?"""
        link = self.phone.link
        if link is None or not self.phone.is_paired:
            return False
        if self._desktop_key is None or self._desktop_key[0] != link.certificate:
            public = x509.load_der_x509_certificate(link.certificate).public_key()
            openssh = public.public_bytes(serialization.Encoding.OpenSSH,
                                          serialization.PublicFormat.OpenSSH)
            self._desktop_key = (link.certificate, asyncssh.import_public_key(openssh).public_data)
        return hmac.compare_digest(key.public_data, self._desktop_key[1])

    def password_matches(self, password: str) -> bool:
        digest = hashlib.sha256(password.encode("utf-8", "replace")).digest()
        return bool(self._password_hash) and hmac.compare_digest(digest, self._password_hash)

    def dropped(self) -> None:
        """A fault dropped a connection: count it against `faults.times`."""
        if self.faults.times is not None:
            self.faults.times -= 1
            if self.faults.times <= 0:
                self.faults.drop_after_entries = self.faults.drop_after_bytes = None
                self.faults.times = None


class _SshServer(asyncssh.SSHServer):
    """One SSH connection: user `kdeconnect`, the desktop's key or the current password."""

    def __init__(self, feature: SftpFeature) -> None:
        self._feature = feature
        self._conn: asyncssh.SSHServerConnection | None = None
        self._by_password = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._feature._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._feature._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Called for the client's query and again for its signed request: a success is logged once,
        # in auth_completed.
        accepted = username == USER and self._feature.is_desktop_key(key)
        if not accepted:
            self._feature.logins.append(("publickey", False))
        return accepted

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        accepted = username == USER and self._feature.password_matches(password)
        self._feature.logins.append(("password", accepted))
        self._by_password = accepted
        return accepted

    def auth_completed(self) -> None:
        if not self._by_password:
            self._feature.logins.append(("publickey", True))


class _PhoneSftpServer(asyncssh.SFTPServer):
    """The storage as Android 11+ shows it: chrooted at fs_root, Android/data and obb refused."""

    def __init__(self, chan: asyncssh.SSHServerChannel, feature: SftpFeature) -> None:
        super().__init__(chan, chroot=os.fsencode(feature.fs_root))
        self._feature = feature
        self._root = os.fsencode(os.path.realpath(feature.fs_root))
        self._protected = [os.fsencode(f"{volume}/{folder}")
                           for volume, _name in VOLUMES for folder in PROTECTED_DIRS]
        self._bytes_read: dict[int, int] = {}
        self._dropped = False

    # Android has no user database: owners show as numbers (and a 10,000-file listing does not
    # pay two passwd/group lookups per entry, as asyncssh's default "ls -l" long name would).
    def format_user(self, uid: int | None) -> str:
        return "" if uid is None else str(uid)

    def format_group(self, gid: int | None) -> str:
        return "" if gid is None else str(gid)

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        real = os.path.realpath(local)
        if real != self._root and not real.startswith(self._root + b"/"):
            raise asyncssh.SFTPPermissionDenied("Permission denied")  # a link out of the storage
        inside = real[len(self._root):] or b"/"
        for protected in self._protected:
            if inside == protected or inside.startswith(protected + b"/"):
                raise asyncssh.SFTPPermissionDenied("Permission denied")
        return local

    def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:  # type: ignore[override]
        # Not a coroutine function, so a refused or missing folder fails OPENDIR (as on Android)
        # instead of the first READDIR.
        local = self.map_path(path)
        if not stat.S_ISDIR(os.stat(local).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
        return self._counted(super().scandir(path))

    async def _counted(
        self, names: AsyncIterator[asyncssh.SFTPName],
    ) -> AsyncIterator[asyncssh.SFTPName]:
        sent = 0
        async for name in names:
            if name.filename not in (b".", b".."):
                limit = self._feature.faults.drop_after_entries
                if limit is not None and sent >= limit:
                    self._drop(f"after {sent} entries")
                sent += 1
            yield name

    def read(self, file_obj: object, offset: int, size: int) -> bytes:  # type: ignore[override]
        limit = self._feature.faults.drop_after_bytes
        done = self._bytes_read.get(id(file_obj), 0)
        if limit is not None:
            if done >= limit:
                self._drop(f"after {done} bytes")
            size = min(size, limit - done)
        data = super().read(file_obj, offset, size)
        self._bytes_read[id(file_obj)] = done + len(data)
        return data

    def close(self, file_obj: object) -> None:  # type: ignore[override]
        self._bytes_read.pop(id(file_obj), None)
        super().close(file_obj)

    def _drop(self, when: str) -> NoReturn:
        if not self._dropped:  # requests already under way count once
            self._dropped = True
            log.info("demo phone: dropping the SFTP connection %s (test fault)", when)
            self._feature.dropped()
            self.connection.abort()
        raise asyncssh.SFTPConnectionLost("connection dropped")
