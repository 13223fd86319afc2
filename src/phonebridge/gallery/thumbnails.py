"""Thumbnails: small JPEGs made with Pillow, and a bounded cache of them on disk.

Making one is CPU work, so `make_thumbnail` is a plain function the gallery runs in a thread
(asyncio.to_thread): the event loop keeps serving while Pillow decodes. The embedded EXIF thumbnail
of a camera JPEG (~10 KB) is used when it is at least MIN_EMBEDDED pixels on its longest side, which
spares reading the whole photo over SFTP; otherwise the full file is decoded, JPEGs with `draft` so
libjpeg scales by 1/2..1/8 while decoding (a 12 MP photo decodes in ~15 ms instead of ~120 ms).

The cache keeps one file per (device, path, size, mtime): a changed file gets a new key, so stale
thumbnails are never shown. Total size is bounded; the least recently used files go first (their
mtime is their last use, so the order survives restarts). Files are written under a temporary name
and renamed, so a reader never sees half a thumbnail.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from phonebridge.errors import PhonebridgeError

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 320
"""Longest side of a thumbnail: a grid cell of ~160 CSS px on a 2x screen."""
MIN_EMBEDDED = 160
"""An embedded EXIF thumbnail this long on its longest side is good enough (Exif 2.32 recommends
160x120; phones write 256..512 px)."""
JPEG_QUALITY = 80
DEFAULT_CACHE_BYTES = 200 * 1024 * 1024
"""~10,000 thumbnails of ~20 KB."""
EVICT_TO = 0.9
"""After an eviction the cache holds at most this share of its bound, so one eviction frees room
for many writes instead of scanning for each one."""

STALE_TEMPORARY = 600.0
"""Seconds after which a temporary file is a leftover, not a write in progress."""

BROKEN = "broken image"
NOT_AN_IMAGE = "not an image"


class PhotoError(PhonebridgeError):
    """One photo cannot be shown; the rest of the gallery is fine. `reason` is what the user sees
    ("broken image", "not an image", ...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{reason}: {path}")
        self.path = path
        self.reason = reason


def thumbnail_from_embedded(data: bytes, orientation: int, size: int = THUMBNAIL_SIZE
                            ) -> bytes | None:
    """A thumbnail from the embedded EXIF JPEG, turned by the main image's orientation (the
    embedded one is stored like the main image, Exif 2.32 §4.5.8); None when it is too small or
    undecodable, so the caller falls back to the full image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) < MIN_EMBEDDED:
                return None
            im.load()
            return _encode(_oriented(im, orientation), size)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def thumbnail_from_image(data: bytes, path: str, size: int = THUMBNAIL_SIZE) -> bytes:
    """A thumbnail of the whole image file `data` (orientation from its own EXIF).

    Raises:
        PhotoError: "not an image" when Pillow knows no such format, "broken image" when it does
            but the data is broken or truncated, "image too large" past Pillow's pixel bound
            for formats it cannot decode at a reduced scale.
    """
    try:
        im = _open(data)
    except UnidentifiedImageError:
        raise PhotoError(path, NOT_AN_IMAGE) from None
    except Image.DecompressionBombError:
        raise PhotoError(path, "image too large") from None
    except (OSError, ValueError, SyntaxError, struct.error):
        raise PhotoError(path, BROKEN) from None
    try:
        with im:
            if im.format == "JPEG":
                im.draft("RGB", (size, size))  # scaled decoding: never smaller than asked
            im.load()
            return _encode(ImageOps.exif_transpose(im), size)
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise PhotoError(path, BROKEN) from None


def _open(data: bytes) -> Image.Image:
    """Image.open, except that JPEGs skip the decompression-bomb check: `draft` decodes them at
    1/8 scale at most, so a 200 MP photo costs ~3 MP of memory."""
    if data[:2] == b"\xff\xd8":
        im = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
        if max(im.size) > 8 * 2 * Image.MAX_IMAGE_PIXELS ** 0.5:
            im.close()
            raise Image.DecompressionBombError("too large even at 1/8 scale")
        return im
    return Image.open(io.BytesIO(data))


def _oriented(im: Image.Image, orientation: int) -> Image.Image:
    transpose = {
        2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return im.transpose(transpose) if transpose is not None else im


def _encode(im: Image.Image, size: int) -> bytes:
    """RGB JPEG no larger than size x size (transparent parts on white)."""
    if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        im = background
    elif im.mode != "RGB":
        im = im.convert("RGB")
    im.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False)
    return out.getvalue()


# -- the cache ---------------------------------------------------------------------------------


@dataclass
class _Entry:
    size: int
    used: float


class ThumbnailCache:
    """Thumbnails on disk under `root/<device>/`, at most `max_bytes` in total.

    Methods block (file I/O): the gallery calls them from a worker thread. One lock guards the
    in-memory index; files are replaced atomically, so several writers of the same key are safe.
    """

    def __init__(self, root: Path, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: dict[Path, _Entry] | None = None
        self._total = 0

    @staticmethod
    def key(path: str, size: int, mtime: int) -> str:
        return hashlib.sha256(f"{path}\0{size}\0{mtime}".encode()).hexdigest()[:40]

    def file_for(self, device_id: str, path: str, size: int, mtime: int) -> Path:
        return self.root / _safe_name(device_id) / f"{self.key(path, size, mtime)}.jpg"

    @property
    def total_bytes(self) -> int:
        with self._lock:
            self._load()
            return self._total

    def get(self, device_id: str, path: str, size: int, mtime: int) -> bytes | None:
        """The cached thumbnail, marked as just used; None when absent."""
        file = self.file_for(device_id, path, size, mtime)
        try:
            data = file.read_bytes()
        except OSError:
            return None
        with self._lock:
            self._load()
            entry = self._entries.get(file)  # type: ignore[union-attr]
            now = _now()
            if entry is None:  # written by another process since we looked
                self._entries[file] = _Entry(len(data), now)  # type: ignore[index]
                self._total += len(data)
            else:
                entry.used = now
        try:
            os.utime(file, (now, now))
        except OSError:
            pass
        return data

    def put(self, device_id: str, path: str, size: int, mtime: int, data: bytes) -> None:
        file = self.file_for(device_id, path, size, mtime)
        file.parent.mkdir(parents=True, exist_ok=True)
        temp = file.with_name(f".{file.stem}.{secrets.token_hex(4)}.tmp")
        temp.write_bytes(data)
        os.replace(temp, file)
        with self._lock:
            self._load()
            assert self._entries is not None
            old = self._entries.pop(file, None)
            self._total -= old.size if old else 0
            self._entries[file] = _Entry(len(data), _now())
            self._total += len(data)
            if self._total > self.max_bytes:
                self._evict(int(self.max_bytes * EVICT_TO))

    def clear(self, device_id: str) -> None:
        """Forget every thumbnail of a device (it was unpaired)."""
        folder = self.root / _safe_name(device_id)
        with self._lock:
            self._load()
            assert self._entries is not None
            for file in [f for f in self._entries if f.parent == folder]:
                self._total -= self._entries.pop(file).size
                _unlink(file)

    def _evict(self, target: int) -> None:
        assert self._entries is not None
        for file, entry in sorted(self._entries.items(), key=lambda item: item[1].used):
            if self._total <= target:
                break
            _unlink(file)
            del self._entries[file]
            self._total -= entry.size

    def _load(self) -> None:
        """Index the files already on disk (first use after a start); temporaries left by an
        interrupted write are removed."""
        if self._entries is not None:
            return
        entries: dict[Path, _Entry] = {}
        total = 0
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if not folder.is_dir():
                    continue
                for file in folder.iterdir():
                    try:
                        stat = file.stat()
                    except OSError:
                        continue
                    if file.name.endswith(".tmp"):
                        if stat.st_mtime < _now() - STALE_TEMPORARY:
                            _unlink(file)  # left by a crash; younger ones are being written
                        continue
                    entries[file] = _Entry(stat.st_size, stat.st_mtime)
                    total += stat.st_size
        self._entries, self._total = entries, total
        if total > self.max_bytes:
            self._evict(int(self.max_bytes * EVICT_TO))


def _safe_name(device_id: str) -> str:
    """Device ids are [A-Za-z0-9_] (PROTOCOL.md §3); anything else is hashed, never a path."""
    if device_id and all(c.isascii() and (c.isalnum() or c in "_-") for c in device_id):
        return device_id
    return hashlib.sha256(device_id.encode()).hexdigest()[:32]


def _unlink(file: Path) -> None:
    try:
        file.unlink()
    except OSError as exc:
        log.debug("cannot remove %s: %s", file, exc)


def _now() -> float:
    return time.time()
