"""The image header parser (gallery/exif.py) against files Pillow writes, camera-like JPEGs with an
embedded thumbnail in both byte orders, every truncation of such a file, and garbage."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from phonebridge.gallery.exif import ImageHeader, NotAnImage, parse_image_header

EXIF_IFD = ExifTags.IFD.Exif


def parse_or_none(data: bytes) -> ImageHeader | None:
    try:
        return parse_image_header(data)
    except NotAnImage:
        return None


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), **options) -> bytes:  # noqa: ANN003
    out = io.BytesIO()
    Image.new("RGB", size, (200, 80, 20)).save(out, fmt, **options)
    return out.getvalue()


# -- a camera-like EXIF block, built by hand (Pillow writes no IFD1 thumbnail) -------------------

ASCII, SHORT, LONG = 2, 3, 4


def ascii_entry(tag: int, text: str) -> tuple[int, int, int, bytes]:
    raw = text.encode() + b"\x00"
    return tag, ASCII, len(raw), raw


def tiff_block(order: str, ifd0: list, exif: list, ifd1: list, thumbnail: bytes = b"") -> bytes:
    """A TIFF block like a phone writes: IFD0 -> EXIF IFD, IFD0 -> IFD1 -> thumbnail JPEG.

    Entries are (tag, type, count, value bytes); SHORT/LONG values are ints. The EXIF pointer and
    the thumbnail offset/length entries are added here."""
    def pack(fmt: str, *values: int) -> bytes:
        return struct.pack(order + fmt, *values)

    def encode(entry: tuple) -> tuple[int, int, int, bytes]:
        tag, kind, count, value = entry
        if kind == SHORT:
            value = pack("H", value)
        elif kind == LONG:
            value = pack("I", value)
        return tag, kind, count, value

    def size(entries: list) -> int:
        extra = sum(len(encode(e)[3]) for e in entries if len(encode(e)[3]) > 4)
        return 2 + 12 * len(entries) + 4 + extra

    ifd0 = [*ifd0, (0x8769, LONG, 1, 0)]
    ifd1 = [*ifd1, (0x0201, LONG, 1, 0), (0x0202, LONG, 1, len(thumbnail))] if thumbnail else ifd1
    ifd0_at = 8
    exif_at = ifd0_at + size(ifd0)
    ifd1_at = exif_at + size(exif)
    thumb_at = ifd1_at + size(ifd1)
    ifd0 = [e if e[0] != 0x8769 else (0x8769, LONG, 1, exif_at) for e in ifd0]
    ifd1 = [e if e[0] != 0x0201 else (0x0201, LONG, 1, thumb_at) for e in ifd1]

    def ifd(entries: list, at: int, next_at: int) -> bytes:
        entries = sorted((encode(e) for e in entries), key=lambda e: e[0])
        data_at = at + 2 + 12 * len(entries) + 4
        table, data = pack("H", len(entries)), b""
        for tag, kind, count, value in entries:
            if len(value) <= 4:
                table += pack("HHI", tag, kind, count) + value.ljust(4, b"\x00")
            else:
                table += pack("HHI", tag, kind, count) + pack("I", data_at + len(data))
                data += value
        return table + pack("I", next_at) + data

    head = b"II*\x00" + pack("I", 8) if order == "<" else b"MM\x00*" + pack("I", 8)
    return (head + ifd(ifd0, ifd0_at, ifd1_at if ifd1 else 0) + ifd(exif, exif_at, 0)
            + (ifd(ifd1, ifd1_at, 0) if ifd1 else b"") + thumbnail)


def camera_jpeg(order: str = "<", *, size: tuple[int, int] = (640, 480), orientation: int = 6,
                taken: str = "2023:07:14 18:30:05", subsec: str | None = "042",
                offset: str | None = "+02:00", thumb_size: tuple[int, int] = (256, 192),
                app0: bool = True) -> bytes:
    """SOI, APP0 JFIF (optional), APP1 EXIF with a thumbnail, then Pillow's image segments."""
    thumb = image_bytes("JPEG", thumb_size) if thumb_size else b""
    exif = [ascii_entry(0x9003, taken), (0xA002, LONG, 1, size[0]), (0xA003, SHORT, 1, size[1])]
    if subsec is not None:
        exif.append(ascii_entry(0x9291, subsec))
    if offset is not None:
        exif.append(ascii_entry(0x9011, offset))
    ifd0 = [ascii_entry(0x010F, "Google"), ascii_entry(0x0110, "Pixel 8"),
            (0x0112, SHORT, 1, orientation), ascii_entry(0x0132, "2024:01:01 00:00:00")]
    block = b"Exif\x00\x00" + tiff_block(order, ifd0, exif, [(0x0103, SHORT, 1, 6)], thumb)
    app1 = b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block
    body = image_bytes("JPEG", size, quality=70)
    assert body[:4] == b"\xff\xd8\xff\xe0"  # Pillow's SOI + APP0 JFIF
    app0_len = struct.unpack(">H", body[4:6])[0]
    app0_seg, rest = body[2 : 4 + app0_len], body[4 + app0_len :]
    return b"\xff\xd8" + (app0_seg if app0 else b"") + app1 + rest


# -- what the parser reads -------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
def test_camera_jpeg_gives_date_orientation_size_and_thumbnail(order: str) -> None:
    data = camera_jpeg(order)
    header = parse_image_header(data)
    assert header.format == "jpeg" and header.needs is None and header.problem is None
    assert (header.width, header.height, header.orientation) == (640, 480, 6)
    assert header.display_size == (480, 640)
    assert header.taken == datetime(2023, 7, 14, 18, 30, 5, 42000,
                                    tzinfo=timezone(timedelta(hours=2)))
    offset, length = header.thumbnail
    thumb = Image.open(io.BytesIO(data[offset : offset + length]))
    assert thumb.size == (256, 192)
    # Pillow agrees about the block (so the hand-made EXIF is a fair stand-in for a camera's).
    exif = Image.open(io.BytesIO(data)).getexif()
    assert exif[0x0112] == 6 and exif.get_ifd(EXIF_IFD)[0x9003] == "2023:07:14 18:30:05"
    assert exif.get_ifd(ExifTags.IFD.IFD1)[0x0201] == offset - data.index(b"Exif\x00\x00") - 6


def test_date_without_offset_is_local_wall_clock_and_datetime_is_the_fallback() -> None:
    header = parse_image_header(camera_jpeg(offset=None, subsec=None))
    assert header.taken == datetime(2023, 7, 14, 18, 30, 5) and header.taken.tzinfo is None
    no_original = camera_jpeg(taken="0000:00:00 00:00:00")  # what a camera without a clock writes
    assert parse_image_header(no_original).taken == datetime(2024, 1, 1)  # IFD0 DateTime
    blank = camera_jpeg(taken="    :  :     :  :  ")
    assert parse_image_header(blank).taken == datetime(2024, 1, 1)


def test_small_embedded_thumbnail_and_missing_one() -> None:
    assert parse_image_header(camera_jpeg(thumb_size=None)).thumbnail is None
    small = parse_image_header(camera_jpeg(thumb_size=(96, 72)))
    assert small.thumbnail is not None  # reported; thumbnails.py decides it is too small


dates = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31))


@settings(max_examples=60, deadline=None)
@given(taken=dates, orientation=st.integers(1, 8), order=st.sampled_from(["<", ">"]),
       size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
       offset_minutes=st.one_of(st.none(), st.integers(-12 * 60, 14 * 60)),
       millis=st.one_of(st.none(), st.integers(0, 999)))
def test_round_trip_with_jpegs_pillow_writes(taken, orientation, order, size, offset_minutes,
                                             millis) -> None:
    exif = Image.Exif()
    exif.endian = order
    exif[0x0112] = orientation
    sub = exif.get_ifd(EXIF_IFD)
    sub[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    expected = taken.replace(microsecond=0)
    if millis is not None:
        sub[0x9291] = f"{millis:03d}"
        expected = expected.replace(microsecond=millis * 1000)
    if offset_minutes is not None:
        sign = "-" if offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(offset_minutes), 60)
        sub[0x9011] = f"{sign}{hours:02d}:{minutes:02d}"
        expected = expected.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    data = image_bytes("JPEG", size, exif=exif)
    header = parse_image_header(data)
    assert (header.format, header.width, header.height) == ("jpeg", *size)
    assert header.orientation == orientation and header.taken == expected
    assert header.needs is None and header.problem is None
    png = parse_image_header(image_bytes("PNG", size, exif=exif))  # eXIf chunk
    assert (png.width, png.height, png.orientation, png.taken) == (*size, orientation, expected)


@pytest.mark.parametrize("fmt,options,expected_format", [
    ("PNG", {}, "png"), ("GIF", {}, "gif"), ("WEBP", {}, "webp"),
    ("WEBP", {"lossless": True}, "webp"), ("TIFF", {}, "tiff"), ("AVIF", {}, "avif"),
])
@pytest.mark.parametrize("size", [(1, 1), (123, 45), (2000, 17)])
def test_sizes_of_other_formats(fmt, options, expected_format, size) -> None:
    header = parse_image_header(image_bytes(fmt, size, **options))
    assert (header.format, header.width, header.height, header.needs) == (expected_format, *size,
                                                                            None)


def test_webp_with_exif_is_vp8x() -> None:
    exif = Image.Exif()
    exif[0x0112] = 3
    header = parse_image_header(image_bytes("WEBP", (77, 33), exif=exif))
    assert (header.width, header.height) == (77, 33)


@pytest.mark.parametrize("data", [b"hello, this is text named photo.jpg\n", b"\x00" * 100,
                                  b"<html></html>", b"RIFF\x00\x00\x00\x00WAVEfmt "])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        parse_image_header(data)


def test_too_short_to_tell_asks_for_more() -> None:
    assert parse_image_header(b"").needs == 12
    assert parse_image_header(b"\x89PN").needs == 12
    with pytest.raises(NotAnImage):
        parse_image_header(b"GIF8b..")


# -- truncations ---------------------------------------------------------------------------------


def fields(header: ImageHeader) -> dict:
    return {k: getattr(header, k) for k in ("width", "height", "taken", "thumbnail")}


@pytest.mark.parametrize("order", ["<", ">"])
def test_every_prefix_of_a_camera_jpeg_is_consistent_with_the_whole_file(order: str) -> None:
    data = camera_jpeg(order)
    full = parse_image_header(data)
    complete_from = None
    for length in range(len(data) + 1):
        header = parse_image_header(data[:length])
        if header.needs is None:
            assert header == full, length
            complete_from = length if complete_from is None else complete_from
            continue
        assert header.needs > length, length
        assert header.format in ("jpeg", "unknown")
        for name, value in fields(header).items():
            assert value is None or value == getattr(full, name), (length, name)
        if header.orientation != 1:
            assert header.orientation == full.orientation
        # Following `needs` from here reaches the full answer in a few reads.
        reads, step = 0, header
        while step.needs is not None:
            reads += 1
            assert reads < 12, length
            step = parse_image_header(data[: step.needs])
        assert step == full
    # The whole header is in the first bytes: EXIF plus frame header, nowhere near 64 KiB.
    assert complete_from is not None and complete_from < 64 * 1024


def test_prefixes_of_pngs_and_avif() -> None:
    for data in (image_bytes("PNG", (300, 200)), image_bytes("AVIF", (300, 200)),
                 image_bytes("WEBP", (300, 200)), image_bytes("GIF", (300, 200))):
        full = parse_image_header(data)
        for length in range(min(len(data), 2000) + 1):
            header = parse_image_header(data[:length])
            assert header.needs is None or header.needs > length
            if header.needs is None:
                assert header == full
            else:
                assert header.width in (None, full.width)


# -- garbage ------------------------------------------------------------------------------------

SIGNATURES = [b"\xff\xd8", b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00II*\x00",
              b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00MM\x00*", b"\x89PNG\r\n\x1a\n",
              b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"\x00\x00\x00\x18ftypheic",
              b"II*\x00", b"MM\x00*"]


def check_sane(data: bytes, header: ImageHeader | None) -> None:
    if header is None:
        return
    assert header.needs is None or header.needs > len(data)
    assert 1 <= header.orientation <= 8
    for value in (header.width, header.height):
        assert value is None or 0 < value < 2**32
    if header.thumbnail is not None:
        offset, length = header.thumbnail
        assert 0 < offset and offset + length <= len(data)
        assert data[offset : offset + 2] == b"\xff\xd8"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data: bytes) -> None:
    check_sane(data, parse_or_none(data))


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SIGNATURES), st.binary(max_size=3000))
@example(b"\xff\xd8", b"\xff\xe1\xff\xff")  # a segment longer than the data
@example(b"II*\x00", b"\xff\xff\xff\xff")  # IFD0 offset at 4 GiB
def test_garbage_after_a_signature_never_crashes(signature: bytes, rest: bytes) -> None:
    data = signature + rest
    check_sane(data, parse_or_none(data))


CAMERA = camera_jpeg("<")
CAMERA_BE = camera_jpeg(">")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([CAMERA, CAMERA_BE]),
       st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(CAMERA)))
def test_mutated_camera_jpegs_never_crash(data: bytes, changes, cut: int) -> None:
    mutated = bytearray(data[:cut] if cut else data)
    for position, value in changes:
        if position < len(mutated):
            mutated[position] = value
    check_sane(bytes(mutated), parse_or_none(bytes(mutated)))


def test_ifd_loops_and_huge_counts_are_bounded() -> None:
    # IFD0 whose next-IFD pointer is itself, and an EXIF pointer to IFD0.
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack(
        "<HHII", 0x8769, LONG, 1, 8) + struct.pack("<I", 8)
    block = b"Exif\x00\x00" + tiff
    data = b"\xff\xd8\xff\xe1" + struct.pack(">H", len(block) + 2) + block + b"\xff\xd9"
    header = parse_image_header(data)
    assert header.thumbnail is None and header.taken is None
    huge = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 65535) + b"\x00" * 100
    assert parse_image_header(huge).width is None


@pytest.mark.parametrize("data", [b"GIF89a\x00\x00\x00\x00",
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(8)])
def test_a_zero_size_is_unknown_not_a_size(data: bytes) -> None:  # found by hypothesis in CI
    header = parse_image_header(data)
    assert (header.width, header.height) == (None, None)
