"""Share, both directions (PROTOCOL.md §7, §8.5): files, text and URLs.

Receiving:
- A `kdeconnect.share.request` with `filename` is a file; its payload is fetched into the download
  folder under a temporary name (`.ID.phonebridge-part`) and renamed only when every announced byte
  arrived, so a short, failed or cancelled payload never leaves a file under a final name. The
  name from the network is made safe (`safe_filename`) and numbered " (1)", " (2)"... on a clash;
  `lastModified` is applied. A 0-byte file comes without payload fields (§1) and is created empty.
- Files are fetched one after another per device (peers send them sequentially, §7) by a worker,
  so the link's read loop never waits for a payload; at most RECEIVE_QUEUE requests wait, more
  are dropped (the sender times out), which bounds what a flood of requests can cost.
- `text` goes to the clipboard with a notification; `url` gives a notification and a transfer
  record the UI can open (the API's /api/open-url).
Receivers test `filename`, `text`, `url` in that order (§7).

Sending: files go one after another, each with its own packet and payload connection, every packet
carrying the batch's `numberOfFiles` and `totalPayloadSize`; an empty file is announced with
`payloadSize: 0` and a port, as Android and GSConnect do (transports/lan/link.py).

Between two PhoneBridge desktops (the peer lists `phonebridge.share.bundle`), runs of small files
go as bundles instead: one packet and one payload connection for up to a thousand files
(protocol/bundle.py). Each file is still its own transfer, written under a temporary name and
renamed when complete; a receiver's cancel skips that file's bytes, a sender's cancel stops the
rest of its bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import stat
import threading
import time
import unicodedata
from bisect import bisect_right
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.core.transfers import CANCELLED, DONE, FAILED, Transfer, TransferManager
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.bundle import (
    BundleError,
    BundleFile,
    Splitter,
    bundle_packet,
    parse_bundle,
    plan_bundles,
)
from phonebridge.protocol.packet import Packet, body_int

MAX_NAME_BYTES = 255
"""File-name limit of ext4, NTFS (UTF-16 units, close enough), APFS."""
RESERVED_SUFFIX_BYTES = 16
"""Room kept for " (NNN)" when a name is numbered."""
RECEIVE_QUEUE = 64
"""File requests that may wait per device while one is being fetched; more are dropped."""
MAX_TEXT = 1024 * 1024
"""Longest shared text or URL we act on (the link already caps a line at 32 MiB)."""
READ_CHUNK = 4 * 1024 * 1024
BUNDLE_CHUNK = 1024 * 1024
"""A bundle's files are read in chunks of this size: the first bytes go out sooner."""
PART_SUFFIX = ".phonebridge-part"
WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}
    | {f"COM{c}" for c in "¹²³"} | {f"LPT{c}" for c in "¹²³"}
)
"""Device names Windows resolves in any folder, with or without an extension."""
_FORBIDDEN = re.compile(r'[<>:"|?*\\/]')
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


# -- pure parts (tested with hypothesis) ----------------------------------------------------------


def safe_filename(name: object, default: str = "received-file") -> str:
    """A single, harmless file name from what a peer sent.

    Keeps the last path component (`../x`, `/etc/x`, `C:\\x` give `x`), drops control, NUL and
    bidirectional-override characters and lone surrogates, replaces characters Windows forbids,
    trims trailing dots and spaces, prefixes Windows device names (CON, NUL.txt...) with "_",
    refuses "." and "..", and cuts the result to MAX_NAME_BYTES - RESERVED_SUFFIX_BYTES UTF-8 bytes
    keeping the extension. Never returns an empty string.
    """
    if not isinstance(name, str):
        return default
    text = name.replace("\\", "/").split("/")[-1]
    text = "".join(
        ch for ch in text
        if unicodedata.category(ch) not in ("Cc", "Cs") and not _BIDI.match(ch)
    )
    text = _FORBIDDEN.sub("_", text).strip().rstrip(". ")
    if text in ("", ".", ".."):
        return default
    stem = text.split(".")[0].rstrip(" ").upper()
    if stem in WINDOWS_RESERVED:
        text = "_" + text
    return _fit(text, MAX_NAME_BYTES - RESERVED_SUFFIX_BYTES)


def _fit(name: str, limit: int) -> str:
    """Cut `name` to `limit` UTF-8 bytes at a character boundary, keeping a short extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    room = limit - len(tail.encode("utf-8"))
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return (cut or "file") + tail


def numbered(name: str, n: int) -> str:
    """`name` with " (n)" before its last extension: "a.jpg" -> "a (1).jpg" (as GSConnect does)."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    return f"{stem} ({n}){tail}"


@dataclass(frozen=True)
class FileShare:
    name: str
    """Already safe (safe_filename)."""
    size: int
    """Announced payload bytes: 0 for an empty file, -1 when the sender does not know."""
    last_modified: int | None
    """Milliseconds since the epoch."""
    number_of_files: int
    total_size: int | None
    open: bool


@dataclass(frozen=True)
class TextShare:
    text: str


@dataclass(frozen=True)
class UrlShare:
    url: str


def parse_share(packet: Packet) -> FileShare | TextShare | UrlShare | None:
    """What a `kdeconnect.share.request` asks for; None when it carries nothing usable.

    Tolerant like the peers (numbers as strings, §10.8); `filename`, `text`, `url` are tested in
    that order (§7). A file packet without `numberOfFiles` is a batch of one.
    """
    body = packet.body
    if "filename" in body:
        size = packet.payload_size or 0
        last_modified = body_int(body.get("lastModified"))
        if last_modified is not None and not 0 <= last_modified < 2**53:
            last_modified = None
        count = body_int(body.get("numberOfFiles"), 1) or 1
        total = body_int(body.get("totalPayloadSize"))
        return FileShare(
            name=safe_filename(body.get("filename")),
            size=size if size >= -1 else 0,
            last_modified=last_modified,
            number_of_files=max(1, count),
            total_size=total if total is not None and total >= 0 else None,
            open=body.get("open") is True,
        )
    text = body.get("text")
    if isinstance(text, str):
        return TextShare(text[:MAX_TEXT])
    url = body.get("url")
    if isinstance(url, str) and url.strip():
        return UrlShare(url.strip()[:MAX_TEXT])
    return None


def summary(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


# -- file system helpers (blocking; called off the loop) -----------------------------------------


def place(part: Path | str, folder: Path | str, name: str) -> Path:
    """Give the finished `part` file its final name in `folder` without ever overwriting one."""
    return Path(_place(os.fspath(part), os.fspath(folder), name))


def _place(part: str, folder: str, name: str) -> str:
    for n in range(10_000):
        candidate = os.path.join(folder, _fit(numbered(name, n), MAX_NAME_BYTES))
        try:
            os.link(part, candidate)  # fails if the name exists: no race with other writers
        except FileExistsError:
            continue
        except OSError:
            if os.path.lexists(candidate):
                continue
            os.replace(part, candidate)  # file systems without hard links
            return candidate
        os.unlink(part)
        return candidate
    raise OSError(f"no free name for {name} in {folder}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


async def read_file(path: Path, size: int) -> AsyncIterator[bytes]:
    """The first `size` bytes of `path`, read off the loop in large chunks."""
    fh = await asyncio.to_thread(open, path, "rb", buffering=0)
    try:
        left = size
        while left > 0:
            data = await asyncio.to_thread(fh.read, min(READ_CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data
    finally:
        fh.close()


async def read_back_to_back(files: Sequence[tuple[Path, int]]) -> AsyncIterator[bytes]:
    """The first `size` bytes of each file, one after another, in chunks of about BUNDLE_CHUNK
    read off the loop (many small files per chunk). A file that became shorter is an OSError."""
    reader = _BackToBack(files)
    try:
        while chunk := await asyncio.to_thread(reader.next_chunk):
            yield chunk
    finally:
        reader.close()


class _BackToBack:
    """Blocking part of read_back_to_back: the file being read and what it still owes."""

    def __init__(self, files: Sequence[tuple[Path, int]]) -> None:
        self._pending = deque(files)
        self._file = None
        self._path: Path | None = None
        self._left = 0

    def next_chunk(self) -> bytes:
        parts: list[bytes] = []
        gathered = 0
        while gathered < BUNDLE_CHUNK:
            if self._file is None:
                if not self._pending:
                    break
                self._path, self._left = self._pending.popleft()
                self._file = open(self._path, "rb", buffering=0)  # noqa: SIM115 - see close()
            data = self._file.read(min(self._left, BUNDLE_CHUNK - gathered)) if self._left else b""
            if self._left and not data:
                self.close()
                raise OSError(f"{self._path} became shorter while it was being sent")
            parts.append(data)
            gathered += len(data)
            self._left -= len(data)
            if not self._left:
                self.close()
        return b"".join(parts)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BundleWriter:
    """Writes the files of a bundle into `folder`, called from the payload's worker thread.

    Each file is written under `.PREFIX-INDEX.phonebridge-part` and given its final name (`place`)
    as soon as its last byte arrived (the folder is made if missing); `finished()` hands the loop
    the `(index, final path)` of every file placed since the last call. A skipped file's bytes are dropped and its part file removed.
    `close()` removes the part file of a file cut off by the end of the payload.
    """

    def __init__(self, folder: Path, part_prefix: str, names: Sequence[str],
                 sizes: Sequence[int], last_modified: Sequence[int | None],
                 on_placed: Callable[[], None] = lambda: None) -> None:
        self._folder = os.fspath(folder)
        self._prefix, self._names, self._mtimes = part_prefix, names, last_modified
        self._splitter = Splitter(sizes)
        self._on_placed = on_placed
        self._placed: deque[tuple[int, str]] = deque()
        """(index, final path) of files placed but not yet handed over."""
        self._skipped: set[int] = set()
        self._fd: int | None = None
        self._open_index = -1
        self._part: str | None = None
        self._lock = threading.Lock()

    def skip(self, index: int) -> None:
        self._skipped.add(index)

    def finished(self) -> list[tuple[int, str]]:
        out = []
        while self._placed:
            out.append(self._placed.popleft())
        return out

    def write(self, data: bytes) -> None:
        placed = False
        with self._lock:
            for index, piece, complete in self._splitter.feed(data):
                if index in self._skipped:
                    self._discard()
                    continue
                if self._fd is None or self._open_index != index:
                    self._discard()
                    self._open(index)
                if piece:
                    _write_all(self._fd, piece)
                if complete:
                    self._placed.append((index, self._complete(index)))
                    placed = True
        if placed:
            self._on_placed()

    def _open(self, index: int) -> None:
        self._part = os.path.join(self._folder, f".{self._prefix}-{index}{PART_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(self._part, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(self._folder, exist_ok=True)
            self._fd = os.open(self._part, flags, 0o644)
        self._open_index = index

    def _complete(self, index: int) -> str:
        assert self._fd is not None and self._part is not None
        fd, part = self._fd, self._part
        self._fd, self._part, self._open_index = None, None, -1
        try:
            mtime = self._mtimes[index]
            if mtime is not None:
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(fd if os.utime in os.supports_fd else part, (time.time(), mtime / 1000))
        finally:
            os.close(fd)
        try:
            return _place(part, self._folder, self._names[index])
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise

    def _discard(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self._part is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._part)
            self._part = None
        self._open_index = -1

    def close(self) -> None:
        with self._lock:
            self._discard()


async def readable_files(paths: list[Path], verb: str) -> list[tuple[Path, int]]:
    """Each path resolved, with its size; DeviceError("cannot VERB PATH: why") for the first that
    is not a readable regular file, before anything is sent. Checked in one trip off the loop."""

    def check() -> list[tuple[Path, int]]:
        files: list[tuple[Path, int]] = []
        for item in paths:
            path = Path(item).expanduser()
            try:
                st = path.stat()
            except OSError as exc:
                why = exc.strerror or str(exc) or type(exc).__name__
                raise DeviceError(f"cannot {verb} {path}: {why}") from None
            if not stat.S_ISREG(st.st_mode):
                raise DeviceError(f"cannot {verb} {path}: not a regular file")
            if not os.access(path, os.R_OK):
                raise DeviceError(f"cannot {verb} {path}: not readable")
            files.append((path.resolve(), st.st_size))
        return files

    return await asyncio.to_thread(check)


def _file_at(ends: Sequence[int], offset: int) -> tuple[int, int]:
    """Which file of a bundle byte `offset` falls in, and how far into it (`ends`: cumulative
    sizes); the index is len(ends) past the last file."""
    index = bisect_right(ends, offset)
    return index, offset - (ends[index - 1] if index else 0)


def _receive_error(exc: BaseException) -> str:
    """Why a receive failed: the payload (refused, stalled, short), our disk, or the device."""
    if isinstance(exc, ConnectionError):
        return _error_text(exc)
    if isinstance(exc, OSError):  # our side: disk full, no permission
        return f"cannot write the file: {_error_text(exc)}"
    return str(exc)


def _send_error(exc: BaseException, what: str) -> str:
    message = _error_text(exc)
    if "did not fetch" in message:
        return f"the device did not take {what} (declined, busy or timed out)"
    return message


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc) or type(exc).__name__


class SharePlugin(Plugin):
    info = PluginInfo(
        name="share",
        incoming=frozenset({types.SHARE_REQUEST, types.SHARE_REQUEST_UPDATE, types.SHARE_BUNDLE}),
        outgoing=frozenset({types.SHARE_REQUEST, types.SHARE_BUNDLE}),
        description="Send and receive files, text and links",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        services = ctx.services
        if services.transfers is None:  # a manager without the daemon's wiring (tests)
            services.transfers = TransferManager(ctx.bus)
        self.transfers: TransferManager = services.transfers
        self._queue: asyncio.Queue[tuple[Packet, FileShare | list[BundleFile]]] = asyncio.Queue(
            RECEIVE_QUEUE)
        self._worker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._dropped = 0
        self._received_batch: list[str] = []
        self._closed = False

    @property
    def download_dir(self) -> Path:
        folder = self.ctx.services.download_dir
        if folder is None:
            home = self.ctx.services.home or Path.home()
            folder = Path(home) / "Downloads"
        return Path(folder)

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- receiving ----------------------------------------------------------------------------

    async def handle(self, packet: Packet) -> None:
        if packet.type == types.SHARE_BUNDLE:
            try:
                self._enqueue(packet, parse_bundle(packet))
            except BundleError as exc:
                self.log.warning("%s: bundle dropped: %s", self.ctx.device_id, exc)
            return
        if packet.type != types.SHARE_REQUEST:
            return  # share.request.update only updates counts we do not need
        share = parse_share(packet)
        if isinstance(share, FileShare):
            self._enqueue(packet, share)
        elif isinstance(share, TextShare):
            await self._receive_text(share)
        elif isinstance(share, UrlShare):
            await self._receive_url(share)
        else:
            self.log.info("%s: share request with nothing to share; ignored", self.ctx.device_id)

    def _enqueue(self, packet: Packet, share: FileShare | list[BundleFile]) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait((packet, share))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                self.log.warning("%s: too many waiting file shares; dropped %d", self.ctx.device_id,
                                 self._dropped)
            return
        if self._worker is None or self._worker.done():
            self._worker = self._spawn(self._receive_files())

    async def _receive_files(self) -> None:
        while not self._queue.empty():
            packet, share = self._queue.get_nowait()
            if isinstance(share, list):
                await self._receive_bundle(packet, share)
                self._notify_received()
                continue
            transfer = self.transfers.create(
                device=self.ctx.device_id, device_name=self.ctx.device_name(), direction="in",
                kind="file", name=share.name, size=max(0, share.size),
            )
            task = self._spawn(self._receive_file(packet, share, transfer))
            self.transfers.set_canceller(transfer, task.cancel)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._closed:
                    task.cancel()
                    raise
            if transfer.state == DONE:
                self._received_batch.append(transfer.name)
            self._notify_received()

    def _notify_received(self) -> None:
        """One desktop notification when the queue ran empty: "Received NAME" or "Received N files"."""
        if not self._queue.empty() or not self._received_batch:
            return
        names = self._received_batch
        self._received_batch = []
        text = f"Received {names[0]}" if len(names) == 1 else f"Received {len(names)} files"
        self._spawn(self.ctx.desktop.notify(self.ctx.device_name(), text))

    async def _receive_bundle(self, packet: Packet, files: list[BundleFile]) -> None:
        """Fetch a bundle's payload, placing each file as soon as it is whole (BundleWriter)."""
        device, device_name = self.ctx.device_id, self.ctx.device_name()
        names = [safe_filename(f.filename) for f in files]
        sizes = [f.size for f in files]
        ends = list(itertools.accumulate(sizes))
        transfers: list[Transfer] = []  # made while the payload connection is being set up
        loop = asyncio.get_running_loop()

        def collect() -> None:
            for index, path in writer.finished():
                transfer = transfers[index]
                if transfer.is_active:
                    transfer.name = os.path.basename(path)
                    self.transfers.finish(transfer, DONE, path=path)
                    self._received_batch.append(transfer.name)

        def placed_in_thread() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(collect)

        def progress(received: int) -> None:
            index, within = _file_at(ends, received)
            if index < len(transfers):
                self.transfers.progress(transfers[index], within)

        writer = BundleWriter(self.download_dir, secrets.token_hex(6), names, sizes,
                              [f.last_modified for f in files], placed_in_thread)

        async def fetch() -> None:
            if packet.has_payload:
                await self.ctx.fetch_payload(packet, writer.write, progress)
            else:
                await asyncio.to_thread(writer.write, b"")  # every file is empty

        task = self._spawn(fetch())
        await asyncio.sleep(0)  # the fetch connects in its thread while we list the transfers
        transfers.extend(
            self.transfers.create(device=device, device_name=device_name, direction="in",
                                  kind="file", name=name, size=size)
            for name, size in zip(names, sizes, strict=True)
        )

        def skip(index: int) -> None:
            writer.skip(index)
            if all(not t.is_active for n, t in enumerate(transfers) if n != index):
                task.cancel()  # nothing left to receive: close the connection

        for n, transfer in enumerate(transfers):
            self.transfers.set_canceller(transfer, lambda n=n: skip(n))
        error: str | None = None
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed or (current is not None and current.cancelling()):
                task.cancel()
                error = "the link to the device dropped"
                raise
            # else every file was cancelled by the user (skip)
        except (OSError, DeviceError) as exc:
            error = _receive_error(exc)
        finally:
            await asyncio.to_thread(writer.close)
            collect()
            failed = [t for t in transfers if t.is_active]
            for transfer in failed:
                self.transfers.finish(transfer, FAILED, error or "the bundle ended early")
            if failed:
                self.log.info("%s: %d of %d files in a bundle not received: %s", device,
                              len(failed), len(transfers), error)

    async def _receive_file(self, packet: Packet, share: FileShare, transfer: Transfer) -> None:
        folder = self.download_dir
        part = folder / f".{transfer.id}{PART_SUFFIX}"
        fd: int | None = None
        try:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(part, flags, 0o644)
            if packet.has_payload:
                handle = fd
                received = await self.ctx.fetch_payload(
                    packet, lambda data: _write_all(handle, data),
                    lambda n: self.transfers.progress(transfer, n),
                )
                if share.size < 0:
                    transfer.size = received
            elif packet.empty_payload_port is not None:
                await self._connect_for_nothing(packet)
            os.close(fd)
            fd = None
            if share.last_modified is not None:
                seconds = share.last_modified / 1000
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(part, (time.time(), seconds))
            final = await asyncio.to_thread(place, part, folder, share.name)
            transfer.name = final.name
            self.transfers.finish(transfer, DONE, path=str(final))
            self.log.info("%s: received %s (%d bytes)", self.ctx.device_id, final, transfer.size)
        except asyncio.CancelledError:
            reason = ("the link to the device dropped" if self._closed
                      else "cancelled by the user")
            self.transfers.finish(transfer, FAILED if self._closed else CANCELLED, reason)
            raise
        except (OSError, DeviceError) as exc:
            self.transfers.finish(transfer, FAILED, _receive_error(exc))
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if transfer.state != DONE:
                with contextlib.suppress(OSError):
                    part.unlink()
                self.log.info("%s: receiving %s ended %s: %s", self.ctx.device_id, share.name,
                              transfer.state, transfer.error)

    async def _connect_for_nothing(self, packet: Packet) -> None:
        """An empty file announced with a port: connect and close, or the sender waits forever."""
        empty = replace(packet, payload_size=0,
                        payload_transfer_info={"port": packet.empty_payload_port})
        try:
            await self.ctx.fetch_payload(empty, lambda _data: None)
        except (ConnectionError, OSError, DeviceError) as exc:
            self.log.info("%s: the empty file's payload port did not answer (%s); the file is"
                          " complete anyway", self.ctx.device_id, exc)

    async def _receive_text(self, share: TextShare) -> None:
        size = len(share.text.encode("utf-8", "surrogatepass"))
        transfer = self.transfers.create(
            device=self.ctx.device_id, device_name=self.ctx.device_name(), direction="in",
            kind="text", name=summary(share.text) or "(empty text)", size=size, content=share.text,
        )
        await self.ctx.desktop.clipboard.set_text(share.text)
        self.transfers.finish(transfer, DONE)
        self.ctx.publish("share.text_received", text=share.text, transfer=transfer.id)
        await self.ctx.desktop.notify(self.ctx.device_name(),
                                      f"Shared text (copied to the clipboard): {summary(share.text)}")

    async def _receive_url(self, share: UrlShare) -> None:
        transfer = self.transfers.create(
            device=self.ctx.device_id, device_name=self.ctx.device_name(), direction="in",
            kind="url", name=summary(share.url, 200), size=len(share.url.encode("utf-8", "replace")),
            content=share.url,
        )
        self.transfers.finish(transfer, DONE)
        self.ctx.publish("share.url_received", url=share.url, transfer=transfer.id)
        await self.ctx.desktop.notify(self.ctx.device_name(), f"Shared a link: {share.url}")

    # -- sending --------------------------------------------------------------------------------

    async def share_files(self, paths: list[Path]) -> list[Transfer]:
        """Send the files one after another; returns their transfers at once (sending goes on).

        Raises DeviceError when a path is not a readable regular file or the device does not
        accept shares.
        """
        if not self.ctx.can_send(types.SHARE_REQUEST):
            raise DeviceError(f"{self.ctx.device_name()} does not accept shared files")
        if not paths:
            raise DeviceError("no files to share")
        files = await readable_files(paths, "share")
        total = sum(size for _, size in files)
        batch = []
        for path, size in files:
            transfer = self.transfers.create(
                device=self.ctx.device_id, device_name=self.ctx.device_name(), direction="out",
                kind="file", name=path.name, size=size, path=str(path),
            )
            batch.append((path, transfer))
            # Before its turn, cancelling only marks it; the batch skips it.
            self.transfers.set_canceller(transfer, lambda: None)
        self._spawn(self._send_batch(batch, total))
        return [t for _, t in batch]

    async def _send_batch(self, batch: list[tuple[Path, Transfer]], total: int) -> None:
        count = len(batch)
        if count > 1 and self.ctx.peer_lists(types.SHARE_BUNDLE):
            groups = plan_bundles([t.size for _, t in batch])
        else:
            groups = [[n] for n in range(count)]
        try:
            for group in groups:
                items = [batch[n] for n in group if batch[n][1].is_active]
                if len(items) > 1:
                    task = self._spawn(self._send_bundle(items, count, total))
                    for _, transfer in items:
                        self.transfers.set_canceller(transfer, task.cancel)
                elif items:
                    path, transfer = items[0]
                    task = self._spawn(self._send_file(path, transfer, count, total))
                    self.transfers.set_canceller(transfer, task.cancel)
                else:
                    continue
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        task.cancel()
                        raise
        finally:
            for _, transfer in batch:
                self.transfers.finish(transfer, FAILED, "the link to the device dropped")

    async def _send_bundle(self, items: list[tuple[Path, Transfer]], count: int, total: int
                           ) -> None:
        """Several files in one `phonebridge.share.bundle` payload (protocol/bundle.py)."""
        transfers = [t for _, t in items]
        sizes = [t.size for t in transfers]
        ends = list(itertools.accumulate(sizes))
        offset = ends[-1]

        finished = 0

        def progress(sent: int) -> None:
            # Every byte of the files before `index` went out: they are done on our side.
            nonlocal finished
            index, within = _file_at(ends, sent)
            while finished < index:
                self.transfers.finish(transfers[finished], DONE)
                finished += 1
            if index < len(transfers):
                self.transfers.progress(transfers[index], within)

        try:
            mtimes = await asyncio.to_thread(
                lambda: [int(path.stat().st_mtime * 1000) for path, _ in items])
            packet = bundle_packet(
                [BundleFile(path.name, size, mtime)
                 for (path, _), size, mtime in zip(items, sizes, mtimes, strict=True)],
                count, total)
            if not offset:  # only empty files: no payload (our receiver does not connect for one)
                if not await self.ctx.send(packet):
                    raise DeviceError("the device does not accept shared files")
            else:
                await self.ctx.offer_payload(
                    packet, offset,
                    read_back_to_back([(path, t.size) for path, t in items]), progress)
            for transfer in transfers:
                self.transfers.finish(transfer, DONE)
        except asyncio.CancelledError:
            if self._closed:
                reason = "the link to the device dropped"
                for transfer in transfers:
                    self.transfers.finish(transfer, FAILED, reason)
            else:
                # The user cancelled one of them (TransferManager.cancel ended that one already).
                cancelled = next((t for t in transfers if t.state == CANCELLED), None)
                reason = (f"cancelled with {cancelled.name} (sent together in one bundle)"
                          if cancelled else "cancelled by the user")
                for transfer in transfers:
                    self.transfers.finish(transfer, CANCELLED, reason)
            raise
        except (OSError, DeviceError) as exc:
            message = _send_error(exc, "the files")
            for transfer in transfers:
                self.transfers.finish(transfer, FAILED, message)
            self.log.info("%s: sending a bundle of %d files failed: %s", self.ctx.device_id,
                          len(transfers), message)

    async def _send_file(self, path: Path, transfer: Transfer, count: int, total: int) -> None:
        try:
            st = await asyncio.to_thread(path.stat)
            body = {
                "filename": path.name,
                "lastModified": int(st.st_mtime * 1000),
                "open": False,
                "numberOfFiles": count,
                "totalPayloadSize": total,
            }
            packet = Packet(types.SHARE_REQUEST, body)
            await self.ctx.offer_payload(packet, transfer.size, read_file(path, transfer.size),
                                         lambda n: self.transfers.progress(transfer, n))
            self.transfers.finish(transfer, DONE)
        except asyncio.CancelledError:
            reason = ("the link to the device dropped" if self._closed
                      else "cancelled by the user")
            self.transfers.finish(transfer, FAILED if self._closed else CANCELLED, reason)
            raise
        except (OSError, DeviceError) as exc:
            self.transfers.finish(transfer, FAILED, _send_error(exc, "the file"))
        if transfer.state != DONE:
            self.log.info("%s: sending %s ended %s: %s", self.ctx.device_id, path,
                          transfer.state, transfer.error)

    async def share_text(self, text: str) -> Transfer:
        return await self._share_value("text", text, summary(text) or "(empty text)")

    async def share_url(self, url: str) -> Transfer:
        return await self._share_value("url", url, summary(url, 200))

    async def _share_value(self, kind: str, value: str, name: str) -> Transfer:
        if not await self.ctx.send(Packet(types.SHARE_REQUEST, {kind: value})):
            raise DeviceError(f"{self.ctx.device_name()} does not accept shared {kind}")
        transfer = self.transfers.create(
            device=self.ctx.device_id, device_name=self.ctx.device_name(), direction="out",
            kind=kind, name=name, size=len(value.encode("utf-8", "replace")), content=value,
        )
        self.transfers.finish(transfer, DONE)
        return transfer
