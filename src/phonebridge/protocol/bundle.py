"""Many files in one payload: PhoneBridge's `phonebridge.share.bundle` (not part of KDE Connect).

KDE Connect moves every file over its own TLS connection (PROTOCOL.md §7): a packet, a TCP and TLS
handshake and a close per file, which caps a folder of small files at a few hundred files per
second whatever the link. Between two PhoneBridge desktops a run of small files goes as one packet
whose payload is the files' bytes back to back, in list order:

    {"type": "phonebridge.share.bundle",
     "body": {"files": [{"filename": "a.txt", "size": 10240, "lastModified": 1700000000000}, ...],
              "numberOfFiles": 1000, "totalPayloadSize": 10240000},
     "payloadSize": 10240000, "payloadTransferInfo": {"port": 1739}}

`payloadSize` is the sum of the sizes (an all-empty bundle has no payload fields, like an empty file
in §1); `numberOfFiles` and `totalPayloadSize` describe the whole batch the bundle belongs to, as in
`kdeconnect.share.request`. A bundle is only sent to a peer that lists the type in its
incomingCapabilities, so KDE Connect, GSConnect and the phone apps never see one.

This module is the sans-I/O part: the packet's parser and builder, the splitter that cuts the
payload stream back into files, and the planner that chooses which files travel together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int

MAX_FILES = 10_000
"""Most files a receiver accepts in one bundle (the sender uses far fewer: SEND_MAX_FILES)."""
SEND_MAX_FILES = 1000
SEND_MAX_BYTES = 64 * 1024 * 1024
"""A bundle's payload limit when sending: what one cancel or one dropped link can take with it."""
SEND_MAX_FILE = 4 * 1024 * 1024
"""Files larger than this go on their own (`kdeconnect.share.request`): per-file overhead no longer
matters, and each can be cancelled alone."""


class BundleError(ValueError):
    """The bundle packet is unusable; the message says why."""


@dataclass(frozen=True)
class BundleFile:
    filename: object
    """As sent (the receiver makes it safe)."""
    size: int
    last_modified: int | None
    """Milliseconds since the epoch."""


def parse_bundle(packet: Packet) -> list[BundleFile]:
    """The files a `phonebridge.share.bundle` announces, in payload order.

    Raises BundleError when `files` is not a non-empty list of objects (at most MAX_FILES), a size is
    not an integer >= 0, or the sizes do not add up to the payload size.
    """
    files = packet.body.get("files")
    if not isinstance(files, list) or not files:
        raise BundleError("`files` is not a non-empty list")
    if len(files) > MAX_FILES:
        raise BundleError(f"{len(files)} files in one bundle (at most {MAX_FILES})")
    parsed = []
    for n, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise BundleError(f"file {n} is not an object")
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BundleError(f"file {n}: `size` is not an integer >= 0")
        last_modified = body_int(entry.get("lastModified"))
        if last_modified is not None and not 0 <= last_modified < 2**53:
            last_modified = None
        parsed.append(BundleFile(entry.get("filename"), size, last_modified))
    total = sum(f.size for f in parsed)
    announced = packet.payload_size if packet.has_payload else 0
    if announced != total:
        raise BundleError(f"the files add up to {total} bytes, the payload is {announced}")
    return parsed


def bundle_packet(files: Sequence[BundleFile], batch_count: int, batch_total: int) -> Packet:
    """The packet announcing `files` (the payload fields are added by the link that sends it)."""
    body: dict[str, Any] = {
        "files": [{"filename": f.filename, "size": f.size, "lastModified": f.last_modified}
                  for f in files],
        "numberOfFiles": batch_count,
        "totalPayloadSize": batch_total,
    }
    return Packet(types.SHARE_BUNDLE, body)


def plan_bundles(sizes: Sequence[int], *, max_files: int = SEND_MAX_FILES,
                 max_bytes: int = SEND_MAX_BYTES, max_file: int = SEND_MAX_FILE
                 ) -> list[list[int]]:
    """Indices of `sizes` in groups that keep the order: runs of small files together (at most
    `max_files` and `max_bytes` a group), each large file alone. A group of one is sent the
    KDE Connect way."""
    groups: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, size in enumerate(sizes):
        if size > max_file:
            if current:
                groups.append(current)
            groups.append([index])
            current, current_bytes = [], 0
            continue
        if current and (len(current) >= max_files or current_bytes + size > max_bytes):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        groups.append(current)
    return groups


class Splitter:
    """Cuts the payload stream of a bundle back into its files.

    `feed(data)` returns `(index, piece, complete)` for every file the data touches, in order:
    `piece` is that file's part of `data` (a memoryview, possibly empty) and `complete` says the
    file has all its bytes now. Empty files are reported complete as soon as the stream reaches
    them, so `feed(b"")` before any data reports the leading ones (and all of an all-empty bundle).
    Bytes beyond the last file are not reported; `surplus` counts them.
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        self._sizes = list(sizes)
        self._index = 0
        self._left = self._sizes[0] if self._sizes else 0
        self.surplus = 0

    @property
    def index(self) -> int:
        """The file the next byte belongs to (len(sizes) when every file is complete)."""
        return self._index

    @property
    def done(self) -> bool:
        return self._index >= len(self._sizes)

    def feed(self, data: bytes | memoryview) -> list[tuple[int, memoryview, bool]]:
        view = memoryview(data)
        out: list[tuple[int, memoryview, bool]] = []
        while self._index < len(self._sizes):
            if self._left == 0:
                out.append((self._index, view[:0], True))
                self._next()
                continue
            if not view:
                break
            take = min(self._left, len(view))
            self._left -= take
            out.append((self._index, view[:take], self._left == 0))
            view = view[take:]
            if self._left == 0:
                self._next()
        self.surplus += len(view)
        return out

    def _next(self) -> None:
        self._index += 1
        self._left = self._sizes[self._index] if self._index < len(self._sizes) else 0
