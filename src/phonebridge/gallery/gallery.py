"""Gallery: the phone's photos and videos, newest first, paged, with thumbnails.

How a listing stays fast on a phone with thousands of photos:
1. The media folders (DCIM, Pictures, Movies on every storage root) are walked over SFTP, one walk
   per folder at once; names, sizes and mtimes go to the index (store/photos.py). No file is read.
2. The requested page is taken from the index; the headers (first 64 KiB, more only when the parser
   asks) of its images are read so their EXIF date, size and orientation are right before we
   answer. A changed date can move an item off the page, so this repeats until the page is stable.
3. A background task then reads the headers of the rest, newest first, a few at a time and only
   while nothing in the foreground (a page, a thumbnail) is waiting, so later pages are ordered by
   EXIF date too; `complete` says whether it has finished.
4. Later listings use the index; the folders are listed again when asked (`refresh`, before the
   answer) or when the last listing is older than RESCAN_AFTER (behind the answer, so the gallery
   opens at once), and only new or changed files need their headers.

Android rules followed: hidden files and folders, and folders holding `.nomedia` (and everything
below them), are not media (MediaScanner does the same). Videos are listed with their file time;
their thumbnail is None (a poster frame would need a video decoder such as ffmpeg: not cheap).

Errors stay with their item: a broken image has `error` and the rest works; a folder that cannot
be read or a session that cannot be re-established ends up in `errors`, and the page shows what
was indexed. The index of a phone that is not reachable is still served (with an error entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import posixpath
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from phonebridge.core.phonefiles import PhoneFileError
from phonebridge.errors import DeviceError, UnknownDeviceError
from phonebridge.store.photos import HeaderResult, MediaFile, PhotoRecord, PhotoRepository

from .exif import FIRST_READ, ImageHeader, NotAnImage, parse_image_header
from .thumbnails import (
    BROKEN,
    NOT_AN_IMAGE,
    PhotoError,
    ThumbnailCache,
    thumbnail_from_embedded,
    thumbnail_from_image,
)

log = logging.getLogger(__name__)

MEDIA_FOLDERS = ("DCIM", "Pictures", "Movies")
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "dng"})
VIDEO_EXTENSIONS = frozenset({"mp4", "3gp", "mkv", "webm", "mov"})
CONTENT_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "webp": "image/webp", "heic": "image/heic", "heif": "image/heif", "dng": "image/x-adobe-dng",
    "mp4": "video/mp4", "3gp": "video/3gpp", "mkv": "video/x-matroska", "webm": "video/webm",
    "mov": "video/quicktime",
}

RESCAN_AFTER = 60.0
"""Seconds an index is trusted before the folders are listed again."""
READS_IN_FLIGHT = 8
"""SFTP reads (headers, files for thumbnails) at once, per gallery."""
BACKGROUND_READS = 4
"""Of those, at most this many for the background header task (thumbnails keep the rest)."""
BACKGROUND_BATCH = 200
"""Headers read and stored per round of the background task."""
MAX_HEADER_BYTES = 1024 * 1024
"""A header that needs more than this (huge APPn segments) is left incomplete: date = mtime."""
MAX_DECODE_BYTES = 128 * 1024 * 1024
"""Larger images get no thumbnail made from the full file (a 200 MP JPEG is ~40 MB)."""
PAGE_ROUNDS = 4
"""Times a page is re-read after its headers changed the order (it settles after one or two)."""
RECENT_HEADS_BYTES = 16 * 1024 * 1024
"""First bytes of the files of recent pages, kept so their thumbnails need no second read."""
MAX_LIMIT = 500
NO_PREVIEW_FORMATS = frozenset({"heif"})
"""Formats Pillow cannot decode (no libheif): no thumbnail, not an error."""


def media_kind(name: str) -> str | None:
    """"image", "video" or None, by the extension (as Android's MediaStore does)."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    return None


def content_type(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return (CONTENT_TYPES.get(extension) or mimetypes.guess_type(name)[0]
            or "application/octet-stream")


def media_files(root: str, top: str, entries: list[Any]) -> list[MediaFile]:
    """The gallery items among the files walked below `top` (PhoneEntry-like: name, path, size,
    date): hidden files and folders and `.nomedia` folders (and below) left out."""
    nomedia = {posixpath.dirname(e.path) for e in entries if e.name == ".nomedia"}
    shown_as: dict[str, str | None] = {}
    """folder -> its name relative to the root, or None when it is no media folder (once each:
    a camera folder holds thousands of files)."""
    found = []
    for entry in entries:
        kind = media_kind(entry.name)
        if kind is None or entry.name.startswith("."):
            continue
        folder = posixpath.dirname(entry.path)
        if folder not in shown_as:
            shown_as[folder] = _media_folder(root, top, folder, nomedia)
        shown = shown_as[folder]
        if shown is None:
            continue
        found.append(MediaFile(path=entry.path, name=entry.name, folder=shown, size=entry.size,
                               mtime=entry.date or 0, kind=kind))
    return found


def _media_folder(root: str, top: str, folder: str, nomedia: set[str]) -> str | None:
    """`folder` relative to `root`, or None when it is hidden or below a `.nomedia`."""
    relative = folder[len(top) + 1 :] if folder.startswith(top + "/") else ""
    if any(part.startswith(".") for part in relative.split("/")):
        return None
    if nomedia and _below_any(folder, nomedia):
        return None
    return posixpath.relpath(folder, root) if folder.startswith(root) else folder


def _below_any(folder: str, ancestors: set[str]) -> bool:
    while True:
        if folder in ancestors:
            return True
        parent = posixpath.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def header_result(record: PhotoRecord | MediaFile, data: bytes, header: ImageHeader | None,
                  problem: str | None) -> HeaderResult:
    """What the index stores for a file from its first bytes (`problem`: why it is no image)."""
    date, width, height, error = record.mtime, None, None, problem
    if header is not None:
        if header.taken is not None:
            with contextlib.suppress(OverflowError, OSError, ValueError):
                # A date without offset is the phone's wall clock: read as the desktop's local time.
                date = int(header.taken.timestamp() * 1000)
        if header.display_size is not None:
            width, height = header.display_size
        file_ended = len(data) >= record.size
        if header.problem is not None:
            error = BROKEN
        elif header.format == "unknown":
            error = NOT_AN_IMAGE
        elif header.needs is not None and file_ended and header.width is None:
            error = BROKEN  # truncated before the frame header
    return HeaderResult(path=record.path, size=record.size, mtime=record.mtime, date=date,
                        width=width, height=height, error=error)


def _raise_unexpected(results: list[Any]) -> None:
    """gather(return_exceptions=True) results: a phone's DeviceError is an answer, anything else
    (cancellation, a bug) goes on up."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, DeviceError):
            raise result


class _DeviceState:
    def __init__(self) -> None:
        self.scanned_at: float | None = None
        """monotonic time of the last listing of the folders (this run)."""
        self.scan_lock = asyncio.Lock()
        self.errors: list[dict[str, str]] = []
        self.background: asyncio.Task | None = None
        self.rescan: asyncio.Task | None = None
        """Listing the folders again behind an answer from the index (see photos())."""


class Gallery:
    """`daemon.gallery`: used by the API (api/routes/photos.py) and the CLI through it."""

    def __init__(self, manager: Any, repo: PhotoRepository, cache: ThumbnailCache, *,
                 rescan_after: float = RESCAN_AFTER, reads_in_flight: int = READS_IN_FLIGHT,
                 clock: Any = time.monotonic) -> None:
        self.manager = manager
        self.repo = repo
        self.cache = cache
        self.rescan_after = rescan_after
        self._clock = clock
        self._reads = asyncio.Semaphore(reads_in_flight)
        self._background_reads = asyncio.Semaphore(min(BACKGROUND_READS, reads_in_flight))
        self._devices: dict[str, _DeviceState] = {}
        self._making: dict[tuple[str, str, int, int], asyncio.Task[bytes | None]] = {}
        self._heads: OrderedDict[tuple[str, str, int, int], bytes] = OrderedDict()
        self._heads_bytes = 0
        self._foreground = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Stop the background work (daemon stopping)."""
        tasks = [*self._tasks, *self._making.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- listing --------------------------------------------------------------------------------

    async def photos(self, device_id: str, *, offset: int = 0, limit: int = 60,
                     refresh: bool = False) -> dict[str, Any]:
        """A page of the gallery, newest first: {"items": [PhotoRecord.to_json()...], "total":
        items in the index, "complete": whether every header was read (so the order is final),
        "errors": [{"path", "reason"}] of folders that could not be listed}.

        Raises DeviceError (UnknownDeviceError for an unknown id) when the phone cannot be reached
        and nothing of it is indexed yet.
        """
        offset, limit = max(0, int(offset)), min(max(0, int(limit)), MAX_LIMIT)
        state = self._devices.setdefault(device_id, _DeviceState())
        try:
            files = await self._files(device_id)
        except UnknownDeviceError:
            raise
        except DeviceError as exc:
            items, total = await self.repo.page(device_id, offset, limit)
            if not total:
                raise
            return self._answer(items, total, False, [{"path": "/", "reason": str(exc)}])
        asked_at = self._clock()
        stale = state.scanned_at is not None and asked_at - state.scanned_at >= self.rescan_after
        if stale and not refresh:
            # Listed earlier in this run: answer from the index at once and list the folders again
            # behind the answer (the next page or listing sees what changed; Refresh waits).
            self._start_rescan(device_id, files, state)
        else:
            async with state.scan_lock:
                fresh = state.scanned_at is not None and (
                    state.scanned_at >= asked_at if refresh
                    else self._clock() - state.scanned_at < self.rescan_after)
                if not fresh:
                    await self._scan(device_id, files, state)
        items, total = await self._settled_page(device_id, files, offset, limit)
        unread = await self.repo.count_unread(device_id)
        if unread:
            self._start_background(device_id, state)
        return self._answer(items, total, not unread, state.errors)

    @staticmethod
    def _answer(items: list[PhotoRecord], total: int, complete: bool,
                errors: list[dict[str, str]]) -> dict[str, Any]:
        return {"items": [item.to_json() for item in items], "total": total,
                "complete": complete, "errors": list(errors)}

    async def _files(self, device_id: str) -> Any:
        """The device's PhoneFiles (plugins/sftp.py); DeviceError when not reachable."""
        plugin = self.manager.plugin(device_id, "sftp")
        return await plugin.files()

    async def _scan(self, device_id: str, files: Any, state: _DeviceState) -> None:
        """List the media folders of every root (one walk each, at once) into the index."""
        tops = [(root.path, posixpath.join(root.path, name))
                for root in files.roots for name in MEDIA_FOLDERS]
        started = time.time()
        walked = await asyncio.gather(*(self._walk(files, root, top) for root, top in tops))
        found: list[MediaFile] = []
        errors: list[dict[str, str]] = []
        unfinished: list[str] = []
        for (root, top), (entries, folder_errors, finished) in zip(tops, walked, strict=True):
            found += media_files(root, top, entries)
            errors += folder_errors
            if not finished:
                unfinished.append(top)
        unique = list({f.path: f for f in found}.values())
        await self.repo.save_listing(device_id, unique, int(started * 1000),
                                     keep_under=unfinished)
        state.errors = errors
        state.scanned_at = self._clock()
        log.info("%s: %d media files in %.2f s (%d folder errors)", device_id, len(unique),
                 time.time() - started, len(errors))

    @staticmethod
    async def _walk(files: Any, root: str, top: str
                    ) -> tuple[list[Any], list[dict[str, str]], bool]:
        """(files below top, errors, whether the walk finished). A media folder that does not
        exist is no error; a session that cannot be re-established ends the walk (unfinished)."""
        entries: list[Any] = []
        errors: list[Any] = []
        finished = True
        try:
            async for entry in files.walk(top, errors=errors):
                entries.append(entry)
        except DeviceError as exc:
            errors.append(exc)
            finished = False
        shown = []
        for error in errors:
            path = getattr(error, "path", top)
            reason = getattr(error, "reason", None) or str(error)
            if path == top and reason == "not found":
                continue
            shown.append({"path": path, "reason": reason})
        return entries, shown, finished

    async def _settled_page(self, device_id: str, files: Any, offset: int, limit: int
                            ) -> tuple[list[PhotoRecord], int]:
        """The page and the total, after reading the headers of the page's images (repeated
        while that reorders it)."""
        items, total = await self.repo.page(device_id, offset, limit)
        for _ in range(PAGE_ROUNDS):
            unread = [r for r in items if r.kind == "image" and not r.header_read]
            if not unread:
                break
            async with self._in_foreground():
                results = await asyncio.gather(
                    *(self._read_header(files, device_id, r, keep=True) for r in unread),
                    return_exceptions=True)
            _raise_unexpected(results)
            done = [r for r in results if isinstance(r, HeaderResult)]
            lost = [r for r in results if isinstance(r, DeviceError)]
            await self.repo.save_headers(device_id, done)
            items, total = await self.repo.page(device_id, offset, limit)
            if lost and not done:
                break  # the phone is gone: answer with what the index has
        return items, total

    async def _read_header(self, files: Any, device_id: str, record: PhotoRecord | MediaFile, *,
                           keep: bool = False, background: bool = False) -> HeaderResult:
        """Read and parse the first bytes of one file (PhoneFileError for "connection lost";
        other read errors become the item's error)."""
        try:
            data, header, problem = await self._head(files, record, background=background)
        except DeviceError as exc:
            reason = getattr(exc, "reason", None)
            if reason is None or reason == "connection lost":
                raise
            return HeaderResult(record.path, record.size, record.mtime, record.mtime, None, None,
                                reason)
        if keep and header is not None:
            self._keep_head(device_id, record, data)
        return header_result(record, data, header, problem)

    async def _head(self, files: Any, record: PhotoRecord | MediaFile, *, background: bool = False,
                    data: bytes | None = None) -> tuple[bytes, ImageHeader | None, str | None]:
        """(first bytes, header or None, why it is no image): 64 KiB first, more when the parser
        asks for it (up to MAX_HEADER_BYTES or the end of the file)."""
        if record.size == 0:
            return b"", None, "empty file"
        if data is None:
            data = await self._read(files, record.path, 0, min(record.size, FIRST_READ),
                                    background=background)
        while True:
            try:
                header = parse_image_header(data)
            except NotAnImage:
                return data, None, NOT_AN_IMAGE
            wanted = header.needs
            if wanted is None or len(data) >= record.size or wanted > MAX_HEADER_BYTES:
                return data, header, None
            upto = min(record.size, MAX_HEADER_BYTES, max(wanted, 2 * len(data)))
            more = await self._read(files, record.path, len(data), upto - len(data),
                                    background=background)
            if not more:
                return data, header, None
            data += more

    async def _read(self, files: Any, path: str, offset: int, size: int | None, *,
                    background: bool = False) -> bytes:
        if background:
            async with self._background_reads:
                await self._idle.wait()
                async with self._reads:
                    return await files.read(path, offset, size)
        async with self._reads:
            return await files.read(path, offset, size)

    @contextlib.asynccontextmanager
    async def _in_foreground(self) -> AsyncIterator[None]:
        """Someone waits for this work: the background task pauses until it is done."""
        self._foreground += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._foreground -= 1
            if self._foreground == 0:
                self._idle.set()

    def _keep_head(self, device_id: str, record: PhotoRecord | MediaFile, data: bytes) -> None:
        key = (device_id, record.path, record.size, record.mtime)
        old = self._heads.pop(key, None)
        self._heads_bytes -= len(old) if old else 0
        self._heads[key] = data
        self._heads_bytes += len(data)
        while self._heads_bytes > RECENT_HEADS_BYTES and self._heads:
            _, dropped = self._heads.popitem(last=False)
            self._heads_bytes -= len(dropped)

    def _take_head(self, key: tuple[str, str, int, int]) -> bytes | None:
        data = self._heads.pop(key, None)
        self._heads_bytes -= len(data) if data else 0
        return data

    def _start_rescan(self, device_id: str, files: Any, state: _DeviceState) -> None:
        if state.rescan is not None and not state.rescan.done():
            return

        async def rescan() -> None:
            async with state.scan_lock:
                if state.scanned_at is None or self._clock() - state.scanned_at >= self.rescan_after:
                    try:
                        await self._scan(device_id, files, state)
                    except DeviceError as exc:
                        log.info("%s: listing the media folders again failed: %s", device_id, exc)
                        return
            if await self.repo.count_unread(device_id):
                self._start_background(device_id, state)

        state.rescan = asyncio.get_running_loop().create_task(rescan())
        self._tasks.add(state.rescan)
        state.rescan.add_done_callback(self._tasks.discard)

    # -- the background header task --------------------------------------------------------------

    def _start_background(self, device_id: str, state: _DeviceState) -> None:
        if state.background is not None and not state.background.done():
            return
        task = asyncio.get_running_loop().create_task(self._complete_headers(device_id))
        state.background = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete_headers(self, device_id: str) -> None:
        """Read the headers of every image not read yet, newest first, in batches."""
        try:
            while True:
                batch = await self.repo.unread(device_id, BACKGROUND_BATCH)
                if not batch:
                    return
                files = await self._files(device_id)
                results = await asyncio.gather(
                    *(self._read_header(files, device_id, r, background=True) for r in batch),
                    return_exceptions=True)
                _raise_unexpected(results)
                done = [r for r in results if isinstance(r, HeaderResult)]
                if len(done) < len(results):
                    await self.repo.save_headers(device_id, done)
                    log.info("%s: header reading stopped: %s", device_id,
                             next(r for r in results if isinstance(r, DeviceError)))
                    return
                if not await self.repo.save_headers(device_id, done):
                    return  # the files changed under us; the next listing starts again
        except DeviceError as exc:
            log.info("%s: header reading stopped: %s", device_id, exc)

    # -- thumbnails, originals, downloads --------------------------------------------------------

    async def thumbnail(self, device_id: str, path: str) -> bytes | None:
        """A JPEG of at most 320 px (orientation applied); None when there is no preview (videos,
        HEIF). Raises PhotoError for a broken image, PhoneFileError/DeviceError when the phone
        cannot give the file."""
        record = await self.repo.get(device_id, path)
        if record is None:
            record = await self._record_for(device_id, path)
            if record is None:
                return None
        if record.kind != "image":
            return None
        if record.thumbnail_bad:
            raise PhotoError(path, record.error or BROKEN)
        cached = await asyncio.to_thread(self.cache.get, device_id, path, record.size,
                                         record.mtime)
        if cached is not None:
            return cached
        key = (device_id, path, record.size, record.mtime)
        task = self._making.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._make(device_id, record))
            self._making[key] = task
            task.add_done_callback(lambda done: self._made(key, done))
        return await asyncio.shield(task)

    def _made(self, key: tuple[str, str, int, int], task: asyncio.Task) -> None:
        self._making.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every requester may have gone away meanwhile

    async def _record_for(self, device_id: str, path: str) -> PhotoRecord | None:
        """A record for a path the index does not hold (asked for directly)."""
        files = await self._files(device_id)
        entry = await files.stat(path)
        kind = media_kind(entry.name)
        if entry.is_dir or kind is None:
            return None
        return PhotoRecord(device_id=device_id, path=path, name=entry.name,
                           folder=posixpath.dirname(path), size=entry.size, mtime=entry.date or 0,
                           date=entry.date or 0, kind=kind, width=None, height=None,
                           header_read=False, error=None, thumbnail_bad=False)

    async def _make(self, device_id: str, record: PhotoRecord) -> bytes | None:
        async with self._in_foreground():
            files = await self._files(device_id)
            key = (device_id, record.path, record.size, record.mtime)
            try:
                thumbnail = await self._make_from(files, record, self._take_head(key))
            except PhotoError as exc:
                await self.repo.mark_thumbnail_bad(device_id, record.path, exc.reason)
                raise
            if thumbnail is not None:
                await asyncio.to_thread(self.cache.put, device_id, record.path, record.size,
                                        record.mtime, thumbnail)
            return thumbnail

    async def _make_from(self, files: Any, record: PhotoRecord, head: bytes | None
                         ) -> bytes | None:
        path = record.path
        if record.size == 0:
            raise PhotoError(path, "empty file")
        is_jpeg_name = record.name.lower().endswith((".jpg", ".jpeg"))
        if head is None and not is_jpeg_name and record.size <= MAX_DECODE_BYTES:
            head = await self._read(files, path, 0, None)  # no embedded thumbnail to hope for
        data, header, problem = await self._head(files, record, data=head)
        if not record.header_read:
            await self.repo.save_headers(record.device_id,
                                         [header_result(record, data, header, problem)])
        if problem is not None:
            raise PhotoError(path, problem)
        assert header is not None
        if header.format in NO_PREVIEW_FORMATS:
            return None
        if header.thumbnail is not None and await self._ends_whole(files, record, data, header):
            offset, length = header.thumbnail
            embedded = data[offset : offset + length]
            made = await asyncio.to_thread(thumbnail_from_embedded, embedded, header.orientation)
            if made is not None:
                return made
        if len(data) < record.size:
            if record.size > MAX_DECODE_BYTES:
                raise PhotoError(path, "too large for a preview")
            data = await self._read(files, path, 0, None)
        try:
            return await asyncio.to_thread(thumbnail_from_image, data, path)
        except PhotoError:
            if header.format == "tiff":  # a raw (DNG) Pillow cannot read is not broken
                return None
            raise

    async def _ends_whole(self, files: Any, record: PhotoRecord, data: bytes,
                          header: ImageHeader) -> bool:
        """Whether a JPEG ends with EOI, so its embedded thumbnail can stand for it. A truncated
        file has a perfect EXIF thumbnail; files with data after EOI (motion photos, Samsung
        trailers) answer False too and are decoded whole, which tells the two apart."""
        if header.format != "jpeg":
            return True
        tail = data[-2:] if len(data) >= record.size else await self._read(
            files, record.path, record.size - 2, 2)
        return tail == b"\xff\xd9"

    async def original(self, device_id: str, path: str) -> tuple[int, str, AsyncIterator[bytes]]:
        """(size, content type, chunks) of the file as it is on the phone."""
        files = await self._files(device_id)
        entry = await files.stat(path)
        if entry.is_dir:
            raise PhoneFileError(path, "is a folder")
        return entry.size, content_type(entry.name), files.stream(path)

    async def pull(self, device_id: str, paths: list[str], to_dir: Path) -> list[Any]:
        """Download to `to_dir` (PhoneFiles.pull: whole files with their dates, as transfers)."""
        files = await self._files(device_id)
        return await files.pull(paths, to_dir)
