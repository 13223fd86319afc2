"""The demo phone's storage: a seeded Android file tree that the SFTP server (demo/sftp.py) serves.

`seed_storage(fs_root)` lays out what a Pixel on Android 11+ shows over SFTP: two volumes under
`/storage` (internal shared storage and an SD card), camera JPEGs with real EXIF (dates, orientation,
an embedded thumbnail), PNG screenshots, WhatsApp pictures whose file time lies (the EXIF date is
older), videos, documents in nested folders, the usual empty folders, hidden and `.nomedia` folders;
with `hostile=True` also broken files, a symlink loop, `Android/data` and odd names.

It must be fast (2,000 photos in a couple of seconds, 10,000 for the benchmark), so no photo is
encoded on its own: a few base scenes are drawn and encoded once per process, and each photo is those
bytes with a fresh EXIF segment spliced in after the SOI and its own DC quantisation values (a byte
each for Y, Cb and Cr in the DQT segments), which changes its brightness and tint as a decoder sees
it, thumbnail included. Everything is deterministic from `seed`.

`SeedSummary` says what was made, for tests and benchmarks to compare against: counts, which paths
are hostile, and every gallery item (DCIM, Pictures, Movies on both volumes; hidden and `.nomedia`
folders skipped) newest first, by EXIF date where present, else by file time.
"""

from __future__ import annotations

import calendar
import dataclasses
import io
import json
import os
import random
import shutil
import struct
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

VOLUMES: tuple[tuple[str, str], ...] = (
    ("/storage/emulated/0", "Internal shared storage"),
    ("/storage/1A2B-3C4D", "SD card"),
)
"""(path, description) of each storage volume, as Android's StorageManager lists them."""
INTERNAL, SD_CARD = VOLUMES[0][0], VOLUMES[1][0]
PROTECTED_DIRS = ("Android/data", "Android/obb")
"""Below a volume: permission denied to every app on Android 11+, the SFTP server included."""

REFERENCE_TIME = calendar.timegm((2026, 10, 1, 18, 0, 0))
"""The seeded phone's "now" (UTC): photos spread over two years before it."""
SPAN_DAYS = 730
DEFAULT_PHOTOS = 2000
MARKER_SUFFIX = ".seed.json"
"""`fs_root` + this names a file next to it (so not served): the parameters and the summary of the
last complete seed."""
SEED_FORMAT = 1
"""Bump when the layout changes, so older seeded trees are made again."""

THUMBNAIL_BOX = (320, 240)
BASE_DC = 16
"""DC quantisation of every table we encode with; a photo scales it per channel (see _Variant)."""


@dataclass(frozen=True)
class SeedSummary:
    """What `seed_storage` made. Phone paths are absolute (`/storage/emulated/0/DCIM/...`)."""

    photos: int
    """Camera JPEGs in DCIM/Camera, both volumes."""
    sd_photos: int
    """Of those, the ones on the SD card."""
    screenshots: int
    whatsapp: int
    videos: int
    """Videos in DCIM/Camera and Movies."""
    documents: int
    """Files outside the media folders (Documents, Download)."""
    newest: list[str]
    """Every gallery item that should display, newest first (ties by path); hostile ones left out."""
    dates: dict[str, int]
    """Phone path -> the date (ms) that orders it: EXIF DateTimeOriginal (with SubSecTimeOriginal)
    where present, else the file's mtime. EXIF is written in the phone's local time with its offset
    (OffsetTimeOriginal), i.e. UTC when TZ is unset, as on this machine."""
    skipped: list[str] = field(default_factory=list)
    """Pictures in hidden or `.nomedia` folders: on the phone but not gallery items."""
    hostile: dict[str, str] = field(default_factory=dict)
    """Phone path -> what is wrong with it (hostile=True only)."""
    odd_names: list[str] = field(default_factory=list)
    """Valid photos with odd names (hostile=True only); they are gallery items, in `newest`."""
    files: int = 0
    """Regular files written."""
    bytes: int = 0
    """Their total size."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SeedSummary:
        return cls(**data)


def phone_to_local(fs_root: Path, phone_path: str) -> Path:
    """Where a phone path lives on this machine (the SFTP chroot is fs_root)."""
    return fs_root / phone_path.lstrip("/")


def seed_storage(fs_root: Path, *, photos: int = DEFAULT_PHOTOS, seed: int = 1,
                 hostile: bool = False, photo_size: tuple[int, int] = (1024, 768)) -> SeedSummary:
    """Make the phone's storage under `fs_root` (idempotent: the same parameters again are a no-op;
    other parameters replace the tree). Blocking: run it in a thread from async code."""
    params = {"format": SEED_FORMAT, "photos": photos, "seed": seed, "hostile": hostile,
              "photo_size": list(photo_size)}
    marker = _marker(fs_root)
    try:
        saved = json.loads(marker.read_text())
        if saved.get("params") == params and (fs_root / "storage").is_dir():
            return SeedSummary.from_json(saved["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    marker.unlink(missing_ok=True)
    shutil.rmtree(fs_root / "storage", ignore_errors=True)
    fs_root.mkdir(parents=True, exist_ok=True)
    summary = _Seeder(fs_root, photos, seed, hostile, tuple(photo_size)).run()
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"params": params, "summary": summary.to_json()}))
    os.replace(tmp, marker)
    return summary


def seeded_summary(fs_root: Path) -> SeedSummary | None:
    """The summary of the tree under `fs_root`, if it was seeded completely."""
    try:
        return SeedSummary.from_json(json.loads(_marker(fs_root).read_text())["summary"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _marker(fs_root: Path) -> Path:
    return fs_root.with_name(fs_root.name + MARKER_SUFFIX)


# -- the tree ------------------------------------------------------------------------------------

STANDARD_FOLDERS = ("Alarms", "Audiobooks", "DCIM/Camera", "Documents", "Download", "Movies",
                    "Music", "Notifications", "Pictures", "Podcasts", "Recordings", "Ringtones",
                    "Android/media")
"""What Android creates on the internal volume; some stay empty."""
DOCUMENTS = (
    # (path below the internal volume, kind, days before REFERENCE_TIME)
    ("Documents/Work/2026/Reports/Q1 report.pdf", "pdf", 180),
    ("Documents/Work/2026/Reports/Q2 report.pdf", "pdf", 90),
    ("Documents/Work/2026/Reports/Drafts/Q3 draft.txt", "text", 12),
    ("Documents/Work/2026/Reports/Drafts/Old/notes from the kick-off.txt", "text", 250),
    ("Documents/Work/2026/Invoices/invoice-0042.pdf", "pdf", 40),
    ("Documents/Work/2025/Budget.csv", "csv", 400),
    ("Documents/Personal/Recipes/pancakes.txt", "text", 600),
    ("Documents/Personal/lease agreement.pdf", "pdf", 500),
    ("Download/boarding-pass.pdf", "pdf", 3),
    ("Download/photos-from-anna.zip", "zip", 20),
    ("Download/app-release.apk", "zip", 60),
    ("Download/podcast-episode-12.mp3", "bytes", 8),
    ("Download/IMG_20250704_181512.jpg", "jpeg", 450),  # an image outside the media folders
)
WHATSAPP = 6
MOVIES = ("Movies/Holiday in Lisbon.mp4", "Movies/Birthday.mp4", "Movies/Timelapse/clouds.mp4")
ODD_NAMES = (
    "Pictures/Odd names/-rf.jpg",
    "Pictures/Odd names/two  spaces and trailing .jpg",
    "Pictures/Odd names/café déjà vu ÆØÅ 日本.jpg",
    "Pictures/Odd names/🎉 party 🥳.jpg",
    "Pictures/Odd names/#hashtag #2.jpg",
    "Pictures/Odd names/100% done %20 %s.jpg",
    "Pictures/Odd names/it's \"quoted\".jpg",
    "DCIM/🎉 Party #1/50% off 'sale'.jpg",
)


class _Seeder:
    def __init__(self, fs_root: Path, photos: int, seed: int, hostile: bool,
                 photo_size: tuple[int, int]) -> None:
        self.fs_root = fs_root
        self.photos = photos
        self.rng = random.Random(seed)
        self.seed = seed
        self.hostile = hostile
        self.photo_size = photo_size
        self.dates: dict[str, int] = {}
        self.skipped: list[str] = []
        self.bad: dict[str, str] = {}
        self.files = 0
        self.bytes = 0
        self._used_seconds: set[int] = set()

    def run(self) -> SeedSummary:
        variants = _variants(self.photo_size, _variant_count(self.photos))
        for folder in STANDARD_FOLDERS:
            self._local(f"{INTERNAL}/{folder}").mkdir(parents=True, exist_ok=True)
        self._local(f"{SD_CARD}/DCIM/Camera").mkdir(parents=True, exist_ok=True)
        camera = self._camera(variants)
        screenshots = self._screenshots()
        whatsapp = self._whatsapp(variants)
        videos = self._videos()
        documents = self._documents(variants)
        self._hidden(variants)
        odd: list[str] = []
        if self.hostile:
            odd = self._hostile(variants)
        gallery = {p: d for p, d in self.dates.items() if p not in self.bad}
        newest = sorted(gallery, key=lambda p: (-gallery[p], p))
        return SeedSummary(
            photos=camera[0], sd_photos=camera[1], screenshots=screenshots, whatsapp=whatsapp,
            videos=videos, documents=documents, newest=newest, dates=gallery,
            skipped=self.skipped, hostile=self.bad, odd_names=odd, files=self.files,
            bytes=self.bytes,
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _local(self, phone_path: str) -> Path:
        return phone_to_local(self.fs_root, phone_path)

    def _write(self, phone_path: str, data: bytes, mtime_ms: int | None) -> None:
        path = self._local(phone_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        if mtime_ms is not None:
            ns = mtime_ms * 1_000_000
            os.utime(path, ns=(ns, ns))
        self.files += 1
        self.bytes += len(data)

    def _capture_time(self, days_back: tuple[float, float] = (0, SPAN_DAYS)) -> int:
        """A daytime moment (ms) in the window, unique to the second across the whole seed."""
        day = self.rng.uniform(*days_back)
        midnight = REFERENCE_TIME - int(day) * 86400 - REFERENCE_TIME % 86400
        hour = min(max(self.rng.gauss(14.5, 3.5), 6.0), 23.5)
        return self._moment(midnight + int(hour * 3600))

    def _moment(self, second: int) -> int:
        """`second` or the next free one (before REFERENCE_TIME), in ms with random milliseconds."""
        second = min(second, REFERENCE_TIME - 3600)
        while second in self._used_seconds:
            second += 1
        self._used_seconds.add(second)
        return second * 1000 + self.rng.randrange(1000)

    def _photo(self, variants: list[_Variant], taken_ms: int, *, orientation: int = 1,
               camera: tuple[str, str] | None = ("Google", "Pixel 8"),
               subsec: bool = True) -> bytes:
        variant = variants[self.rng.randrange(len(variants))]
        tweak = (self.rng.randint(13, 19), self.rng.randint(10, 23), self.rng.randint(10, 23))
        thumb = variant.thumbnail(tweak)
        exif = exif_segment(taken_ms, orientation=orientation, size=self.photo_size,
                            thumbnail=thumb, camera=camera, subsec=subsec)
        return variant.jpeg(tweak, exif)

    # -- content ---------------------------------------------------------------------------------

    def _camera(self, variants: list[_Variant]) -> tuple[int, int]:
        sd_count = max(1, self.photos // 20) if self.photos >= 2 else 0
        on_sd = set(self.rng.sample(range(self.photos), sd_count))
        previous: int | None = None
        for index in range(self.photos):
            if previous is not None and self.rng.random() < 0.3:  # a burst: seconds later
                taken = self._moment(previous // 1000 + self.rng.randint(1, 90))
            else:
                taken = self._capture_time()
            previous = taken
            orientation = 6 if self.rng.random() < 0.08 else 1
            volume = SD_CARD if index in on_sd else INTERNAL
            path = f"{volume}/DCIM/Camera/{_pixel_name(taken)}.jpg"
            self._write(path, self._photo(variants, taken, orientation=orientation), taken)
            self.dates[path] = taken
        return self.photos, sd_count

    def _screenshots(self) -> int:
        count = min(200, max(3, self.photos // 40))
        apps = ("", "", "_Chrome", "_Maps", "_Messages", "_Photos")
        for index in range(count):
            taken = self._capture_time()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(taken // 1000))
            app = self.rng.choice(apps)
            path = f"{INTERNAL}/Pictures/Screenshots/Screenshot_{stamp}{app}.png"
            self._write(path, _screenshot(random.Random(self.seed * 1000 + index)), taken)
            self.dates[path] = taken
        return count

    def _whatsapp(self, variants: list[_Variant]) -> int:
        for index in range(WHATSAPP):
            taken = self._capture_time((400, SPAN_DAYS))     # shot long ago...
            received = self._capture_time((0, 10))           # ...saved recently: mtime is recent
            day = time.strftime("%Y%m%d", time.gmtime(received // 1000))
            path = f"{INTERNAL}/Pictures/WhatsApp/IMG-{day}-WA{index:04d}.jpg"
            data = self._photo(variants, taken // 1000 * 1000, camera=("samsung", "SM-S911B"),
                               subsec=False)
            self._write(path, data, received)
            self.dates[path] = taken // 1000 * 1000
        return WHATSAPP

    def _videos(self) -> int:
        made = []
        for _ in range(max(1, self.photos // 250)):
            taken = self._capture_time()
            made.append((f"{INTERNAL}/DCIM/Camera/{_pixel_name(taken)}.mp4", taken))
        made += [(f"{INTERNAL}/{name}", self._capture_time()) for name in MOVIES]
        for path, taken in made:
            self._write(path, _mp4(self.rng, self.rng.randint(120_000, 400_000)), taken)
            self.dates[path] = taken
        return len(made)

    def _documents(self, variants: list[_Variant]) -> int:
        for relative, kind, days in DOCUMENTS:
            when = (REFERENCE_TIME - days * 86400 - self.rng.randrange(86400)) * 1000
            name = relative.rsplit("/", 1)[-1]
            if kind == "jpeg":
                data = self._photo(variants, when, camera=None)
            else:
                data = _document(kind, name)
            self._write(f"{INTERNAL}/{relative}", data, when)
        return len(DOCUMENTS)

    def _hidden(self, variants: list[_Variant]) -> None:
        """What a gallery must not show: a hidden folder and a folder with `.nomedia`."""
        when = (REFERENCE_TIME - 86400) * 1000
        self._write(f"{INTERNAL}/DCIM/.thumbnails/.nomedia", b"", when)
        self._write(f"{INTERNAL}/Pictures/Stickers/.nomedia", b"", when)
        for index in range(3):
            for folder in ("DCIM/.thumbnails", "Pictures/Stickers"):
                path = f"{INTERNAL}/{folder}/{1700000000 + index}.jpg"
                self._write(path, variants[index % len(variants)].thumbnail((16, 16, 16)), when)
                self.skipped.append(path)

    def _hostile(self, variants: list[_Variant]) -> list[str]:
        when = (REFERENCE_TIME - 2 * 86400) * 1000
        good = self._photo(variants, when)
        broken = {
            f"{INTERNAL}/DCIM/Camera/broken.jpg": ("random bytes", self.rng.randbytes(50_000)),
            f"{INTERNAL}/DCIM/Camera/truncated.jpg": ("truncated JPEG", good[: len(good) // 3]),
            f"{INTERNAL}/Pictures/notes.jpg": ("text named .jpg", b"Not a picture: a note.\n" * 20),
            f"{INTERNAL}/Pictures/empty.jpg": ("empty file", b""),
        }
        for index, (path, (what, data)) in enumerate(broken.items()):
            self._write(path, data, when - index * 1000)
            self.dates[path] = when - index * 1000
            self.bad[path] = what
        loop = self._local(f"{INTERNAL}/Pictures/Loop")
        loop.mkdir(parents=True, exist_ok=True)
        (loop / "again").symlink_to("..")
        self.bad[f"{INTERNAL}/Pictures/Loop/again"] = "symlink loop"
        for volume, _name in VOLUMES:
            for protected in PROTECTED_DIRS:
                path = f"{volume}/{protected}"
                self._write(f"{path}/com.example.app/files/state.bin", b"\0" * 64, when)
                self.bad[path] = "permission denied"
        odd = []
        for relative in ODD_NAMES:
            taken = self._capture_time()
            path = f"{INTERNAL}/{relative}"
            self._write(path, self._photo(variants, taken), taken)
            self.dates[path] = taken
            odd.append(path)
        return odd


def _pixel_name(taken_ms: int) -> str:
    """PXL_YYYYMMDD_HHMMSSmmm, in UTC as the Pixel camera names files."""
    stamp = time.strftime("PXL_%Y%m%d_%H%M%S", time.gmtime(taken_ms // 1000))
    return f"{stamp}{taken_ms % 1000:03d}"


# -- EXIF ----------------------------------------------------------------------------------------
#
# The APP1 segment we write (all offsets relative to the TIFF header, little-endian "II"):
#
#   FF E1 <length:2, big-endian>  "Exif\0\0"
#   TIFF header  "II" 2A 00 <offset of IFD0 = 8:4>
#   IFD0         Make, Model, Orientation, X/YResolution, ResolutionUnit, DateTime,
#                YCbCrPositioning, ExifIFD pointer (8769)      -> next IFD = IFD1
#   its values   (strings and rationals longer than 4 bytes, each padded to even length)
#   Exif IFD     ExifVersion, DateTimeOriginal, DateTimeDigitized, OffsetTime(Original),
#                SubSecTimeOriginal/Digitized, ColorSpace, PixelX/YDimension   -> next = 0
#   its values
#   IFD1         Compression = 6 (JPEG), X/YResolution, ResolutionUnit,
#                JPEGInterchangeFormat (offset of the thumbnail), ...Length     -> next = 0
#   its values
#   thumbnail    a complete baseline JPEG (FFD8 ... FFD9), ~320x240
#
# Each IFD: count:2, then count entries of tag:2 type:2 count:4 value-or-offset:4 sorted by tag,
# then the offset of the next IFD:4. Pillow reads it back (getexif(), get_ifd(0x8769 / IFD1)).

_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED = 2, 3, 4, 5, 7
_Entry = tuple[int, int, int, bytes]  # tag, type, count, value bytes


def _ascii(tag: int, text: str) -> _Entry:
    data = text.encode("utf-8") + b"\0"
    return tag, _ASCII, len(data), data


def _short(tag: int, value: int) -> _Entry:
    return tag, _SHORT, 1, struct.pack("<H", value)


def _long(tag: int, value: int) -> _Entry:
    return tag, _LONG, 1, struct.pack("<I", value)


def _rational(tag: int, num: int, den: int = 1) -> _Entry:
    return tag, _RATIONAL, 1, struct.pack("<II", num, den)


def _ifd_size(entries: list[_Entry]) -> int:
    values = sum(len(d) + len(d) % 2 for *_, d in entries if len(d) > 4)
    return 2 + 12 * len(entries) + 4 + values


def _pack_ifd(entries: list[_Entry], offset: int, next_ifd: int) -> bytes:
    entries = sorted(entries)
    head = [struct.pack("<H", len(entries))]
    values = b""
    values_at = offset + 2 + 12 * len(entries) + 4
    for tag, kind, count, data in entries:
        if len(data) <= 4:
            slot = data.ljust(4, b"\0")
        else:
            slot = struct.pack("<I", values_at + len(values))
            values += data + b"\0" * (len(data) % 2)
        head.append(struct.pack("<HHI", tag, kind, count) + slot)
    head.append(struct.pack("<I", next_ifd))
    return b"".join(head) + values


def exif_segment(taken_ms: int, *, orientation: int = 1, size: tuple[int, int],
                 thumbnail: bytes | None = None, camera: tuple[str, str] | None = None,
                 subsec: bool = True) -> bytes:
    """A complete APP1 Exif segment (marker included) for a photo taken at `taken_ms` (UTC ms).

    Dates are written in the local time of this machine with its UTC offset, as a phone does.
    """
    local = time.localtime(taken_ms // 1000)
    stamp = time.strftime("%Y:%m:%d %H:%M:%S", local)
    east = local.tm_gmtoff or 0
    offset = f"{'+' if east >= 0 else '-'}{abs(east) // 3600:02d}:{abs(east) % 3600 // 60:02d}"
    ifd0: list[_Entry] = [
        _short(0x0112, orientation), _rational(0x011A, 72), _rational(0x011B, 72),
        _short(0x0128, 2), _ascii(0x0132, stamp), _short(0x0213, 1), _long(0x8769, 0),
    ]
    if camera is not None:
        ifd0 += [_ascii(0x010F, camera[0]), _ascii(0x0110, camera[1])]
    exif: list[_Entry] = [
        (0x9000, _UNDEFINED, 4, b"0232"), _ascii(0x9003, stamp), _ascii(0x9004, stamp),
        _ascii(0x9010, offset), _ascii(0x9011, offset), _short(0xA001, 1),
        _long(0xA002, size[0]), _long(0xA003, size[1]),
    ]
    if subsec:
        millis = f"{taken_ms % 1000:03d}"
        exif += [_ascii(0x9291, millis), _ascii(0x9292, millis)]
    ifd1: list[_Entry] = []
    if thumbnail is not None:
        ifd1 = [_short(0x0103, 6), _rational(0x011A, 72), _rational(0x011B, 72), _short(0x0128, 2),
                _long(0x0201, 0), _long(0x0202, len(thumbnail))]
    at_ifd0 = 8
    at_exif = at_ifd0 + _ifd_size(ifd0)
    at_ifd1 = at_exif + _ifd_size(exif)
    at_thumb = at_ifd1 + _ifd_size(ifd1)
    ifd0 = [e if e[0] != 0x8769 else _long(0x8769, at_exif) for e in ifd0]
    ifd1 = [e if e[0] != 0x0201 else _long(0x0201, at_thumb) for e in ifd1]
    tiff = b"".join([
        b"II*\0" + struct.pack("<I", at_ifd0),
        _pack_ifd(ifd0, at_ifd0, at_ifd1 if ifd1 else 0),
        _pack_ifd(exif, at_exif, 0),
        _pack_ifd(ifd1, at_ifd1, 0) if ifd1 else b"",
        thumbnail if ifd1 and thumbnail is not None else b"",
    ])
    payload = b"Exif\0\0" + tiff
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("EXIF segment too large (thumbnail over 64 KB)")
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


# -- base images ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoded:
    """A baseline JPEG without its SOI and APPn segments, and where its three DC quantisers are."""

    body: bytes
    dc_offsets: tuple[int, int, int]  # Y, Cb, Cr table's DC value, offsets into body

    def with_dc(self, dc: tuple[int, int, int]) -> bytearray:
        body = bytearray(self.body)
        for at, value in zip(self.dc_offsets, dc, strict=True):
            body[at] = value
        return body


@dataclass(frozen=True)
class _Variant:
    """One base scene encoded at photo size and thumbnail size with the same three tables.

    Scaling a table's DC quantiser (BASE_DC -> 10..23) scales every block's mean of that channel
    around mid-grey when decoded: brighter/darker for Y, a shift of tint for Cb and Cr. It costs
    three bytes, so each photo looks a little different from its siblings for free.
    """

    full: _Encoded
    thumb: _Encoded

    def jpeg(self, dc: tuple[int, int, int], app1: bytes) -> bytes:
        return b"\xff\xd8" + app1 + bytes(self.full.with_dc(dc))

    def thumbnail(self, dc: tuple[int, int, int]) -> bytes:
        return b"\xff\xd8" + bytes(self.thumb.with_dc(dc))


def _variant_count(photos: int) -> int:
    return min(24, max(4, photos // 10))


@lru_cache(maxsize=4)
def _variants(size: tuple[int, int], count: int) -> list[_Variant]:
    """`count` distinct scenes (drawn once per process and size: the seed does not change them)."""
    rng = random.Random(20260101)
    tables = _tables()
    thumb_size = _fit(size, THUMBNAIL_BOX)
    half = (max(160, size[0] // 2), max(120, size[1] // 2))  # scenes are drawn at half size
    # A little grain, like a sensor's: real photos weigh ~1 bit per pixel, flat drawings a fifth.
    grain, fine_grain = _noise(half), _noise(size)
    out = []
    for index in range(count):
        scene = SCENES[index % len(SCENES)](rng, half)
        scene = _shift_hue(scene, (index // len(SCENES)) * 85 + rng.randrange(40))
        scene = Image.blend(scene, grain, 0.06)
        full = Image.blend(scene.resize(size, Image.Resampling.BILINEAR), fine_grain, 0.05)
        out.append(_Variant(
            full=_encode(full, tables),
            thumb=_encode(scene.resize(thumb_size, Image.Resampling.BILINEAR), tables),
        ))
    return out


def _noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 64).convert("RGB")


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


@lru_cache(maxsize=1)
def _tables() -> list[list[int]]:
    """libjpeg's quality-85 tables, a separate one for Cr, and every DC quantiser at BASE_DC."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG", quality=85)
    quantization = Image.open(buffer).quantization
    tables = [list(quantization[0]), list(quantization[1]), list(quantization[1])]
    for table in tables:
        table[0] = BASE_DC
    return tables


def _encode(image: Image.Image, tables: list[list[int]]) -> _Encoded:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", qtables=tables)
    data = buffer.getvalue()
    at = 2  # after SOI
    while data[at + 1] in range(0xE0, 0xF0):  # drop APPn (JFIF): the EXIF APP1 comes first
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    body = data[at:]
    dc: dict[int, int] = {}
    pos = 0
    while body[pos + 1] != 0xDA:  # up to the scan
        marker, length = body[pos + 1], int.from_bytes(body[pos + 2:pos + 4], "big")
        if marker == 0xDB:
            table_at = pos + 4
            while table_at < pos + 2 + length:
                precision, number = body[table_at] >> 4, body[table_at] & 0x0F
                if precision != 0:
                    raise ValueError("16-bit quantisation tables are not expected")
                dc[number] = table_at + 1
                table_at += 65
        pos += 2 + length
    return _Encoded(body, (dc[0], dc[1], dc[2]))


def _shift_hue(image: Image.Image, amount: int) -> Image.Image:
    if amount % 256 == 0:
        return image
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda x: (x + amount) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def _gradient(size: tuple[int, int], top: tuple[int, int, int],
              bottom: tuple[int, int, int]) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _landscape(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, (70, 140, 230), (200, 225, 250))
    draw = ImageDraw.Draw(image)
    sun = rng.randrange(w // 8, w - w // 8)
    draw.ellipse((sun - h // 10, h // 8, sun + h // 10, h // 8 + h // 5), fill=(255, 235, 150))
    for layer, colour in enumerate(((90, 110, 130), (60, 120, 70), (40, 90, 50))):
        base = h // 2 + layer * h // 8
        ridge = [(x, base - rng.randrange(h // 6)) for x in range(0, w + 40, w // 8)]
        points = [(0, h), *ridge, (w, h)]
        draw.polygon(points, fill=colour)
    return image


def _sunset(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, (250, 120, 60), (60, 30, 90))
    draw = ImageDraw.Draw(image)
    r = h // 6
    draw.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), fill=(255, 200, 90))
    draw.rectangle((0, h * 3 // 5, w, h), fill=(30, 40, 90))
    for _ in range(12):
        y = rng.randrange(h * 3 // 5, h)
        x = rng.randrange(w)
        draw.line((x, y, x + rng.randrange(20, w // 4), y), fill=(250, 170, 90), width=2)
    return image


def _shapes(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, (240, 235, 220), (200, 190, 170))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(h // 16, h // 4)
        colour = tuple(rng.randrange(40, 230) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    return image


def _poster(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, (30, 30, 40), (90, 40, 120))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, h // 7))
    word = rng.choice(("HELLO", "PIXEL 8", "SUMMER", "CAFÉ", "OPEN"))
    draw.text((w // 12, h // 3), word, fill=(250, 220, 120), font=font)
    draw.rectangle((w // 12, h * 2 // 3, w - w // 12, h * 2 // 3 + h // 30), fill=(250, 220, 120))
    return image


def _stripes(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(image)
    x = 0
    while x < w:
        width = rng.randrange(w // 30, w // 8)
        draw.rectangle((x, 0, x + width, h), fill=tuple(rng.randrange(60, 250) for _ in range(3)))
        x += width + rng.randrange(0, w // 20)
    draw.ellipse((w // 3, h // 4, w * 2 // 3, h * 3 // 4), outline=(20, 20, 20),
                 width=max(2, h // 60))
    return image


def _meadow(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = _gradient(size, (150, 200, 240), (60, 150, 60))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(w), rng.randrange(h // 2, h)
        r = rng.randrange(2, h // 40 + 3)
        colour = rng.choice(((250, 250, 250), (250, 220, 40), (230, 80, 120)))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    draw.rectangle((w * 2 // 3, h // 3, w * 2 // 3 + w // 40, h * 2 // 3), fill=(90, 60, 30))
    draw.ellipse((w * 2 // 3 - w // 10, h // 6, w * 2 // 3 + w // 8, h // 2), fill=(40, 110, 50))
    return image


SCENES = (_landscape, _sunset, _shapes, _poster, _stripes, _meadow)


# -- other files ---------------------------------------------------------------------------------


def _screenshot(rng: random.Random) -> bytes:
    """A phone screen (540x1200 PNG): status bar, app bar, a few cards of text lines."""
    w, h = 540, 1200
    accent = tuple(rng.randrange(40, 220) for _ in range(3))
    dark = rng.random() < 0.3
    image = Image.new("RGB", (w, h), (24, 24, 28) if dark else (248, 248, 250))
    draw = ImageDraw.Draw(image)
    ink = (230, 230, 230) if dark else (40, 40, 45)
    draw.rectangle((0, 0, w, 40), fill=accent)
    draw.text((20, 12), f"{rng.randrange(7, 23)}:{rng.randrange(60):02d}", fill=(255, 255, 255))
    draw.rectangle((0, 40, w, 130), fill=accent)
    draw.text((24, 75), rng.choice(("Messages", "Maps", "Settings", "Photos", "Chrome")),
              fill=(255, 255, 255), font=ImageFont.load_default(size=28))
    y = 150
    while y < h - 120:
        card = rng.randrange(90, 260)
        draw.rounded_rectangle((20, y, w - 20, y + card), radius=16, outline=(200, 200, 205),
                               fill=(40, 40, 48) if dark else (255, 255, 255))
        for line in range(y + 20, y + card - 20, 28):
            draw.rectangle((40, line, 40 + rng.randrange(120, w - 100), line + 12), fill=ink)
        y += card + 20
    draw.rectangle((0, h - 60, w, h), fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _mp4(rng: random.Random, size: int) -> bytes:
    """Looks like an MP4 to anything that sniffs it: an `ftyp` box, then `mdat` with the rest."""
    ftyp = b"ftyp" + b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    ftyp = struct.pack(">I", len(ftyp) + 4) + ftyp
    mdat_len = max(8, size - len(ftyp))
    return ftyp + struct.pack(">I", mdat_len) + b"mdat" + rng.randbytes(mdat_len - 8)


def _document(kind: str, name: str) -> bytes:
    text = f"{name}\n\nThis is a file of the PhoneBridge demo phone.\n"
    if kind == "pdf":
        return (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
                + text.encode() + b"trailer << /Root 1 0 R >>\n%%EOF\n")
    if kind == "csv":
        rows = "".join(f"2025-{month:02d},{month * 137 % 900}\n" for month in range(1, 13))
        return f"month,amount\n{rows}".encode()
    if kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("README.txt", text)
        return buffer.getvalue()
    if kind == "bytes":
        return random.Random(name).randbytes(64_000)
    return text.encode() * 4
