"""The packet: one compact JSON object per line (PROTOCOL.md §1).

Parsing is tolerant where peers differ (`id` as int, string or absent; unknown keys kept out of the
way) and strict where a wrong value would hurt us later (`type` a string, `body` an object, payload
fields integers). Encoding is strict: integers as integers, `body` always an object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import RemoteProtocolError


@dataclass(frozen=True, slots=True)
class Packet:
    """One KDE Connect packet. `body` is treated as read-only by convention."""

    type: str
    body: dict[str, Any] = field(default_factory=dict)
    id: int | str | None = None
    payload_size: int | None = None
    payload_transfer_info: dict[str, Any] | None = None
    empty_payload_port: int | None = None
    """The port of a `payloadSize: 0` announcement (GSConnect, Android): no payload, but the sender
    listens and waits for the receiver to connect (KDE's receiver connects whenever a
    payloadTransferInfo is present), so a receiver should connect and close."""

    @property
    def has_payload(self) -> bool:
        """A packet carries a payload iff `payloadSize` is present and non-zero (§1)."""
        return bool(self.payload_size)

    def to_json(self, packet_id: int) -> dict[str, Any]:
        """The JSON object to send, stamped with `packet_id` (ms since the epoch, by convention)."""
        obj: dict[str, Any] = {"id": packet_id, "type": self.type, "body": self.body}
        if self.payload_size:
            obj["payloadSize"] = int(self.payload_size)
            obj["payloadTransferInfo"] = dict(self.payload_transfer_info or {})
        elif self.empty_payload_port is not None:
            obj["payloadSize"] = 0
            obj["payloadTransferInfo"] = {"port": self.empty_payload_port}
        return obj

    def to_line(self, packet_id: int) -> bytes:
        """Compact UTF-8 JSON terminated by a newline; JSON escapes keep it on one line."""
        text = json.dumps(self.to_json(packet_id), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"


def parse_packet(line: bytes | str) -> Packet:
    """Decode one line (with or without its newline) into a Packet.

    Raises RemoteProtocolError when the line is not a JSON object with a string `type` and an object
    `body`, or when payload fields have the wrong JSON types.
    """
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"packet is not UTF-8: {exc}") from None
    else:
        text = line
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"packet is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("packet is not a JSON object")
    ptype = obj.get("type")
    if not isinstance(ptype, str) or not ptype:
        raise RemoteProtocolError("packet has no string `type`")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise RemoteProtocolError(f"{ptype}: `body` is not an object")
    pid = obj.get("id")
    if not isinstance(pid, (int, str)) or isinstance(pid, bool):
        pid = None  # nobody reads it (§1): tolerate anything
    size = obj.get("payloadSize")
    info = obj.get("payloadTransferInfo")
    empty_port: int | None = None
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < -1:
            raise RemoteProtocolError(f"{ptype}: `payloadSize` is not an integer >= -1")
        if size == 0:
            port = info.get("port") if isinstance(info, dict) else None
            if isinstance(port, int) and not isinstance(port, bool):
                empty_port = port
            size, info = None, None
        elif not isinstance(info, dict):
            raise RemoteProtocolError(f"{ptype}: `payloadSize` without `payloadTransferInfo` object")
    else:
        info = None
    return Packet(type=ptype, body=body, id=pid, payload_size=size, payload_transfer_info=info,
                  empty_payload_port=empty_port)


def body_bool(value: Any) -> bool:
    """Peers send booleans as JSON true/false, or Android as the string "true" (§10.8)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True or (isinstance(value, int) and not isinstance(value, bool) and value != 0)


def body_int(value: Any, default: int | None = None) -> int | None:
    """An integer sent as a number or as decimal text; `default` for anything else."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default
