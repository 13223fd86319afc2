"""The phone's contacts (PROTOCOL.md §8.9), so threads show names and photos instead of numbers.

Incremental, as KDE's desktop does: on link we ask for every uid with its last-modified
timestamp (a number in current Android, a string in older versions: both accepted), then ask for
the vCards of the uids that are new or changed only, in batches; uids the phone no longer lists are
forgotten. vCards are parsed here (2.1 and 3.0: folded lines, quoted-printable, base64 PHOTO); the
repository matches numbers in normalised form.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from dataclasses import dataclass
from typing import Any

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int

VCARD_BATCH = 200
"""uids per request_vcards_by_uid."""
MAX_PHOTO = 512 * 1024
"""Larger photos (base64 characters) are dropped."""


@dataclass(frozen=True, slots=True)
class PhoneContact:
    """What the repository stores (store/contacts.py reads these fields)."""

    uid: str
    name: str
    timestamp: int
    numbers: tuple[str, ...]
    photo: str | None = None


def parse_vcard(text: str) -> dict[str, Any]:
    """{"name", "numbers": [...], "photo": base64 or None, "rev": int or None} of one vCard."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif lines and lines[-1].endswith("=") and "QUOTED-PRINTABLE" in lines[-1].upper():
            lines[-1] = lines[-1][:-1] + raw
        else:
            lines.append(raw)
    name = ""
    structured = ""
    numbers: list[str] = []
    photo: str | None = None
    rev: int | None = None
    for line in lines:
        if ":" not in line:
            continue
        head, value = line.split(":", 1)
        parts = head.split(";")
        prop = parts[0].split(".")[-1].upper()
        params = [p.upper() for p in parts[1:]]
        if any("QUOTED-PRINTABLE" in p for p in params):
            value = quopri.decodestring(value.encode("utf-8", "replace")).decode("utf-8", "replace")
        if prop == "FN":
            name = value.strip()
        elif prop == "N" and not structured:
            pieces = [p.strip() for p in value.split(";")]
            structured = " ".join(p for p in (pieces[1:2] + pieces[:1]) if p)
        elif prop == "TEL" and value.strip():
            numbers.append(value.strip())
        elif prop == "PHOTO" and photo is None:
            data = value.strip()
            if data.startswith("data:") and "," in data:
                data = data.split(",", 1)[1]
            try:
                base64.b64decode(data, validate=True)
                photo = data if len(data) <= MAX_PHOTO else None
            except (binascii.Error, ValueError):
                photo = None
        elif prop == "REV":
            rev = body_int(value.strip())
    return {"name": name or structured, "numbers": numbers, "photo": photo, "rev": rev}


class ContactsPlugin(Plugin):
    info = PluginInfo(
        name="contacts",
        incoming=frozenset({types.CONTACTS_RESPONSE_UIDS_TIMESTAMPS, types.CONTACTS_RESPONSE_VCARDS}),
        outgoing=frozenset({types.CONTACTS_REQUEST_ALL_UIDS_TIMESTAMPS,
                            types.CONTACTS_REQUEST_VCARDS_BY_UID}),
        description="Show names and photos from the phone's contacts",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self.repo = ctx.services.contacts
        self._timestamps: dict[str, int] = {}

    async def on_connected(self) -> None:
        if self.repo is not None:
            await self.ctx.send(Packet(types.CONTACTS_REQUEST_ALL_UIDS_TIMESTAMPS, {}))

    async def handle(self, packet: Packet) -> None:
        if self.repo is None:
            return
        uids = packet.body.get("uids")
        if not isinstance(uids, list):
            self.log.info("%s: %s without a uids list; ignored", self.ctx.device_id, packet.type)
            return
        uids = [str(u) for u in uids if isinstance(u, (str, int)) and not isinstance(u, bool)]
        if packet.type == types.CONTACTS_RESPONSE_UIDS_TIMESTAMPS:
            await self._on_timestamps(packet.body, uids)
        else:
            await self._on_vcards(packet.body, uids)

    async def _on_timestamps(self, body: dict[str, Any], uids: list[str]) -> None:
        stored = await self.repo.timestamps(self.ctx.device_id)
        wanted = []
        for uid in uids:
            stamp = body_int(body.get(uid), 0) or 0
            self._timestamps[uid] = stamp
            if stored.get(uid) != stamp:
                wanted.append(uid)
        removed = await self.repo.remove_except(self.ctx.device_id, set(uids))
        if removed:
            self.ctx.publish("contacts.changed", count=len(uids))
        for start in range(0, len(wanted), VCARD_BATCH):
            await self.ctx.send(Packet(types.CONTACTS_REQUEST_VCARDS_BY_UID,
                                       {"uids": wanted[start:start + VCARD_BATCH]}))

    async def _on_vcards(self, body: dict[str, Any], uids: list[str]) -> None:
        contacts = []
        for uid in uids:
            text = body.get(uid)
            if not isinstance(text, str):
                self.log.info("%s: vCard of %s is missing; skipped", self.ctx.device_id, uid)
                continue
            card = parse_vcard(text)
            stamp = self._timestamps.get(uid) or card["rev"] or 0
            contacts.append(PhoneContact(uid=uid, name=card["name"][:300], timestamp=stamp,
                                    numbers=tuple(n[:100] for n in card["numbers"][:50]),
                                    photo=card["photo"]))
        if contacts:
            await self.repo.upsert(self.ctx.device_id, contacts)
            self.ctx.publish("contacts.changed", count=len(contacts))
            self.ctx.publish("messages.changed", threads=[], new=0, changed=0)
