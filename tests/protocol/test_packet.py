"""Packets (PROTOCOL.md §1): encoding, tolerant parsing, payload fields, the shared fixtures."""

from __future__ import annotations

import json


import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import helpers
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.packet import Packet, body_bool, body_int, parse_packet

# JSON values as Python's json module round-trips them: finite floats only (NaN != NaN).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)
json_bodies = st.dictionaries(st.text(), json_values, max_size=8)
packet_types = st.text(min_size=1)
payload_sizes = st.none() | st.just(-1) | st.integers(min_value=1, max_value=2**63)
ids = st.integers(min_value=0, max_value=2**63)

# Strings a peer might put in a body: any code point but lone surrogates (not encodable as UTF-8),
# with the line breaks JSON must escape.
tricky_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\n\r\u2028\u2029\x00\"\\"),
)


# -- round trip -------------------------------------------------------------------------------------


@given(ptype=packet_types, body=json_bodies, pid=ids)
@example(ptype="kdeconnect.ping", body={"message": "two\nlines\r\nand \u2028 \u2029"}, pid=1)
@example(ptype="kdeconnect.ping", body={"m": "\U0001f600 é ß 中文 \x00 \x1f \x7f"}, pid=0)
@example(ptype="t", body={"nested": {"a": [1, 2.5, None, True, {"b": ""}]}}, pid=2**62)
def test_round_trip_any_body(ptype, body, pid):
    line = Packet(ptype, body).to_line(pid)
    assert line.endswith(b"\n") and line.count(b"\n") == 1, "a packet must stay on one line"
    assert b"\r" not in line
    parsed = parse_packet(line)
    assert parsed.type == ptype
    assert parsed.body == body
    assert parsed.id == pid
    assert parsed.payload_size is None and parsed.payload_transfer_info is None


@given(body=st.dictionaries(tricky_text, tricky_text, max_size=4), pid=ids)
def test_round_trip_unicode_and_newlines_in_keys_and_values(body, pid):
    line = Packet("kdeconnect.clipboard", body).to_line(pid)
    assert line.count(b"\n") == 1
    line.decode("utf-8")  # valid UTF-8
    assert parse_packet(line).body == body
    assert parse_packet(line.decode("utf-8")).body == body  # str input too


@given(size=payload_sizes.filter(lambda s: s is not None),
       info=st.dictionaries(st.text(), json_values, max_size=3), body=json_bodies)
def test_round_trip_with_payload(size, info, body):
    packet = Packet("kdeconnect.share.request", body, payload_size=size, payload_transfer_info=info)
    assert packet.has_payload
    obj = json.loads(packet.to_line(7))
    assert obj["payloadSize"] == size and type(obj["payloadSize"]) is int
    assert obj["payloadTransferInfo"] == info
    parsed = parse_packet(packet.to_line(7))
    assert parsed.payload_size == size
    assert parsed.payload_transfer_info == info
    assert parsed.has_payload


def test_zero_payload_size_is_not_sent():
    packet = Packet("kdeconnect.share.request", {"filename": "empty.txt"}, payload_size=0,
                    payload_transfer_info={"port": 1739})
    obj = json.loads(packet.to_line(1))
    assert "payloadSize" not in obj and "payloadTransferInfo" not in obj
    assert not packet.has_payload


@given(st.integers(0, 65535))
def test_an_empty_payload_port_is_sent_as_android_does_and_parses_back(port):
    packet = Packet("kdeconnect.share.request", {"filename": "empty.txt"}, empty_payload_port=port)
    obj = json.loads(packet.to_line(1))
    assert obj["payloadSize"] == 0 and obj["payloadTransferInfo"] == {"port": port}
    back = parse_packet(packet.to_line(1))
    assert back.empty_payload_port == port and not back.has_payload


def test_to_line_is_compact_with_required_fields():
    line = Packet("kdeconnect.ping").to_line(1724316000000)
    assert line == b'{"id":1724316000000,"type":"kdeconnect.ping","body":{}}\n'


def test_to_line_keeps_non_ascii_as_utf8():
    line = Packet("kdeconnect.ping", {"message": "héllo"}).to_line(1)
    assert "héllo".encode() in line


# -- parsing: what peers send --------------------------------------------------------------------------


@pytest.mark.parametrize("raw_id,expected", [
    ('"id":1724316000000,', 1724316000000),
    ('"id":"1724316000000",', "1724316000000"),
    ("", None),
    ('"id":null,', None),
    ('"id":1.5,', None),
    ('"id":true,', None),
    ('"id":[1],', None),
])
def test_id_int_string_or_absent_accepted(raw_id, expected):
    packet = parse_packet(f'{{{raw_id}"type":"kdeconnect.ping","body":{{}}}}\n')
    assert packet.id == expected
    assert packet.type == "kdeconnect.ping"


def test_unknown_top_level_keys_are_tolerated():
    packet = parse_packet(b'{"type":"kdeconnect.ping","body":{"a":1},"extra":{"x":[1]},"v":2}')
    assert packet.body == {"a": 1}


def test_line_without_newline_and_with_crlf_parse():
    assert parse_packet(b'{"type":"t","body":{}}').type == "t"
    assert parse_packet(b'{"type":"t","body":{}}\r\n').type == "t"


@pytest.mark.parametrize("line", [
    b"",
    b"\n",
    b"not json\n",
    b"{\n",
    b"[]\n",
    b"null\n",
    b"42\n",
    b'"kdeconnect.ping"\n',
    b'{"body":{}}\n',
    b'{"type":"","body":{}}\n',
    b'{"type":null,"body":{}}\n',
    b'{"type":["kdeconnect.ping"],"body":{}}\n',
    b'{"type":"kdeconnect.ping"}\n',
    b'{"type":"kdeconnect.ping","body":null}\n',
    b'{"type":"kdeconnect.ping","body":[]}\n',
    b'{"type":"kdeconnect.ping","body":"{}"}\n',
    b'\xff{"type":"kdeconnect.ping","body":{}}\n',
    b'{"type":"kdeconnect.ping","body":{"m":"\xc3"}}\n',
    b"[" * 50000,
    b'{"type":"t","body":{"n":' + b"9" * 5000 + b"}}",
])
def test_invalid_lines_raise_remote_protocol_error(line):
    with pytest.raises(RemoteProtocolError):
        parse_packet(line)


# -- payloadSize rules --------------------------------------------------------------------------------


def with_payload(size_json: str, info_json: str | None = '{"port":1739}') -> str:
    info = f',"payloadTransferInfo":{info_json}' if info_json is not None else ""
    return f'{{"type":"kdeconnect.share.request","body":{{}},"payloadSize":{size_json}{info}}}'


def test_payload_size_zero_means_no_payload():
    packet = parse_packet(with_payload("0"))
    assert packet.payload_size is None and packet.payload_transfer_info is None
    assert not packet.has_payload
    # Even without payloadTransferInfo (KDE omits both for an empty file).
    assert not parse_packet(with_payload("0", None)).has_payload


def test_payload_size_minus_one_is_unknown_length():
    packet = parse_packet(with_payload("-1"))
    assert packet.payload_size == -1 and packet.has_payload
    assert packet.payload_transfer_info == {"port": 1739}


def test_payload_size_positive():
    packet = parse_packet(with_payload("48213"))
    assert packet.payload_size == 48213 and packet.payload_transfer_info == {"port": 1739}


@pytest.mark.parametrize("size", ['"48213"', "48213.0", "1.5", "true", "false", "[1]", "{}", "-2",
                                  "-100"])
def test_payload_size_must_be_an_integer_at_least_minus_one(size):
    with pytest.raises(RemoteProtocolError):
        parse_packet(with_payload(size))


@pytest.mark.parametrize("info", [None, "null", "[]", '"port"', "1739"])
def test_payload_size_without_transfer_info_object_is_rejected(info):
    with pytest.raises(RemoteProtocolError):
        parse_packet(with_payload("100", info))


def test_transfer_info_without_size_is_ignored():
    packet = parse_packet('{"type":"t","body":{},"payloadTransferInfo":{"port":1739}}')
    assert packet.payload_size is None and packet.payload_transfer_info is None
    packet = parse_packet('{"type":"t","body":{},"payloadSize":null,"payloadTransferInfo":{}}')
    assert not packet.has_payload


# -- robustness ---------------------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
@example(b'{"type":"t","body":{}}')
@example(b"\xed\xa0\x80")  # encoded surrogate
def test_arbitrary_bytes_parse_or_raise_remote_protocol_error(data):
    try:
        packet = parse_packet(data)
    except RemoteProtocolError:
        return
    assert isinstance(packet.type, str) and packet.type and isinstance(packet.body, dict)


@given(st.dictionaries(st.sampled_from(["id", "type", "body", "payloadSize", "payloadTransferInfo",
                                        "other"]), json_values))
def test_arbitrary_top_level_objects_parse_or_raise_remote_protocol_error(obj):
    line = json.dumps(obj)
    try:
        packet = parse_packet(line)
    except RemoteProtocolError:
        return
    assert packet.type == obj["type"] and packet.body == obj["body"]
    if packet.payload_size is not None:
        assert isinstance(packet.payload_size, int) and packet.payload_size >= -1
        assert packet.payload_size != 0
        assert isinstance(packet.payload_transfer_info, dict)
    # What we accepted we can send again.
    assert parse_packet(packet.to_line(1)).body == packet.body


# -- body helpers (tolerance of §10.8) --------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), ("true", True), ("TRUE", True), (" true ", True),
    ("false", False), ("yes", False), ("", False), (None, False), (1, True), (0, False),
    ([], False), ({}, False),
])
def test_body_bool(value, expected):
    assert body_bool(value) is expected


@pytest.mark.parametrize("value,expected", [
    (8, 8), ("8", 8), (" 42 ", 42), (3.0, 3), (3.5, None), ("x", None), (None, None),
    (True, None), (False, None), ([1], None), ("9" * 5000, None), (float("inf"), None),
    (float("nan"), None),
])
def test_body_int(value, expected):
    assert body_int(value) == expected


@given(json_values)
def test_body_int_and_bool_never_raise(value):
    result = body_int(value, default=-12345)
    assert result == -12345 or (isinstance(result, int) and not isinstance(result, bool))
    assert body_bool(value) in (True, False)


# -- the shared fixtures ------------------------------------------------------------------------------


FIXTURE_LINES = helpers.sample_lines()


def test_fixture_file_has_the_documented_lines():
    assert len(FIXTURE_LINES) == 91


@pytest.mark.parametrize("line", FIXTURE_LINES, ids=lambda line: json.loads(line)["type"])
def test_every_fixture_line_parses_and_round_trips(line):
    packet = parse_packet(line)
    obj = json.loads(line)
    assert packet.type == obj["type"]
    assert packet.body == obj["body"]
    assert packet.id == obj["id"]
    if obj.get("payloadSize"):
        assert packet.has_payload
        assert 1739 <= packet.payload_transfer_info["port"] <= 1764
    again = parse_packet(packet.to_line(obj["id"]))
    assert again == packet


def test_fixture_types_cover_the_protocol():
    kinds = {parse_packet(line).type for line in FIXTURE_LINES}
    assert len(kinds) == 46
    assert {"kdeconnect.identity", "kdeconnect.pair", "kdeconnect.ping"} <= kinds
