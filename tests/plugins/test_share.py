"""The share plugin's pure parts: the file-name sanitiser and share packet parsing (hypothesis)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.plugins.share import (
    MAX_NAME_BYTES,
    FileShare,
    TextShare,
    UrlShare,
    numbered,
    parse_share,
    place,
    safe_filename,
)
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
            *(f"LPT{i}" for i in range(1, 10))}


def assert_safe(name: str) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    assert not any(c in '<>:"|?*' for c in name)
    assert len(numbered(name, 9999).encode("utf-8")) <= MAX_NAME_BYTES
    assert name.split(".")[0].strip().upper() not in RESERVED
    assert not name.endswith((".", " "))
    name.encode("utf-8")  # no lone surrogates


@given(st.text(max_size=600))
@settings(max_examples=500)
def test_any_text_becomes_a_safe_name(raw: str) -> None:
    assert_safe(safe_filename(raw))


@given(st.lists(st.sampled_from(["..", ".", "a", "/", "\\", "C:", "\x00", "CON", "é", " "]),
                max_size=12))
def test_path_like_names_never_keep_a_separator(parts: list[str]) -> None:
    assert_safe(safe_filename("".join(parts)))


@given(st.text(min_size=1, max_size=40).filter(lambda s: safe_filename(s) == s))
def test_safe_names_are_kept_as_they_are(name: str) -> None:
    assert safe_filename(name) == name


@pytest.mark.parametrize("raw, safe", [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "passwd"),
    ("/abs/path/file.txt", "file.txt"),
    ("C:\\Users\\x\\doc.pdf", "doc.pdf"),
    ("D:x.txt", "D_x.txt"),
    ("CON", "_CON"), ("con.txt", "_con.txt"), ("LPT1.log", "_LPT1.log"), ("CONSOLE.txt", "CONSOLE.txt"),
    ("a\x00b.txt", "ab.txt"), ("tab\there", "tabhere"),
    ("trailing. . ", "trailing"), ("..", "received-file"), ("", "received-file"),
    ("\u202egnp.exe", "gnp.exe"),
    (None, "received-file"), (42, "received-file"),
])
def test_known_names(raw: object, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_filename("é" * 300 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= MAX_NAME_BYTES
    assert len(numbered(name, 123).encode()) <= MAX_NAME_BYTES + 16


def test_numbered() -> None:
    assert numbered("a.txt", 0) == "a.txt"
    assert numbered("a.txt", 2) == "a (2).txt"
    assert numbered("archive", 1) == "archive (1)"
    assert numbered(".bashrc", 1) == ".bashrc (1)"


def test_place_never_overwrites(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("old")
    for i in range(3):
        part = tmp_path / f".{i}.part"
        part.write_text(str(i))
        place(part, tmp_path, "a.txt")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [(tmp_path / f"a ({i}).txt").read_text() for i in (1, 2, 3)] == ["0", "1", "2"]
    assert not list(tmp_path.glob("*.part"))


def share(body: dict, size: int | None = None) -> Packet:
    return Packet(types.SHARE_REQUEST, body, payload_size=size,
                  payload_transfer_info={"port": 1739} if size else None)


def test_parse_kde_file_packet() -> None:
    got = parse_share(share({"filename": "a.bin", "lastModified": 1724315000000, "numberOfFiles": 3,
                             "totalPayloadSize": 900, "open": False, "creationTime": 1}, 300))
    assert got == FileShare("a.bin", 300, 1724315000000, 3, 900, False)


def test_parse_gsconnect_file_packet_without_counts() -> None:
    got = parse_share(share({"filename": "g.bin", "open": False}, 307226))
    assert got == FileShare("g.bin", 307226, None, 1, None, False)


def test_parse_empty_file_strings_and_order() -> None:
    got = parse_share(share({"filename": "e", "numberOfFiles": "2", "totalPayloadSize": "5",
                             "lastModified": "12", "text": "ignored"}))
    assert got == FileShare("e", 0, 12, 2, 5, False)
    assert parse_share(share({"text": "hi", "url": "https://x"})) == TextShare("hi")
    assert parse_share(share({"url": " https://x "})) == UrlShare("https://x")
    assert parse_share(share({"url": "  "})) is None
    assert parse_share(share({})) is None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["filename", "text", "url", "lastModified", "numberOfFiles",
                                        "totalPayloadSize", "open", "x"]), JSONISH, max_size=6),
       st.one_of(st.none(), st.integers(min_value=-1, max_value=2**62)))
@settings(max_examples=500)
def test_parsing_never_raises_and_gives_sane_values(body: dict, size: int | None) -> None:
    got = parse_share(share(body, size))
    if isinstance(got, FileShare):
        assert_safe(got.name)
        assert got.size >= -1 and got.number_of_files >= 1
        assert got.total_size is None or got.total_size >= 0
        assert got.last_modified is None or 0 <= got.last_modified < 2**53
    elif isinstance(got, TextShare):
        assert isinstance(got.text, str)
    elif isinstance(got, UrlShare):
        assert got.url and got.url == got.url.strip()
    else:
        assert got is None


def test_on_this_file_system_a_sanitised_name_can_be_created(tmp_path) -> None:
    for raw in ["a" * 1000, "é" * 200 + ".txt", "x/../../y", "\x7f\x01.txt", "日本語" * 50]:
        name = numbered(safe_filename(raw), 99)
        (tmp_path / name).write_bytes(b"")
        assert os.path.dirname(os.path.realpath(tmp_path / name)) == os.path.realpath(tmp_path)


async def test_files_read_back_to_back_give_exactly_their_announced_bytes(tmp_path) -> None:
    from phonebridge.plugins.share import BUNDLE_CHUNK, read_back_to_back

    sizes = [0, 10, BUNDLE_CHUNK + 5, 3, 0]
    files = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"f{n}"
        path.write_bytes(os.urandom(size) + b"extra")  # grew since it was announced
        files.append((path, size))
    chunks = [c async for c in read_back_to_back(files)]
    assert all(len(c) <= BUNDLE_CHUNK for c in chunks)
    assert b"".join(chunks) == b"".join(p.read_bytes()[:s] for p, s in files)

    with pytest.raises(OSError, match="became shorter"):
        [c async for c in read_back_to_back([(files[1][0], 10_000)])]
