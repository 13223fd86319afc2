"""The phone's storage over SFTP (PROTOCOL.md §8.14): ask, log in, hand out PhoneFiles.

The phone runs an SFTP server (Apache MINA on Android) that it starts when asked with
`kdeconnect.sftp.request {"startBrowsing": true}`; it answers `kdeconnect.sftp` with a port, the
user `kdeconnect`, a one-time password and its storage roots, or with `errorMessage`.

How we log in, and why:
- We dial the link's peer address, never the `ip` field (KDE does the same; a phone may report an
  address we cannot reach, and a hostile one could point us anywhere).
- The phone's host key is its own TLS key, so the host key must equal the public key of the
  certificate we pinned at pairing: another key is refused before any secret is sent.
- We authenticate with our TLS private key (the phone accepts the key of the paired desktop's
  certificate) and fall back to the one-time password.
- One connection per device, shared by every caller; concurrent callers share one attempt. A lost
  session is replaced by asking again (the phone may have restarted on another port with a new
  password): PhoneFiles does that itself through `SftpPlugin._open_session`.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass
from typing import Any

import asyncssh

from phonebridge.core.phonefiles import PhoneFiles, SftpSession, StorageRoot
from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.core.transfers import TransferManager
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.certs import public_key_der
from phonebridge.protocol.packet import Packet, body_int

ANSWER_TIMEOUT = 15.0
"""Seconds the phone gets to answer `sftp.request` (it may have to start its server first)."""
CONNECT_TIMEOUT = 15.0
"""Seconds for TCP, SSH handshake and login together."""
KEEPALIVE_INTERVAL = 15.0
"""A phone that vanished without closing TCP is noticed after about three of these."""
MAX_ROOTS = 32
MAX_TEXT = 1000
"""Longest user, password, path, name or error message we keep from the phone's answer."""
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""AES-GCM runs in hardware on both ends (MINA supports it); the rest of asyncssh's list follows."""
DEFAULT_USER = "kdeconnect"


# -- the answer (pure, tested with hypothesis) ----------------------------------------------------


@dataclass(frozen=True)
class SftpOffer:
    """The phone's server is ready: where and how to log in, and what it exposes."""

    port: int
    user: str
    password: str | None
    roots: tuple[StorageRoot, ...]


@dataclass(frozen=True)
class SftpRefusal:
    """The phone cannot or will not serve its files; `reason` is shown to the user as it is."""

    reason: str


def _text(value: Any) -> str | None:
    """A usable string from the body: non-empty, no NUL, not absurdly long."""
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_TEXT:
        return None
    return value


def _root_path(value: Any) -> str | None:
    text = _text(value)
    if text is None or not text.startswith("/"):
        return None
    return posixpath.normpath(text).replace("//", "/")


def _root_name(path: str) -> str:
    return posixpath.basename(path) or "Phone"


def parse_sftp_offer(body: dict[str, Any]) -> SftpOffer | SftpRefusal:
    """What a `kdeconnect.sftp` body offers (never raises).

    `errorMessage` wins and is kept verbatim. Otherwise a port (a number or decimal text,
    1..65535) is required; `user` defaults to "kdeconnect", `password` may be absent (key login).
    Roots come from `multiPaths` (absolute paths, duplicates dropped) named by `pathNames` when that
    list has the same length (else by the folder's name, as KDE does), or from `path`, or "/".
    """
    if not isinstance(body, dict):
        return SftpRefusal("the phone's SFTP answer is not an object")
    error = body.get("errorMessage")
    if isinstance(error, str) and error.strip():
        return SftpRefusal(error[:MAX_TEXT])
    if error is not None and not isinstance(error, str):
        return SftpRefusal("the phone refused to share its files")
    port = body_int(body.get("port"))
    if port is None:
        return SftpRefusal("the phone's SFTP answer has no port")
    if not 1 <= port <= 65535:
        return SftpRefusal(f"the phone's SFTP answer has an invalid port ({port})")
    user = _text(body.get("user")) or DEFAULT_USER
    password = _text(body.get("password"))
    roots: list[StorageRoot] = []
    paths = body.get("multiPaths")
    names = body.get("pathNames")
    if isinstance(paths, list):
        named = isinstance(names, list) and len(names) == len(paths)
        seen: set[str] = set()
        for index, raw in enumerate(paths[:MAX_ROOTS]):
            path = _root_path(raw)
            if path is None or path in seen:
                continue
            seen.add(path)
            name = _text(names[index]) if named else None
            roots.append(StorageRoot(path, (name or _root_name(path)).strip() or _root_name(path)))
    if not roots:
        path = _root_path(body.get("path"))
        if path is not None:
            roots.append(StorageRoot(path, _root_name(path)))
    if not roots:
        roots.append(StorageRoot("/", "Phone"))
    return SftpOffer(port=port, user=user, password=password, roots=tuple(roots))


# -- the plugin ----------------------------------------------------------------------------------


class _Client(asyncssh.SSHClient):
    """Notes when the SSH connection ends, so a dead session is replaced before it is used."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


class SftpPlugin(Plugin):
    info = PluginInfo(
        name="sftp",
        incoming=frozenset({types.SFTP}),
        outgoing=frozenset({types.SFTP_REQUEST}),
        description="Browse the phone's storage, pull its photos and files, push files to it",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        if ctx.services.transfers is None:  # a manager without the daemon's wiring (tests)
            ctx.services.transfers = TransferManager(ctx.bus)
        self._answer: asyncio.Future[SftpOffer | SftpRefusal] | None = None
        self._asking: asyncio.Task | None = None
        self._files: PhoneFiles | None = None
        self._closed = False

    async def files(self) -> PhoneFiles:
        """The phone's files, connected (one session per device, shared by every caller).

        Raises DeviceError with the reason: the phone's own errorMessage, "no answer from the
        phone", "login refused", "cannot connect to the phone's SFTP server at HOST:PORT".
        """
        if self._closed:
            raise DeviceError(f"{self.ctx.device_name()} is not reachable")
        if self._files is None:
            self._files = PhoneFiles(
                self._open_session, transfers=self.ctx.services.transfers,
                device_id=self.ctx.device_id, device_name=self.ctx.device_name,
            )
        await self._files.connect()
        return self._files

    def close(self) -> None:
        """The link went away: end the SSH session and whatever it was doing."""
        self._closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        if self._asking is not None:
            self._asking.cancel()
        if self._files is not None:
            self._files.close("the link to the device dropped")

    async def handle(self, packet: Packet) -> None:
        offer = parse_sftp_offer(packet.body)
        if self._answer is None or self._answer.done():
            self.log.info("%s: SFTP answer nobody asked for; ignored", self.ctx.device_id)
            return
        self._answer.set_result(offer)

    # -- one session ---------------------------------------------------------------------------

    async def _ask(self) -> SftpOffer:
        """Send sftp.request and wait for the answer (one question at a time)."""
        if self._asking is None or self._asking.done():
            self._asking = asyncio.get_running_loop().create_task(self._ask_once())
        try:
            return await asyncio.shield(self._asking)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                raise DeviceError(f"{self.ctx.device_name()} is not reachable") from None
            raise

    async def _ask_once(self) -> SftpOffer:
        self._answer = asyncio.get_running_loop().create_future()
        sent = await self.ctx.send(Packet(types.SFTP_REQUEST, {"startBrowsing": True}))
        if not sent:
            raise DeviceError(f"{self.ctx.device_name()} does not share its files (SFTP)")
        try:
            answer = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT)
        except TimeoutError:
            raise DeviceError("no answer from the phone") from None
        except asyncio.CancelledError:
            if self._closed:
                raise DeviceError(f"{self.ctx.device_name()} is not reachable") from None
            raise
        if isinstance(answer, SftpRefusal):
            raise DeviceError(answer.reason)
        return answer

    async def _open_session(self) -> SftpSession:
        """Ask the phone, then log in to its server; a fresh port and password every time."""
        if self._closed:
            raise DeviceError(f"{self.ctx.device_name()} is not reachable")
        link = self.ctx.link()
        host = _peer_host(link)
        if link is None or host is None:
            raise DeviceError(f"{self.ctx.device_name()} is not reachable")
        offer = await self._ask()
        where = f"{host}:{offer.port}"
        known_hosts: Any = None
        try:
            phone_key = asyncssh.import_public_key(public_key_der(link.certificate))
            known_hosts = ([phone_key], [], [])
        except (ValueError, asyncssh.KeyImportError) as exc:
            # Not a key type SSH knows: we cannot compare, and the phone cannot use it either.
            self.log.warning("%s: cannot compare the SFTP host key with the certificate: %s",
                             self.ctx.device_id, exc)
        client_keys = []
        if self.ctx.services.key_pem:
            try:
                client_keys = [asyncssh.import_private_key(self.ctx.services.key_pem)]
            except (ValueError, asyncssh.KeyImportError) as exc:
                self.log.warning("SFTP: our TLS key cannot be used for SSH (%s); password only",
                                 exc)
        client = _Client()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                conn, _ = await asyncssh.create_connection(
                    lambda: client, host, offer.port,
                    username=offer.user,
                    client_keys=client_keys,
                    password=offer.password,
                    known_hosts=known_hosts,
                    config=None,
                    agent_path=None,
                    agent_forwarding=False,
                    gss_auth=False,
                    kbdint_auth=False,
                    host_based_auth=False,
                    client_host_keys=None,
                    encryption_algs=_ciphers(),
                    compression_algs=None,
                    keepalive_interval=KEEPALIVE_INTERVAL,
                    keepalive_count_max=3,
                )
        except asyncssh.PermissionDenied:
            raise DeviceError("login refused") from None
        except asyncssh.HostKeyNotVerifiable:
            raise DeviceError(f"the SFTP server at {where} is not the paired phone (its key"
                              " differs from the phone's certificate)") from None
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            self.log.info("%s: SFTP connect to %s failed: %s", self.ctx.device_id, where, exc)
            raise DeviceError(f"cannot connect to the phone's SFTP server at {where}") from None
        if self._closed:
            conn.close()
            raise DeviceError(f"{self.ctx.device_name()} is not reachable")
        try:
            sftp = await conn.start_sftp_client(path_errors="replace")
        except (OSError, asyncssh.Error) as exc:
            conn.close()
            self.log.info("%s: SFTP subsystem at %s failed: %s", self.ctx.device_id, where, exc)
            raise DeviceError(f"cannot connect to the phone's SFTP server at {where}") from None
        self.log.info("%s: SFTP session to %s as %s", self.ctx.device_id, where, offer.user)
        return SftpSession(conn, sftp, list(offer.roots), client.lost)


def _peer_host(link: Any) -> str | None:
    """The address the link came from (`address` is only set when the peer announced a port)."""
    host = getattr(link, "peer_host", None)
    if host is None and getattr(link, "address", None):
        host = link.address[0]
    return host


def _ciphers() -> list[str]:
    defaults = [alg.decode() for alg in asyncssh.encryption.get_default_encryption_algs()]
    preferred = [alg for alg in PREFERRED_CIPHERS if alg in defaults]
    return preferred + [alg for alg in defaults if alg not in preferred]
