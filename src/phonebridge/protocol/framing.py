"""LineFramer: split a byte stream into packets at newlines, with a size limit (PROTOCOL.md §1).

Feed it whatever the socket gave; it returns the complete packets and keeps the rest. A line longer
than the limit raises RemoteProtocolError (the link must close: we can no longer find the next
packet boundary safely). A line that is not a valid packet is reported as a `BadLine`, so the caller
drops that packet and keeps the link.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import MAX_LINE
from .errors import RemoteProtocolError
from .packet import Packet, parse_packet


@dataclass(frozen=True, slots=True)
class BadLine:
    """A complete line that did not decode into a packet; `reason` says why."""

    reason: str
    size: int


class LineFramer:
    """Incremental newline framing with a maximum line length."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already known to hold no newline

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete line."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet | BadLine]:
        """Add bytes; return every complete line decoded, in order. Blank lines are skipped."""
        self._buffer += data
        out: list[Packet | BadLine] = []
        start = 0
        while True:
            nl = self._buffer.find(b"\n", max(start, self._scanned))
            if nl < 0:
                break
            line = bytes(self._buffer[start:nl])
            if len(line) > self.max_line:
                raise RemoteProtocolError(f"line of {len(line)} bytes exceeds {self.max_line}")
            start = nl + 1
            self._scanned = start
            if line.strip():
                try:
                    out.append(parse_packet(line))
                except RemoteProtocolError as exc:
                    out.append(BadLine(str(exc), len(line)))
        if start:
            del self._buffer[:start]
        self._scanned = len(self._buffer)
        if len(self._buffer) > self.max_line:
            raise RemoteProtocolError(f"line exceeds {self.max_line} bytes without a newline")
        return out
