"""LineFramer (PROTOCOL.md §1): however the bytes arrive, the same packets come out."""

from __future__ import annotations



import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from phonebridge.protocol.constants import MAX_IDENTITY_LINE, MAX_LINE
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.framing import BadLine, LineFramer
from phonebridge.protocol.packet import Packet, parse_packet

text_no_surrogates = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
bodies = st.dictionaries(text_no_surrogates, text_no_surrogates | st.integers() | st.booleans(),
                         max_size=4)
good_lines = st.builds(
    lambda t, b, i: Packet(t, b).to_line(i),
    st.sampled_from(["kdeconnect.ping", "kdeconnect.battery", "kdeconnect.clipboard", "x.y"]),
    bodies,
    st.integers(min_value=0, max_value=2**53),
)
garbage_lines = st.sampled_from([
    b"not json\n", b"{\n", b"[1,2]\n", b'{"type":"t"}\n', b"\xff\xfe\n", b'{"body":{}}\n',
    b'{"type":"t","body":{},"payloadSize":5}\n', b"null\n",
]) | st.binary(max_size=40).filter(lambda b: b"\n" not in b).map(lambda b: b + b"\n")
blank_lines = st.sampled_from([b"\n", b"  \n", b"\r\n", b"\t\n"])
streams = st.lists(good_lines | garbage_lines | blank_lines, max_size=12).map(b"".join)


def feed_all(framer: LineFramer, chunks: list[bytes]) -> list[Packet | BadLine]:
    out: list[Packet | BadLine] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=60)
@given(stream=streams, data=st.data())
def test_whole_bytewise_and_random_splits_give_the_same_packets(stream, data):
    expected = helpers.parse_all(stream)
    whole = LineFramer().feed(stream)
    bytewise = feed_all(LineFramer(), [stream[i:i + 1] for i in range(len(stream))])
    cuts = data.draw(st.lists(st.integers(0, max(len(stream), 1)), max_size=10))
    random_split = feed_all(LineFramer(), split_at(stream, cuts))
    assert whole == expected
    assert bytewise == expected
    assert random_split == expected


@given(lines=st.lists(good_lines, min_size=1, max_size=8), data=st.data())
def test_concatenated_lines_split_anywhere(lines, data):
    stream = b"".join(lines)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    framer = LineFramer()
    got = feed_all(framer, split_at(stream, cuts))
    assert got == [parse_packet(line) for line in lines]
    assert framer.buffered == 0


def test_partial_line_is_kept_until_its_newline():
    framer = LineFramer()
    line = Packet("kdeconnect.ping", {"message": "hi"}).to_line(1)
    assert framer.feed(line[:10]) == []
    assert framer.buffered == 10
    assert framer.feed(line[10:-1]) == []
    assert framer.feed(b"\n" + line[:3]) == [parse_packet(line)]
    assert framer.buffered == 3


def test_fixture_file_whole_and_bytewise():
    stream = b"".join(helpers.sample_lines())
    expected = [parse_packet(line) for line in helpers.sample_lines()]
    assert LineFramer().feed(stream) == expected
    assert feed_all(LineFramer(), [stream[i:i + 1] for i in range(len(stream))]) == expected
    assert feed_all(LineFramer(), [stream[i:i + 777] for i in range(0, len(stream), 777)]) == expected


def test_garbage_lines_are_reported_and_do_not_stop_later_lines():
    ping = Packet("kdeconnect.ping").to_line(1)
    framer = LineFramer()
    out = framer.feed(b"garbage\n" + ping + b"\xff\n" + b'{"type":"t"}\n' + ping)
    assert [type(item) for item in out] == [BadLine, Packet, BadLine, BadLine, Packet]
    assert out[0].size == len(b"garbage")
    assert all(item.reason for item in out if isinstance(item, BadLine))


def test_blank_lines_are_skipped():
    ping = Packet("kdeconnect.ping").to_line(1)
    assert LineFramer().feed(b"\n\r\n  \n" + ping + b"\n") == [parse_packet(ping)]


# -- the size limit ------------------------------------------------------------------------------------


def padded_line(size: int) -> bytes:
    """A valid packet line of exactly `size` bytes before its newline."""
    base = Packet("kdeconnect.ping", {"message": ""}).to_line(1)
    body = Packet("kdeconnect.ping", {"message": "x" * (size - (len(base) - 1))}).to_line(1)
    assert len(body) == size + 1
    return body


@pytest.mark.parametrize("limit", [64, 200, MAX_IDENTITY_LINE])
def test_line_of_exactly_max_line_is_accepted(limit):
    line = padded_line(limit)
    assert LineFramer(limit).feed(line) == [parse_packet(line)]
    framer = LineFramer(limit)
    assert feed_all(framer, [line[i:i + 1] for i in range(len(line))]) == [parse_packet(line)]


@pytest.mark.parametrize("limit", [64, 200, MAX_IDENTITY_LINE])
def test_line_over_max_line_raises_whole(limit):
    with pytest.raises(RemoteProtocolError):
        LineFramer(limit).feed(padded_line(limit + 1))


@pytest.mark.parametrize("limit", [64, 200])
def test_line_over_max_line_raises_bytewise_before_its_newline(limit):
    framer = LineFramer(limit)
    line = padded_line(limit + 1)
    for i in range(limit):
        framer.feed(line[i:i + 1])
    with pytest.raises(RemoteProtocolError):
        framer.feed(line[limit:limit + 1])  # byte limit+1, still no newline


def test_endless_line_without_newline_raises():
    framer = LineFramer(1000)
    framer.feed(b"{" + b" " * 998)
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"  ")


def test_oversize_line_after_good_lines_in_one_chunk_raises():
    ping = Packet("kdeconnect.ping").to_line(1)
    with pytest.raises(RemoteProtocolError):
        LineFramer(100).feed(ping + b"x" * 200 + b"\n")


@settings(max_examples=50)
@given(size=st.integers(1, 300), limit=st.integers(60, 250), data=st.data())
def test_limit_is_enforced_however_the_line_is_split(size, limit, data):
    line = (b"x" * size) + b"\n"
    cuts = data.draw(st.lists(st.integers(0, len(line)), max_size=6))
    framer = LineFramer(limit)
    if size > limit:
        with pytest.raises(RemoteProtocolError):
            feed_all(framer, split_at(line, cuts))
    else:
        out = feed_all(framer, split_at(line, cuts))
        assert len(out) == 1 and isinstance(out[0], BadLine)


def test_default_limit_is_32_mib():
    assert MAX_LINE == 32 * 1024 * 1024
    assert LineFramer().max_line == MAX_LINE
    assert MAX_IDENTITY_LINE == 8192


def test_limit_can_grow_after_the_identity():
    """The transport reads the identity with 8192 and then raises the framer's limit."""
    framer = LineFramer(MAX_IDENTITY_LINE)
    big = padded_line(MAX_IDENTITY_LINE * 2)
    framer.feed(big[:MAX_IDENTITY_LINE])
    framer.max_line = MAX_LINE
    assert framer.feed(big[MAX_IDENTITY_LINE:]) == [parse_packet(big)]
