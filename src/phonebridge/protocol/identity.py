"""Identity packets: build ours, validate theirs (PROTOCOL.md §2, §5)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace

from . import types
from .constants import (
    DEVICE_NAME_FORBIDDEN,
    DEVICE_TYPES,
    MAX_DEVICE_NAME,
    MIN_PROTOCOL_VERSION,
    TCP_PORT_MAX,
    TCP_PORT_MIN,
)
from .errors import RemoteProtocolError
from .packet import Packet, body_int

DEVICE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{32,38}$")
"""The id check shared by KDE, Android, GSConnect and Valent (§2)."""

_FORBIDDEN = str.maketrans("", "", DEVICE_NAME_FORBIDDEN)


def new_device_id() -> str:
    """32 lowercase hex characters, like KDE and Android generate today (§2)."""
    return secrets.token_hex(16)


def is_valid_device_id(device_id: object) -> bool:
    return isinstance(device_id, str) and DEVICE_ID_PATTERN.fullmatch(device_id) is not None


def sanitize_device_name(name: str) -> str:
    """Strip the characters peers refuse, control characters and outer spaces; cut to 32 (§2)."""
    cleaned = "".join(ch for ch in name.translate(_FORBIDDEN) if ch.isprintable())
    return cleaned.strip()[:MAX_DEVICE_NAME].strip()


@dataclass(frozen=True, slots=True)
class Identity:
    """What a device says about itself. `tcp_port` only in UDP identities."""

    device_id: str
    name: str
    device_type: str
    protocol_version: int
    incoming: frozenset[str] = field(default_factory=frozenset)
    outgoing: frozenset[str] = field(default_factory=frozenset)
    tcp_port: int | None = None
    target_device_id: str | None = None
    target_protocol_version: int | None = None

    def to_packet(
        self,
        *,
        with_tcp_port: bool = False,
        target: Identity | None = None,
    ) -> Packet:
        """Our identity as a packet: `tcpPort` for UDP, `targetDeviceId`/`…Version` when dialing."""
        body: dict[str, object] = {
            "deviceId": self.device_id,
            "deviceName": self.name,
            "deviceType": self.device_type,
            "protocolVersion": self.protocol_version,
            "incomingCapabilities": sorted(self.incoming),
            "outgoingCapabilities": sorted(self.outgoing),
        }
        if with_tcp_port and self.tcp_port is not None:
            body["tcpPort"] = self.tcp_port
        if target is not None:
            body["targetDeviceId"] = target.device_id
            body["targetProtocolVersion"] = target.protocol_version
        return Packet(type=types.IDENTITY, body=body)

    def with_port(self, tcp_port: int) -> Identity:
        return replace(self, tcp_port=tcp_port)


def parse_identity(packet: Packet, *, require_tcp_port: bool = False) -> Identity:
    """Validate an identity packet. Raises RemoteProtocolError with the reason if it is unusable."""
    if packet.type != types.IDENTITY:
        raise RemoteProtocolError(f"expected an identity packet, got {packet.type}")
    body = packet.body
    device_id = body.get("deviceId")
    if not is_valid_device_id(device_id):
        raise RemoteProtocolError(f"invalid deviceId {device_id!r}")
    raw_name = body.get("deviceName")
    name = sanitize_device_name(raw_name) if isinstance(raw_name, str) else ""
    if not name:
        raise RemoteProtocolError(f"device {device_id}: empty or invalid deviceName")
    version = body_int(body.get("protocolVersion"))
    if version is None or version < MIN_PROTOCOL_VERSION:
        raise RemoteProtocolError(f"device {device_id}: unsupported protocolVersion {version!r}")
    device_type = body.get("deviceType")
    if device_type == "smartphone":
        device_type = "phone"
    if device_type not in DEVICE_TYPES:
        device_type = "desktop"
    tcp_port = body_int(body.get("tcpPort"))
    if tcp_port is not None and not TCP_PORT_MIN <= tcp_port <= TCP_PORT_MAX:
        raise RemoteProtocolError(f"device {device_id}: tcpPort {tcp_port} outside 1716-1764")
    if require_tcp_port and tcp_port is None:
        raise RemoteProtocolError(f"device {device_id}: UDP identity without tcpPort")
    target_id = body.get("targetDeviceId")
    return Identity(
        device_id=device_id,
        name=name,
        device_type=device_type,
        protocol_version=version,
        incoming=_capabilities(body.get("incomingCapabilities")),
        outgoing=_capabilities(body.get("outgoingCapabilities")),
        tcp_port=tcp_port,
        target_device_id=target_id if isinstance(target_id, str) else None,
        target_protocol_version=body_int(body.get("targetProtocolVersion")),
    )


def _capabilities(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))
