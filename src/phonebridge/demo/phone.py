"""DemoPhone: behaves on the wire like the KDE Connect Android app (PROTOCOL.md §2, §8).

It has its own certificate and state folder, uses the same LAN transport as the daemon, dials the
daemon over loopback (never broadcasting) and accepts pairing at once as a user tapping "Accept"
would. What it does as a phone lives in feature modules (demo/feature.py, one per feature, listed
in FEATURES): battery, connectivity, ping and find-my-phone are in demo/basics.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from phonebridge.identity_store import load_or_create_identity
from phonebridge.protocol import types
from phonebridge.protocol.constants import PROTOCOL_VERSION
from phonebridge.protocol.framing import BadLine
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet
from phonebridge.protocol.pairing import PairingSession, PairState, SendPacket
from phonebridge.transports.lan.link import LanLink
from phonebridge.transports.lan.provider import LanLinkProvider

from .basics import BasicsFeature
from .clipboard import ClipboardFeature
from .feature import PhoneFeature
from .notifications import NotificationsFeature
from .sftp import SftpFeature
from .share import ShareFeature
from .sms import SmsFeature

log = logging.getLogger(__name__)

# The Android app's capability lists (KDE Connect Android 1.33, PROTOCOL.md §8.1).
ANDROID_INCOMING = frozenset({
    types.BATTERY, types.CLIPBOARD, types.CLIPBOARD_CONNECT, types.FINDMYPHONE_REQUEST,
    types.MOUSEPAD_KEYBOARDSTATE, types.MOUSEPAD_REQUEST, types.MPRIS, types.MPRIS_REQUEST,
    types.NOTIFICATION, types.NOTIFICATION_ACTION, types.NOTIFICATION_REPLY,
    types.NOTIFICATION_REQUEST, types.PING, types.RUNCOMMAND, types.RUNCOMMAND_OUTPUT,
    types.SFTP_REQUEST, types.SHARE_REQUEST, types.SHARE_REQUEST_UPDATE, types.SMS_REQUEST,
    types.SMS_REQUEST_ATTACHMENT, types.SMS_REQUEST_CONVERSATION, types.SMS_REQUEST_CONVERSATIONS,
    types.SYSTEMVOLUME, types.TELEPHONY_REQUEST_MUTE, types.CONTACTS_REQUEST_ALL_UIDS_TIMESTAMPS,
    types.CONTACTS_REQUEST_VCARDS_BY_UID,
})
ANDROID_OUTGOING = frozenset({
    types.BATTERY, types.CLIPBOARD, types.CLIPBOARD_CONNECT, types.CONNECTIVITY_REPORT,
    types.CONTACTS_RESPONSE_UIDS_TIMESTAMPS, types.CONTACTS_RESPONSE_VCARDS,
    types.FINDMYPHONE_REQUEST, types.MOUSEPAD_ECHO, types.MOUSEPAD_KEYBOARDSTATE,
    types.MOUSEPAD_REQUEST, types.MPRIS, types.MPRIS_REQUEST, types.NOTIFICATION,
    types.NOTIFICATION_REQUEST, types.PING, types.PRESENTER, types.RUNCOMMAND_REQUEST, types.SFTP,
    types.SHARE_REQUEST, types.SMS_ATTACHMENT_FILE, types.SMS_MESSAGES, types.SYSTEMVOLUME_REQUEST,
    types.TELEPHONY,
})

FEATURES: tuple[type[PhoneFeature], ...] = (BasicsFeature, ClipboardFeature, NotificationsFeature,
                                             ShareFeature,
                                             SftpFeature,
                                             SmsFeature)
"""The phone's features, one module each."""

DEMO_NAME = "Demo Pixel"
TRUST_FILE = "trusted.json"


class DemoPhone:
    """One simulated phone. `received` keeps every packet the desktop sent it, for tests."""

    def __init__(self, home: Path, *, name: str = DEMO_NAME, battery: int = 76,
                 features: tuple[type[PhoneFeature], ...] = FEATURES,
                 storage: bool | int = True) -> None:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.home = home
        self.storage = storage
        """What `home/fs` is seeded with if it was not before (demo/sftp.py): True = a few photos,
        N = N photos (prepared as soon as the phone is paired), False = empty volumes."""
        self._local = load_or_create_identity(home)
        self.identity = Identity(
            device_id=self._local.device_id,
            name=name,
            device_type="phone",
            protocol_version=PROTOCOL_VERSION,
            incoming=ANDROID_INCOMING,
            outgoing=ANDROID_OUTGOING,
        )
        self.received: list[Packet] = []
        self.link: LanLink | None = None
        self.session: PairingSession | None = None
        self._trusted: dict[str, str] = self._load_trust()
        self._provider = LanLinkProvider(
            identity=lambda: self.identity,
            cert_pem=self._local.cert_pem,
            key_pem=self._local.key_pem,
            identity_files=self._local.files,
            on_link=self._on_link,
            is_linked=lambda _id: self.link is not None,
            known_identity=lambda _id: None,
            bind_addresses=["127.0.0.1"],
            discovery=False,
            mdns=False,
        )
        self._tasks: set[asyncio.Task] = set()
        self.changed = asyncio.Event()
        self.features = [feature(self) for feature in features]
        self.handlers = {}
        for feature in self.features:
            self.handlers.update(feature.handlers())
        self.handlers[types.PAIR] = self._on_pair
        self.basics = self.feature(BasicsFeature)
        self.basics.battery = battery

    def feature(self, cls: type[PhoneFeature]):  # noqa: ANN201 - returns an instance of cls
        return next(f for f in self.features if isinstance(f, cls))

    @property
    def battery(self) -> int:
        return self.basics.battery

    @property
    def ringing(self) -> bool:
        return self.basics.ringing

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def is_paired(self) -> bool:
        return self.session is not None and self.session.is_paired

    async def start(self, desktop_host: str, desktop_port: int, desktop: Identity | None = None) -> None:
        """Listen like the app does, then dial the desktop (over loopback in the demo).

        The app dials after hearing the desktop's UDP identity, so it knows the desktop's version
        and id (`desktop`); without it the phone dials like `connect HOST` does.
        """
        await self._provider.start()
        await self._provider.connect(desktop_host, desktop_port, desktop)

    async def stop(self) -> None:
        for feature in self.features:
            await feature.close()
        if self.link is not None:
            await self.link.close("phone stopping")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._provider.stop()

    # -- link -------------------------------------------------------------------------------

    async def _on_link(self, link: LanLink) -> None:
        desktop = link.identity.device_id
        pinned = self._trusted.get(desktop)
        paired = pinned is not None and pinned == link.certificate.hex()
        self.link = link
        self.session = PairingSession(link.identity.protocol_version, paired=paired)
        task = asyncio.get_running_loop().create_task(self._read(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if paired:
            await self._on_paired()

    async def _read(self, link: LanLink) -> None:
        async for item in link.packets():
            if isinstance(item, BadLine):
                continue
            self.received.append(item)
            handler = self.handlers.get(item.type)
            if handler is not None and (item.type == types.PAIR or self.is_paired):
                await handler(item)
            self.changed.set()
        if self.link is link:
            self.link = None

    async def send(self, packet: Packet) -> bool:
        """Send as Android does: only types the desktop lists as incoming (§8.0)."""
        if self.link is None:
            return False
        incoming = self.link.identity.incoming
        if packet.type not in (types.PAIR,) and incoming and packet.type not in incoming:
            return False
        await self.link.send(packet)
        return True

    # -- handlers ------------------------------------------------------------------------------

    async def _on_pair(self, packet: Packet) -> None:
        assert self.session is not None
        actions = self.session.receive(packet, time.time())
        if self.session.state is PairState.INCOMING:
            actions += self.session.accept(time.time())  # the demo user taps "Accept" at once
        for action in actions:
            if isinstance(action, SendPacket):
                await self.send(action.packet)
        if self.session.is_paired:
            assert self.link is not None
            self._trusted[self.link.identity.device_id] = self.link.certificate.hex()
            self._save_trust()
            await self._on_paired()
        elif self.link is not None:
            self._trusted.pop(self.link.identity.device_id, None)
            self._save_trust()

    async def _on_paired(self) -> None:
        for feature in self.features:
            await feature.on_paired()

    async def send_battery(self, charge: int | None = None, charging: bool | None = None) -> None:
        await self.basics.send_battery(charge, charging)

    async def ping(self, message: str | None = None) -> None:
        await self.basics.ping(message)

    # -- trust -------------------------------------------------------------------------------

    def _load_trust(self) -> dict[str, Any]:
        try:
            return json.loads((self.home / TRUST_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _save_trust(self) -> None:
        (self.home / TRUST_FILE).write_text(json.dumps(self._trusted))
