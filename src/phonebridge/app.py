"""Composition root: builds the store, bus, device manager, LAN transport, API and demo phone.

`Daemon.run()` starts them in dependency order and stops them in reverse; nothing else in the code
base constructs concrete adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import time
from typing import Any

from phonebridge import __version__
from phonebridge.config import Settings, ensure_home
from phonebridge.core.device_manager import DeviceManager
from phonebridge.core.services import Services
from phonebridge.core.transfers import TransferManager
from phonebridge.desktop.base import Desktop
from phonebridge.errors import DeviceError, StartupError
from phonebridge.events import Event, EventBus
from phonebridge.gallery import Gallery, ThumbnailCache
from phonebridge.identity_store import load_or_create_identity
from phonebridge.plugins import ALL_PLUGINS, capabilities
from phonebridge.protocol.constants import PROTOCOL_VERSION
from phonebridge.protocol.identity import Identity
from phonebridge.state_lock import StateLock
from phonebridge.store.database import Database
from phonebridge.store.calls import CallRepository
from phonebridge.store.devices import DeviceRepository
from phonebridge.store.transfers import TransferRepository
from phonebridge.store.notifications import NotificationRepository
from phonebridge.store.search import SearchRepository
from phonebridge.store.messages import MessageRepository
from phonebridge.store.contacts import ContactRepository
from phonebridge.store.photos import PhotoRepository
from phonebridge.transports.lan.provider import LanLinkProvider, PortInUseError

log = logging.getLogger(__name__)


def read_or_create_token(settings: Settings) -> str:
    path = settings.token_file
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def bind_api_socket(port: int) -> socket.socket:
    """The API listens on 127.0.0.1 only; a taken port ends start-up with what to do."""
    # proto=IPPROTO_TCP: asyncio turns Nagle off only on sockets that say they are TCP. With Nagle
    # on, a response written as headers then body waited for the client's delayed ACK: 40 ms each.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if os.name != "nt":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"API port {port} on 127.0.0.1 is in use ({exc.strerror}): another PhoneBridge daemon"
            " may be running (try `phonebridge status`), or pass --api-port N"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Daemon:
    def __init__(self, settings: Settings, desktop: Desktop | None = None) -> None:
        self.settings = settings
        if desktop is None:
            from phonebridge.desktop.native import NativeDesktop

            desktop = NativeDesktop()
        self.desktop = desktop
        self.bus = EventBus()
        self.started_at = time.time()
        self.api_port: int | None = None
        self.token = ""
        self.manager: DeviceManager | None = None
        self.provider: LanLinkProvider | None = None
        self.demo_phone: Any = None
        self.gallery: Any = None
        """gallery.Gallery once started (the API's photo routes use it)."""
        self._db: Database | None = None
        self._api_server: Any = None
        self._api_task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._lock: StateLock | None = None

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        thumbnail_cache_bytes = settings.thumbnail_cache_bytes  # a bad setting fails before anything
        ensure_home(settings)
        self._lock = StateLock(settings.home)
        self._lock.acquire()
        local = load_or_create_identity(settings.home)
        incoming, outgoing = capabilities(ALL_PLUGINS)
        self.identity = Identity(
            device_id=local.device_id,
            name=settings.device_name,
            device_type=settings.device_type,
            protocol_version=PROTOCOL_VERSION,
            incoming=incoming,
            outgoing=outgoing,
        )
        self.token = read_or_create_token(settings)
        api_socket = bind_api_socket(settings.api_port)
        self.api_port = api_socket.getsockname()[1]

        self._db = Database(settings.database_file)
        try:
            await self._db.open()
        except Exception as exc:
            raise StartupError(f"cannot open {settings.database_file}: {exc}") from None
        self.services = Services(home=settings.home)
        self.services.notifications = NotificationRepository(self._db)
        self.services.calls = CallRepository(self._db)
        self.services.messages = MessageRepository(self._db)
        self.services.contacts = ContactRepository(self._db)
        self.search = SearchRepository(self._db)
        self.transfers = TransferManager(self.bus, TransferRepository(self._db))
        await self.transfers.start()
        self.services.transfers = self.transfers
        self.services.download_dir = settings.downloads
        self.services.key_pem = local.key_pem
        self.services.cache_dir = settings.home / "cache"
        self.services.photos = PhotoRepository(self._db)
        self.manager = DeviceManager(
            identity=self.identity,
            certificate=local.cert_der,
            plugins=ALL_PLUGINS,
            repository=DeviceRepository(self._db),
            bus=self.bus,
            desktop=self.desktop,
            services=self.services,
        )
        await self.manager.start()
        self.gallery = Gallery(self.manager, self.services.photos,
                               ThumbnailCache(self.services.cache_dir / "thumbnails",
                                              thumbnail_cache_bytes))
        self.provider = LanLinkProvider(
            identity=lambda: self.identity,
            cert_pem=local.cert_pem,
            key_pem=local.key_pem,
            identity_files=local.files,
            on_link=self.manager.on_link,
            is_linked=self.manager.is_linked,
            known_identity=self.manager.known_identity,
            bind_addresses=settings.bind,
            discovery_addresses=settings.discovery_address,
            discovery=settings.discovery,
            mdns=settings.mdns,
            tcp_ports=(settings.tcp_port_min, settings.tcp_port_max),
            udp_port=settings.udp_port,
        )
        try:
            await self.provider.start()
        except PortInUseError as exc:
            raise StartupError(str(exc)) from None
        self.manager.dial = self.provider.connect
        self.manager.announce_to = self.provider.announce_to
        self.manager.start_reconnects()

        from phonebridge.api.server import create_api_server

        self._api_server = create_api_server(self, api_socket)
        self._api_task = asyncio.get_running_loop().create_task(self._api_server.serve(sockets=[api_socket]))
        while not self._api_server.started:
            if self._api_task.done():
                raise StartupError(f"API server failed: {self._api_task.exception()}")
            await asyncio.sleep(0.01)
        self._write_daemon_file()
        log.info("PhoneBridge %s as %s (%r); API http://127.0.0.1:%d/", __version__,
                 self.identity.device_id, self.identity.name, self.api_port)
        if settings.demo:
            await self.start_demo_phone()

    async def start_demo_phone(self) -> None:
        """Run the simulated phone on loopback and pair with it as a user would."""
        from phonebridge.demo.phone import DemoPhone

        assert self.provider is not None and self.manager is not None
        self.demo_phone = DemoPhone(self.settings.home / "demo-phone", storage=2000)
        from phonebridge.demo.notifications import NotificationsFeature

        self.demo_phone.feature(NotificationsFeature).timeline = True  # posts and rings over time
        from phonebridge.demo.sms import FULL, SmsFeature

        self.demo_phone.feature(SmsFeature).use_history(FULL)  # the full seeded texts history
        await self.demo_phone.start("127.0.0.1", self.provider.tcp_port, self.identity)
        for _ in range(200):
            if self.manager.is_linked(self.demo_phone.device_id):
                break
            await asyncio.sleep(0.01)
        device = self.manager.devices.get(self.demo_phone.device_id)
        if device is not None and not device.is_paired:
            await self.manager.pair(device.id)

    async def stop(self) -> None:
        if self.demo_phone is not None:
            await self.demo_phone.stop()
        if self._api_server is not None:
            self._api_server.should_exit = True
            if self._api_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._api_task, 5)
        if self.provider is not None:
            await self.provider.stop()
        if self.gallery is not None:
            await self.gallery.close()
        if self.manager is not None:
            await self.manager.stop()
        if getattr(self, "transfers", None) is not None:
            await self.transfers.stop()
        if self._db is not None:
            await self._db.close()
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.settings.daemon_file.read_text())
            if data.get("pid") == os.getpid():
                self.settings.daemon_file.unlink()
        if self._lock is not None:
            self._lock.release()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM or `request_stop()`, then stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()

    def _write_daemon_file(self) -> None:
        data = {"pid": os.getpid(), "api_port": self.api_port, "device_id": self.identity.device_id}
        tmp = self.settings.daemon_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.settings.daemon_file)

    # -- what the API asks of the core -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        assert self.manager is not None and self.provider is not None
        devices = list(self.manager.devices.values())
        return {
            "id": self.identity.device_id,
            "name": self.identity.name,
            "type": self.identity.device_type,
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started_at, 1),
            "api_port": self.api_port,
            "tcp_port": self.provider.tcp_port,
            "home": str(self.settings.home),
            "bind": self.settings.bind,
            "discovery": self.settings.discovery,
            "discovery_addresses": self.provider.discovery_addresses if self.settings.discovery else [],
            "mdns": self.settings.mdns and self.settings.discovery,
            "demo": self.settings.demo,
            "devices": len(devices),
            "paired_devices": sum(d.is_paired for d in devices),
            "reachable_devices": sum(d.is_reachable for d in devices),
        }

    def devices(self) -> list[dict[str, Any]]:
        assert self.manager is not None
        return [d.to_json() for d in self.manager.devices.values()]

    async def connect(self, host: str, port: int) -> dict[str, Any]:
        assert self.provider is not None
        try:
            link = await self.provider.connect(host, port)
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise DeviceError(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - protocol errors from a foreign peer
            raise DeviceError(f"{host}:{port} is not a usable KDE Connect device: {exc}") from None
        assert self.manager is not None
        device = self.manager.devices.get(link.identity.device_id)
        if device is None or device.link is not link:
            reason = device.refused_reason if device else "refused"
            raise DeviceError(f"link to {host}:{port} refused: {reason}")
        return device.to_json()

    def refresh(self) -> None:
        assert self.provider is not None
        self.provider.announce()
        self.bus.publish(Event("discovery.refreshed"))
