"""protocol/bundle.py: the bundle packet's parser and builder, the splitter and the planner."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.protocol import types
from phonebridge.protocol.bundle import (
    MAX_FILES,
    SEND_MAX_BYTES,
    SEND_MAX_FILE,
    SEND_MAX_FILES,
    BundleError,
    BundleFile,
    Splitter,
    bundle_packet,
    parse_bundle,
    plan_bundles,
)
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.packet import Packet, parse_packet

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
files_strategy = st.lists(
    st.builds(BundleFile, st.text(max_size=40), st.integers(0, 10**6),
              st.none() | st.integers(0, 2**53 - 1)),
    min_size=1, max_size=30,
)


def on_the_wire(packet: Packet, payload_size: int) -> Packet:
    """The packet as a receiver parses it (with a port when it carries bytes)."""
    if payload_size:
        packet = Packet(packet.type, packet.body, payload_size=payload_size,
                        payload_transfer_info={"port": 1739})
    return parse_packet(packet.to_line(1))


@given(files_strategy, st.integers(1, 10**4), st.integers(0, 10**12))
def test_what_is_built_parses_back_to_the_same_files(files, count, total) -> None:
    size = sum(f.size for f in files)
    parsed = parse_bundle(on_the_wire(bundle_packet(files, count, total), size))
    assert parsed == files


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6),
       st.none() | st.integers(-1, 10**9))
@settings(max_examples=500)
def test_any_body_parses_or_raises_bundle_error(body, payload_size) -> None:
    packet = Packet(types.SHARE_BUNDLE, body, payload_size=payload_size,
                    payload_transfer_info={"port": 1739} if payload_size is not None else None)
    try:
        files = parse_bundle(packet)
    except BundleError:
        return
    assert 1 <= len(files) <= MAX_FILES
    assert all(isinstance(f.size, int) and f.size >= 0 for f in files)
    assert sum(f.size for f in files) == (payload_size if packet.has_payload else 0)


@given(st.lists(json_values, max_size=8), st.integers(0, 10**6))
@settings(max_examples=300)
def test_any_files_list_parses_or_raises_bundle_error(entries, payload_size) -> None:
    try:
        packet = parse_packet(json.dumps({
            "id": 1, "type": types.SHARE_BUNDLE, "body": {"files": entries},
            "payloadSize": payload_size, "payloadTransferInfo": {"port": 1739}}))
    except RemoteProtocolError:
        return
    try:
        parse_bundle(packet)
    except BundleError:
        pass


@pytest.mark.parametrize("body, size, why", [
    ({}, 0, "not a non-empty list"),
    ({"files": []}, 0, "not a non-empty list"),
    ({"files": "a.txt"}, 0, "not a non-empty list"),
    ({"files": [1]}, 0, "not an object"),
    ({"files": [{"filename": "a", "size": -1}]}, 0, "integer >= 0"),
    ({"files": [{"filename": "a", "size": "5"}]}, 5, "integer >= 0"),
    ({"files": [{"filename": "a", "size": True}]}, 1, "integer >= 0"),
    ({"files": [{"filename": "a", "size": 5.0}]}, 5, "integer >= 0"),
    ({"files": [{"filename": "a", "size": 10}]}, 5, "add up to 10 bytes, the payload is 5"),
    ({"files": [{"filename": "a", "size": 10}]}, 0, "add up to 10 bytes, the payload is 0"),
    ({"files": [{"filename": "a", "size": 0}]}, 7, "add up to 0 bytes, the payload is 7"),
    ({"files": [{"filename": "a", "size": 0}] * (MAX_FILES + 1)}, 0, "at most"),
])
def test_bad_bundles_say_why(body, size, why) -> None:
    packet = Packet(types.SHARE_BUNDLE, body, payload_size=size or None,
                    payload_transfer_info={"port": 1739} if size else None)
    with pytest.raises(BundleError, match=why):
        parse_bundle(packet)


def test_an_out_of_range_date_is_dropped_not_fatal() -> None:
    packet = Packet(types.SHARE_BUNDLE, {"files": [
        {"filename": "a", "size": 0, "lastModified": -5},
        {"filename": "b", "size": 0, "lastModified": 2**60},
        {"filename": "c", "size": 0, "lastModified": "1700000000000"},
    ]})
    assert [f.last_modified for f in parse_bundle(packet)] == [None, None, 1700000000000]


@given(st.lists(st.integers(0, 300), max_size=40), st.data())
@settings(max_examples=400)
def test_splitter_gives_each_file_exactly_its_bytes(sizes, data) -> None:
    stream = bytes(i % 251 for i in range(sum(sizes) + 17))  # 17 bytes too many at the end
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    splitter = Splitter(sizes)
    got: dict[int, bytearray] = {}
    completed: list[int] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        for index, piece, complete in splitter.feed(stream[previous:cut]):
            assert index not in completed
            got.setdefault(index, bytearray()).extend(piece)
            if complete:
                completed.append(index)
        previous = cut
    assert completed == list(range(len(sizes)))
    assert splitter.done and splitter.surplus == 17
    offset = 0
    for index, size in enumerate(sizes):
        assert bytes(got[index]) == stream[offset:offset + size]
        offset += size


def test_empty_files_complete_as_soon_as_the_stream_reaches_them() -> None:
    splitter = Splitter([0, 0, 3, 0])
    assert [(i, bytes(p), c) for i, p, c in splitter.feed(b"")] == [(0, b"", True), (1, b"", True)]
    assert [(i, bytes(p), c) for i, p, c in splitter.feed(b"ab")] == [(2, b"ab", False)]
    assert [(i, bytes(p), c) for i, p, c in splitter.feed(b"c")] == [(2, b"c", True),
                                                                     (3, b"", True)]
    assert splitter.done and splitter.feed(b"") == []


@given(st.lists(st.integers(0, 2 * SEND_MAX_FILE), max_size=3000))
@settings(max_examples=200)
def test_plan_keeps_order_and_respects_the_limits(sizes) -> None:
    groups = plan_bundles(sizes)
    assert [i for group in groups for i in group] == list(range(len(sizes)))
    for group in groups:
        if len(group) > 1:
            assert len(group) <= SEND_MAX_FILES
            assert sum(sizes[i] for i in group) <= SEND_MAX_BYTES
            assert all(sizes[i] <= SEND_MAX_FILE for i in group)
