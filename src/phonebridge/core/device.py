"""Device: what we know about one peer: identity, link, pairing session, loaded plugins."""

from __future__ import annotations

import time
from typing import Any

from phonebridge.core.plugin import Plugin
from phonebridge.protocol.certs import sha256_fingerprint
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.pairing import PairingSession
from phonebridge.store.devices import TrustedDevice
from phonebridge.transports.base import Link


class Device:
    def __init__(self, identity: Identity, trusted: TrustedDevice | None = None) -> None:
        self.identity = identity
        self.trusted = trusted
        self.session = PairingSession(identity.protocol_version, paired=trusted is not None)
        self.link: Link | None = None
        self.plugins: dict[str, Plugin] = {}
        self.router: dict[str, Plugin] = {}
        self.state: dict[str, Any] = {"battery": None, "connectivity": None}
        self.verification_key: str | None = None
        self.certificate_changed = False
        self.refused_reason: str | None = None
        self.last_seen: float | None = None
        self.told_unpaired = False
        self.revision = 0

    @property
    def id(self) -> str:
        return self.identity.device_id

    @property
    def is_paired(self) -> bool:
        return self.session.is_paired

    @property
    def is_reachable(self) -> bool:
        return self.link is not None and not getattr(self.link, "closed", False)

    @property
    def certificate(self) -> bytes | None:
        if self.link is not None:
            return self.link.certificate
        return self.trusted.certificate if self.trusted else None

    @property
    def address(self) -> tuple[str, int] | None:
        if self.link is not None and self.link.address:
            return self.link.address
        if self.trusted and self.trusted.last_host and self.trusted.last_port:
            return (self.trusted.last_host, self.trusted.last_port)
        return None

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape of a device (API, `phonebridge devices --json`): add, never rename."""
        cert = self.certificate
        address = self.address
        return {
            "id": self.id,
            "name": self.identity.name,
            "type": self.identity.device_type,
            "paired": self.is_paired,
            "reachable": self.is_reachable,
            "protocol_version": self.identity.protocol_version,
            "pair_state": self.session.state.value,
            "verification_key": self.verification_key,
            "battery": self.state.get("battery"),
            "connectivity": self.state.get("connectivity"),
            "certificate_changed": self.certificate_changed,
            "refused_reason": self.refused_reason,
            "certificate_sha256": sha256_fingerprint(cert) if cert else None,
            "address": f"{address[0]}:{address[1]}" if address else None,
            "plugins": sorted(self.plugins),
            "incoming_capabilities": sorted(self.identity.incoming),
            "outgoing_capabilities": sorted(self.identity.outgoing),
            "pair_deadline": int(self.session.deadline * 1000) if self.session.deadline else None,
            "last_seen": int(self.last_seen * 1000) if self.last_seen else None,
            "revision": self.revision,
        }

    def touch(self) -> None:
        self.last_seen = time.time()
