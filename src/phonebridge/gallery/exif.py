"""Image headers without decoding: format, size, EXIF date and orientation, embedded thumbnail.

Sans-I/O: `parse_image_header(data)` looks at the first bytes of a file and says what they hold
and, in `needs`, how long a prefix of the file would complete the answer. The gallery reads 64 KiB,
parses, and reads more only when `needs` asks for it: a phone camera JPEG has its EXIF block
(dates, orientation and a ~160 px thumbnail) and its frame header within the first 64 KiB, since
an APP1 segment is at most 64 KiB (CIPA DC-008 "Exif 2.32" §4.5.4) and sits right after SOI.

Rules:
1. Only `NotAnImage` is ever raised, and only when the first bytes match no format we know.
   Inside a known format, bad structure stops the parse and is recorded in `problem`; what was
   found before it is kept. Broken EXIF fields are ignored one by one (an unusable date is None).
2. Every offset and count read from the data is checked against the bounds of its container (the
   APP1 segment, the TIFF block, the box) before use; IFD chains are followed at most once each.
3. A field is reported only when the bytes that define it were complete, so a prefix of a file
   never reports a value the whole file contradicts (tests/plugins/test_exif.py checks every
   prefix length of a real camera file).

Formats: JPEG (EXIF APP1, SOFn frame size), PNG (IHDR, eXIf before IDAT), GIF (logical screen),
WebP (VP8/VP8L/VP8X canvas), HEIF/AVIF (largest `ispe` of the `meta` box; no EXIF: date falls back
to the file time), TIFF/DNG (IFD0 and the EXIF IFD).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")

FIRST_READ = 64 * 1024
"""What a caller reads first: the whole EXIF block and frame header of camera JPEGs."""

MAX_IFD_ENTRIES = 512
"""More entries than any camera writes (Pixel: ~60 in the EXIF IFD); a larger count is garbage."""
MAX_ASCII = 64
"""Longest date/offset/subsecond string we look at (dates are 20 bytes)."""
MAX_PNG_CHUNKS = 64
"""Chunks before IDAT that we walk in a PNG before giving up on eXIf."""
MAX_BOXES = 256
"""Boxes of an ISO BMFF (HEIF) file we look at, all levels together."""

ORIENTATION_SWAPS_AXES = frozenset({5, 6, 7, 8})
"""EXIF orientations that rotate by 90 degrees: displayed width is the stored height."""

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4/C8/CC (DHT,
JPG, DAC)."""
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
"""Markers without a length (TEM, RSTn)."""

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                          b"avif", b"avis"})

# TIFF tags (TIFF 6.0, EXIF 2.32).
_IMAGE_WIDTH, _IMAGE_LENGTH = 0x0100, 0x0101
_ORIENTATION = 0x0112
_DATE_TIME = 0x0132
_EXIF_IFD = 0x8769
_DATE_TIME_ORIGINAL = 0x9003
_OFFSET_TIME = 0x9010
_OFFSET_TIME_ORIGINAL = 0x9011
_SUBSEC_TIME_ORIGINAL = 0x9291
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_THUMBNAIL_OFFSET, _THUMBNAIL_LENGTH = 0x0201, 0x0202
_NEW_SUBFILE_TYPE = 0x00FE

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_BYTE, _ASCII, _SHORT, _LONG = 1, 2, 3, 4


class NotAnImage(ValueError):
    """The data starts like no image format we know (a text file named .jpg, random bytes)."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    """"jpeg", "png", "gif", "webp", "heif", "avif" or "tiff"."""
    width: int | None = None
    """Stored pixels, before orientation (frame header, else EXIF PixelXDimension)."""
    height: int | None = None
    orientation: int = 1
    """EXIF orientation 1..8 (1 = as stored)."""
    taken: datetime | None = None
    """DateTimeOriginal (DateTime when missing), with its sub-seconds; timezone-aware only when the
    file says its offset (OffsetTimeOriginal / OffsetTime): cameras write local wall-clock time."""
    thumbnail: tuple[int, int] | None = None
    """(offset from the file start, length) of the embedded JPEG thumbnail (EXIF IFD1)."""
    needs: int | None = None
    """Length of the file prefix that would complete this header; None = nothing more to learn."""
    problem: str | None = None
    """Why parsing stopped early in a file of a known format (the image may well be broken)."""

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) as shown, with the orientation applied."""
        if self.width is None or self.height is None:
            return None
        if self.orientation in ORIENTATION_SWAPS_AXES:
            return self.height, self.width
        return self.width, self.height


def parse_image_header(data: bytes) -> ImageHeader:
    """What the first bytes of an image file tell (see the module docstring).

    Raises:
        NotAnImage: the data starts like no format listed above. Fewer than 12 bytes of a file
            that could still be one give an ImageHeader with `needs` = 12 only if they match the
            beginning of a known signature; otherwise NotAnImage as well.
    """
    data = bytes(data)
    if data[:2] == b"\xff\xd8":
        return _parse_jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _parse_png(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _parse_gif(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _parse_webp(data)
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return _parse_heif(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _parse_tiff_file(data)
    if len(data) < 12 and _could_start_a_signature(data):
        return ImageHeader(format="unknown", needs=12)
    raise NotAnImage("not an image")


def _could_start_a_signature(data: bytes) -> bool:
    """A short prefix that is still the beginning of some signature (only fixed-position ones)."""
    prefixes = (b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"RIFF", b"II*\x00",
                b"MM\x00*")
    if any(p.startswith(data[: len(p)]) for p in prefixes):
        return True
    return b"ftyp".startswith(data[4:8])  # an ISO BMFF box of any size, then "ftyp"


# -- JPEG --------------------------------------------------------------------------------------


def _parse_jpeg(data: bytes) -> ImageHeader:
    """Walk the marker segments from SOI to the first SOFn (or SOS/EOI), reading EXIF on the way."""
    header = ImageHeader(format="jpeg")
    exif_seen = False
    pos = 2
    while True:
        if len(data) < pos + 2:
            return replace(header, needs=pos + 4)
        if data[pos] != 0xFF:
            return replace(header, problem=f"no JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker (ITU T.81 B.1.1.2)
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            return replace(header, problem="no frame header before the image data")
        if len(data) < pos + 4:
            return replace(header, needs=pos + 4)
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return replace(header, problem=f"JPEG segment of length {length} at byte {pos}")
        body, end = pos + 4, pos + 2 + length
        if marker in _SOF_MARKERS:
            if length < 8:
                return replace(header, problem="frame header too short")
            if len(data) < body + 5:
                return replace(header, needs=body + 5)
            height = int.from_bytes(data[body + 1 : body + 3], "big")
            width = int.from_bytes(data[body + 3 : body + 5], "big")
            # Height 0 means "defined by DNL later" (T.81 B.2.2): keep EXIF's then.
            return replace(header, width=width or header.width, height=height or header.height)
        if marker == 0xE1 and not exif_seen and length >= 8:
            if len(data) < end:  # APP1 segments are small (<= 64 KiB): read it whole, then look
                return replace(header, needs=end)
            if data[body : body + 6] == b"Exif\x00\x00":
                exif_seen = True
                header = _apply_tiff(header, data, body + 6, end, file_offset=body + 6)
        pos = end


# -- TIFF (EXIF) -------------------------------------------------------------------------------


class _TiffBounds(Exception):
    """A read outside the TIFF block; `end` is how far the data would have to reach."""

    def __init__(self, end: int) -> None:
        super().__init__(end)
        self.end = end


@dataclass(frozen=True)
class _Tiff:
    """One TIFF block: data[start:limit], offsets relative to `start`."""

    data: bytes
    start: int
    limit: int
    order: str  # "<" or ">"

    def bytes_at(self, offset: int, size: int) -> bytes:
        begin = self.start + offset
        end = begin + size
        if offset < 0 or size < 0 or end > self.limit:
            raise _TiffBounds(-1)  # outside the block: never available
        if end > len(self.data):
            raise _TiffBounds(end)
        return self.data[begin:end]

    def u16(self, offset: int) -> int:
        return struct.unpack(self.order + "H", self.bytes_at(offset, 2))[0]

    def u32(self, offset: int) -> int:
        return struct.unpack(self.order + "I", self.bytes_at(offset, 4))[0]


def _tiff_at(data: bytes, start: int, limit: int) -> _Tiff | None:
    head = data[start : start + 4]
    if head == b"II*\x00":
        return _Tiff(data, start, limit, "<")
    if head == b"MM\x00*":
        return _Tiff(data, start, limit, ">")
    return None


def _read_ifd(tiff: _Tiff, offset: int) -> tuple[dict[int, tuple[int, int, int]], int]:
    """{tag: (type, count, value offset)} of the IFD at `offset`, and the next IFD's offset (0 when
    none or unreadable). The value offset points at the value itself (inline ones included)."""
    count = tiff.u16(offset)
    if count > MAX_IFD_ENTRIES:
        raise ValueError(f"IFD with {count} entries")
    table = tiff.bytes_at(offset + 2, count * 12)
    entries: dict[int, tuple[int, int, int]] = {}
    for i in range(count):
        tag, kind, n = struct.unpack(tiff.order + "HHI", table[i * 12 : i * 12 + 8])
        inline = offset + 2 + i * 12 + 8
        size = _TYPE_SIZES.get(kind, 0) * n
        value_at = inline if size <= 4 else struct.unpack(
            tiff.order + "I", table[i * 12 + 8 : i * 12 + 12])[0]
        entries.setdefault(tag, (kind, n, value_at))
    next_ifd = _field(lambda: tiff.u32(offset + 2 + count * 12)) or 0
    return entries, next_ifd


def _field(read: Callable[[], T]) -> T | None:
    """`read()`, or None when the bytes it needs are garbage or outside the TIFF block. Bytes that
    a longer prefix of the file would hold (TIFF files) propagate as _TiffBounds, so the caller
    asks for them instead of reporting a field the whole file has."""
    try:
        return read()
    except _TiffBounds as missing:
        if missing.end >= 0:
            raise
        return None
    except (ValueError, struct.error):
        return None


def _int_value(tiff: _Tiff, entry: tuple[int, int, int] | None) -> int | None:
    if entry is None:
        return None
    kind, count, at = entry
    if count < 1:
        return None
    if kind == _SHORT:
        return tiff.u16(at)
    if kind == _LONG:
        return tiff.u32(at)
    if kind == _BYTE:
        return tiff.bytes_at(at, 1)[0]
    return None


def _ascii_value(tiff: _Tiff, entry: tuple[int, int, int] | None) -> str | None:
    if entry is None:
        return None
    kind, count, at = entry
    if kind != _ASCII or count < 1 or count > MAX_ASCII:
        return None
    raw = tiff.bytes_at(at, count).split(b"\x00", 1)[0]
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None


def _apply_tiff(header: ImageHeader, data: bytes, start: int, limit: int, *,
                file_offset: int) -> ImageHeader:
    """The header with what the TIFF block data[start:limit] says (EXIF of a JPEG or PNG, or a
    TIFF/DNG file). Reads needing bytes past `data` (TIFF files only) set `needs`."""
    tiff = _tiff_at(data, start, limit)
    if tiff is None:
        return header
    try:
        return _read_tiff(header, tiff, file_offset)
    except _TiffBounds as missing:
        return replace(header, needs=missing.end)


def _read_tiff(header: ImageHeader, tiff: _Tiff, file_offset: int) -> ImageHeader:
    """Each field on its own: a bad EXIF pointer loses the EXIF fields, not the orientation."""
    ifd0_at = _field(lambda: tiff.u32(4))
    found = _field(lambda: _read_ifd(tiff, ifd0_at)) if ifd0_at is not None else None
    if found is None:
        return header
    ifd0, ifd1_at = found
    visited = {ifd0_at}
    exif: dict[int, tuple[int, int, int]] = {}
    exif_at = _field(lambda: _int_value(tiff, ifd0.get(_EXIF_IFD)))
    if exif_at is not None and exif_at not in visited:
        visited.add(exif_at)
        exif = (_field(lambda: _read_ifd(tiff, exif_at)) or ({}, 0))[0]

    def number(ifd: dict[int, tuple[int, int, int]], tag: int) -> int | None:
        return _field(lambda: _int_value(tiff, ifd.get(tag)))

    def text(ifd: dict[int, tuple[int, int, int]], tag: int) -> str | None:
        return _field(lambda: _ascii_value(tiff, ifd.get(tag)))

    orientation = number(ifd0, _ORIENTATION)
    if orientation is None or not 1 <= orientation <= 8:
        orientation = header.orientation
    taken = _exif_datetime(
        text(exif, _DATE_TIME_ORIGINAL), text(exif, _SUBSEC_TIME_ORIGINAL),
        text(exif, _OFFSET_TIME_ORIGINAL),
    ) or _exif_datetime(text(ifd0, _DATE_TIME), None, text(exif, _OFFSET_TIME))
    width, height = number(exif, _PIXEL_X), number(exif, _PIXEL_Y)
    if header.format == "tiff" and number(ifd0, _NEW_SUBFILE_TYPE) in (None, 0):
        # A TIFF's IFD0 is the image itself; a DNG's IFD0 is usually a preview (subfile type 1).
        width = number(ifd0, _IMAGE_WIDTH) or width
        height = number(ifd0, _IMAGE_LENGTH) or height

    thumbnail = None
    if ifd1_at and ifd1_at not in visited:
        ifd1 = (_field(lambda: _read_ifd(tiff, ifd1_at)) or ({}, 0))[0]
        thumbnail = _field(lambda: _thumbnail(tiff, ifd1, file_offset))
    return replace(
        header,
        orientation=orientation,
        taken=taken or header.taken,
        width=header.width or width or None,
        height=header.height or height or None,
        thumbnail=thumbnail or header.thumbnail,
    )


def _thumbnail(tiff: _Tiff, ifd1: dict[int, tuple[int, int, int]], file_offset: int
               ) -> tuple[int, int] | None:
    offset = _int_value(tiff, ifd1.get(_THUMBNAIL_OFFSET))
    length = _int_value(tiff, ifd1.get(_THUMBNAIL_LENGTH))
    if not offset or not length:
        return None
    head = tiff.bytes_at(offset, length)[:2]  # the whole thumbnail must lie inside the block
    if head != b"\xff\xd8":
        return None
    return file_offset + offset, length


def _exif_datetime(text: str | None, subsec: str | None, offset: str | None) -> datetime | None:
    """"YYYY:MM:DD HH:MM:SS" (+ "123" sub-seconds, + "+01:00") as a datetime; None when blank,
    zero ("0000:00:00 00:00:00" is what cameras without a clock write) or malformed."""
    if not text or len(text) < 19:
        return None
    try:
        taken = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if subsec:
        digits = subsec.strip()[:6]
        if digits.isdigit() and digits.isascii():
            taken = taken.replace(microsecond=int(digits.ljust(6, "0")))
    zone = _utc_offset(offset)
    return taken.replace(tzinfo=zone) if zone is not None else taken


def _utc_offset(text: str | None) -> timezone | None:
    if not text or len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    hours, minutes = text[1:3], text[4:6]
    if not (hours.isdigit() and minutes.isdigit() and hours.isascii() and minutes.isascii()):
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if text[0] == "-" else delta)


def _parse_tiff_file(data: bytes) -> ImageHeader:
    return _apply_tiff(ImageHeader(format="tiff"), data, 0, 2**32, file_offset=0)


# -- PNG, GIF, WebP, HEIF ------------------------------------------------------------------------


def _parse_png(data: bytes) -> ImageHeader:
    """IHDR gives the size; an eXIf chunk before IDAT (PNG 3rd edition §11.3.6) the EXIF fields."""
    if len(data) < 24:
        return ImageHeader(format="png", needs=24)
    if data[12:16] != b"IHDR":
        return ImageHeader(format="png", problem="PNG without IHDR")
    header = ImageHeader(format="png", width=_pixels(data[16:20], "big"),
                         height=_pixels(data[20:24], "big"))
    pos = 8
    for _ in range(MAX_PNG_CHUNKS):
        if len(data) < pos + 8:
            return replace(header, needs=pos + 8)
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if length > 2**31 - 1:
            return replace(header, problem="PNG chunk too long")
        if kind in (b"IDAT", b"IEND"):
            return header
        end = pos + 12 + length  # length, type, data, CRC
        if kind == b"eXIf":
            if len(data) < end - 4:
                return replace(header, needs=end - 4)
            return _apply_tiff(header, data, pos + 8, pos + 8 + length, file_offset=pos + 8)
        pos = end
    return header


def _parse_gif(data: bytes) -> ImageHeader:
    if len(data) < 10:
        return ImageHeader(format="gif", needs=10)
    return ImageHeader(format="gif", width=_pixels(data[6:8], "little"),
                       height=_pixels(data[8:10], "little"))


def _pixels(field: bytes, order: str) -> int | None:
    """A stored width or height; 0 (a broken or placeholder header) is unknown, not a size."""
    return int.from_bytes(field, order) or None  # type: ignore[arg-type]


def _parse_webp(data: bytes) -> ImageHeader:
    """Canvas size from the first chunk (WebP container spec: VP8X, VP8L or VP8)."""
    if len(data) < 30:
        return ImageHeader(format="webp", needs=30)
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        return ImageHeader(format="webp", problem="unknown first WebP chunk")
    return ImageHeader(format="webp", width=width or None, height=height or None)


def _parse_heif(data: bytes) -> ImageHeader:
    """HEIF/AVIF (ISO/IEC 23008-12): the image size is the largest `ispe` property in
    meta/iprp/ipco (the primary image of a phone photo is a grid of tiles, each with its own ispe,
    plus the grid's; the grid is the largest). EXIF would need the item locations: not read."""
    kind = "avif" if data[8:12] in (b"avif", b"avis") else "heif"
    header = ImageHeader(format=kind)
    start, end = 0, None  # None: the file's end, unknown
    try:
        for name in (b"meta", b"iprp", b"ipco"):
            box = _find_box(data, start, end, name)
            if box is None:
                return header
            start, end = box
            if name == b"meta":
                start += 4  # a FullBox: version and flags first
        sizes = []
        for _ in range(MAX_BOXES):
            box = _find_box(data, start, end, b"ispe")
            if box is None:
                break
            body, box_end = box
            if box_end - body >= 12:
                width = int.from_bytes(data[body + 4 : body + 8], "big")
                height = int.from_bytes(data[body + 8 : body + 12], "big")
                if width and height:
                    sizes.append((width, height))
            start = box_end
    except _TiffBounds as missing:
        return replace(header, needs=missing.end)
    except ValueError as exc:
        return replace(header, problem=str(exc))
    if not sizes:
        return header
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    return replace(header, width=width, height=height)


def _find_box(data: bytes, start: int, end: int | None, name: bytes) -> tuple[int, int] | None:
    """(body start, end) of the first box called `name` among the boxes in data[start:end]; the
    whole box must be in `data` (else _TiffBounds asks for it). None when absent, or when the
    image data (mdat) comes first: phone files put meta before it."""
    pos = start
    for _ in range(MAX_BOXES):
        if end is not None and pos >= end:
            return None
        if len(data) < pos + 8:
            raise _TiffBounds(pos + 8)
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        head = 8
        if size == 1:
            if len(data) < pos + 16:
                raise _TiffBounds(pos + 16)
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # "to the end of the file"
            if end is None:
                return None
            size = end - pos
        if size < head or (end is not None and pos + size > end):
            raise ValueError(f"bad {kind!r} box size")
        if kind == name:
            if len(data) < pos + size:
                raise _TiffBounds(pos + size)
            return pos + head, pos + size
        if kind == b"mdat":
            return None
        pos += size
    raise ValueError("too many boxes")
