"""Identity packets (PROTOCOL.md §2, §5): device ids, names, types, ports, versions."""

from __future__ import annotations

import json
import string
import unicodedata


import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import helpers
from phonebridge.protocol import types
from phonebridge.protocol.constants import DEVICE_TYPES
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.identity import (
    Identity,
    is_valid_device_id,
    new_device_id,
    parse_identity,
    sanitize_device_name,
)
from phonebridge.protocol.packet import Packet, parse_packet

ID_CHARS = string.ascii_letters + string.digits + "_-"
FORBIDDEN = "\"',;:.!?()[]<>"
GOOD_ID = "3f2a9c0d4e5b46a7b8c9d0e1f2a3b4c5"


def identity(**overrides) -> Packet:
    body = helpers.identity_body(GOOD_ID, name="Pixel 8")
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return Packet(types.IDENTITY, body)


# -- the shared fixtures ------------------------------------------------------------------------------


IDENTITY_LINES = [line for line in helpers.sample_lines()
                  if json.loads(line)["type"] == types.IDENTITY]


def test_fixture_has_the_four_identity_shapes():
    assert len(IDENTITY_LINES) == 4


@pytest.mark.parametrize("line", IDENTITY_LINES, ids=["udp", "kde-tcp", "android-tcp", "tls"])
def test_every_fixture_identity_parses(line):
    obj = json.loads(line)["body"]
    ident = parse_identity(parse_packet(line))
    assert ident.device_id == obj["deviceId"]
    assert ident.name == obj["deviceName"]
    assert ident.device_type == obj["deviceType"]
    assert ident.protocol_version == 8
    assert ident.incoming == frozenset(obj["incomingCapabilities"])
    assert ident.outgoing == frozenset(obj["outgoingCapabilities"])
    assert ident.tcp_port == obj.get("tcpPort")
    assert ident.target_device_id == obj.get("targetDeviceId")
    if "targetProtocolVersion" in obj:
        # Android sends it as the string "8" (§2): parsed as the integer.
        assert ident.target_protocol_version == 8
    else:
        assert ident.target_protocol_version is None


def test_android_string_target_protocol_version():
    (android,) = [line for line in IDENTITY_LINES
                  if isinstance(json.loads(line)["body"].get("targetProtocolVersion"), str)]
    assert parse_identity(parse_packet(android)).target_protocol_version == 8


def test_udp_fixture_identity_has_its_port():
    (udp,) = [line for line in IDENTITY_LINES if "tcpPort" in json.loads(line)["body"]]
    assert parse_identity(parse_packet(udp), require_tcp_port=True).tcp_port == 1716


# -- device ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device_id", [
    GOOD_ID,
    "a" * 32,
    "Z" * 38,
    "740bd4b9_b418_4ee4_97d6_caf1da8151be",  # old Android
    "_3f2a9c0d_4e5b_46a7_b8c9_d0e1f2a3b4c5_",  # old KDE, braced UUID
    "3f2a9c0d-4e5b-46a7-b8c9-d0e1f2a3b4c5",  # hyphens pass the regex
])
def test_valid_device_ids(device_id):
    assert is_valid_device_id(device_id)
    assert parse_identity(identity(deviceId=device_id)).device_id == device_id


@pytest.mark.parametrize("device_id", [
    "a" * 31, "a" * 39, "", "0123456789abcdef",  # old 16-hex Android
    GOOD_ID[:-1] + ".", GOOD_ID[:-1] + " ", GOOD_ID[:-1] + "é", GOOD_ID + "\n",
    "{3f2a9c0d-4e5b-46a7-b8c9-d0e1f2a3b4c5}", GOOD_ID[:-1] + "\u0661",
    12345678901234567890123456789012, ["a" * 32], True,
])
def test_invalid_device_ids(device_id):
    assert not is_valid_device_id(device_id)
    with pytest.raises(RemoteProtocolError):
        parse_identity(identity(deviceId=device_id))


def test_missing_device_id():
    with pytest.raises(RemoteProtocolError):
        parse_identity(identity(deviceId=None))


@given(st.text(max_size=45) | st.text(alphabet=ID_CHARS, min_size=28, max_size=42))
@example("a" * 32 + "\n")
def test_device_id_rule(value):
    expected = 32 <= len(value) <= 38 and all(c in ID_CHARS for c in value)
    assert is_valid_device_id(value) is expected


def test_new_device_id_is_32_lowercase_hex():
    ids = {new_device_id() for _ in range(50)}
    assert len(ids) == 50
    for device_id in ids:
        assert len(device_id) == 32 and set(device_id) <= set("0123456789abcdef")
        assert is_valid_device_id(device_id)


# -- device names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [
    ("Pixel 8", "Pixel 8"),
    ('Pixel "8" (Pro)!', "Pixel 8 Pro"),
    ("John's phone; <b>", "Johns phone b"),
    ("a.b,c:d?e!f[g]h<i>j", "abcdefghij"),
    ("  spaced  ", "spaced"),
    ("tab\there\x00\x1f\x7f", "tabhere"),
    ("line\nbreak\r", "linebreak"),
    ("x" * 40, "x" * 32),
    ("ü" * 33, "ü" * 32),
    ("日本語の電話", "日本語の電話"),
    ("(" * 10 + "ok" + ")" * 10, "ok"),
    ("a" * 31 + " b", "a" * 31),  # cut at 32 leaves a trailing space: trimmed
])
def test_sanitize_device_name(raw, expected):
    assert sanitize_device_name(raw) == expected
    assert parse_identity(identity(deviceName=raw)).name == expected


@pytest.mark.parametrize("raw", ["", "   ", "\"',;:.!?()[]<>", "\x00\x01\n\t", "(( ))", 42, None,
                                 ["name"], {"n": 1}])
def test_empty_or_invalid_name_makes_the_identity_invalid(raw):
    with pytest.raises(RemoteProtocolError):
        parse_identity(identity(deviceName=raw) if raw is not None else identity(deviceName=None))


@given(st.text())
@example("\x85\u2028 name \u200b")
def test_sanitized_names_are_safe(raw):
    name = sanitize_device_name(raw)
    assert len(name) <= 32
    assert not set(name) & set(FORBIDDEN)
    assert not any(unicodedata.category(c) == "Cc" for c in name)
    assert name == name.strip()
    assert sanitize_device_name(name) == name, "sanitising is idempotent"


@given(st.text(alphabet=string.ascii_letters + string.digits + " -_", min_size=1, max_size=32)
       .map(str.strip).filter(bool))
def test_plain_names_are_kept(raw):
    assert sanitize_device_name(raw) == raw


# -- device types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [
    *[(t, t) for t in DEVICE_TYPES],
    ("smartphone", "phone"),
    ("toaster", "desktop"),
    ("", "desktop"),
    (None, "desktop"),
    (3, "desktop"),
    (["phone"], "desktop"),
])
def test_device_type(raw, expected):
    packet = identity(deviceType=raw) if raw is not None else identity(deviceType=None)
    assert parse_identity(packet).device_type == expected


# -- ports and versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1716, 1740, 1764, "1716"])
def test_tcp_port_in_range(port):
    assert parse_identity(identity(tcpPort=port), require_tcp_port=True).tcp_port == int(port)


@pytest.mark.parametrize("port", [1715, 1765, 0, -1, 65535, 80, "1715"])
def test_tcp_port_outside_1716_1764_rejected(port):
    with pytest.raises(RemoteProtocolError):
        parse_identity(identity(tcpPort=port))


def test_udp_identity_requires_tcp_port():
    with pytest.raises(RemoteProtocolError):
        parse_identity(identity(), require_tcp_port=True)
    assert parse_identity(identity()).tcp_port is None


@pytest.mark.parametrize("version,expected", [(7, 7), (8, 8), ("8", 8), ("7", 7), (9, 9)])
def test_supported_protocol_versions(version, expected):
    assert parse_identity(identity(protocolVersion=version)).protocol_version == expected


@pytest.mark.parametrize("version", [6, 1, 0, -8, "6", "eight", None, 7.5, True, [8], {"v": 8}])
def test_protocol_version_below_7_or_invalid_rejected(version):
    packet = identity(protocolVersion=version) if version is not None else identity(
        protocolVersion=None)
    with pytest.raises(RemoteProtocolError):
        parse_identity(packet)


def test_not_an_identity_packet():
    with pytest.raises(RemoteProtocolError):
        parse_identity(Packet(types.PING, helpers.identity_body(GOOD_ID)))


def test_capabilities_keep_only_strings():
    ident = parse_identity(identity(incomingCapabilities=["a", 1, None, "b"],
                                    outgoingCapabilities="kdeconnect.ping"))
    assert ident.incoming == {"a", "b"}
    assert ident.outgoing == frozenset()


def test_target_fields():
    ident = parse_identity(identity(targetDeviceId="b" * 32, targetProtocolVersion="8"))
    assert ident.target_device_id == "b" * 32 and ident.target_protocol_version == 8
    ident = parse_identity(identity(targetDeviceId=5, targetProtocolVersion="x"))
    assert ident.target_device_id is None and ident.target_protocol_version is None


# -- our own identity -----------------------------------------------------------------------------------


def test_to_packet_round_trips():
    ours = Identity(GOOD_ID, "Desk", "desktop", 8, frozenset({"kdeconnect.ping"}),
                    frozenset({"kdeconnect.ping", "kdeconnect.battery"}), tcp_port=1716)
    peer = Identity("c" * 32, "Phone", "phone", 7)
    udp = ours.to_packet(with_tcp_port=True)
    assert parse_identity(parse_packet(udp.to_line(1)), require_tcp_port=True) == ours
    tcp = ours.to_packet(target=peer)
    body = tcp.body
    assert "tcpPort" not in body
    assert body["targetDeviceId"] == peer.device_id and body["targetProtocolVersion"] == 7
    tls = ours.to_packet()
    assert not {"tcpPort", "targetDeviceId", "targetProtocolVersion"} & set(tls.body)
    assert tls.body["incomingCapabilities"] == ["kdeconnect.ping"]
    assert tls.body["outgoingCapabilities"] == ["kdeconnect.battery", "kdeconnect.ping"]
    assert ours.with_port(1730).tcp_port == 1730


# -- robustness --------------------------------------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | st.sampled_from([GOOD_ID, "8", "7", "1716", "smartphone", "phone", "x" * 5000, "9" * 5000]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                      max_size=3),
    max_leaves=8,
)
identity_keys = st.sampled_from([
    "deviceId", "deviceName", "deviceType", "protocolVersion", "incomingCapabilities",
    "outgoingCapabilities", "tcpPort", "targetDeviceId", "targetProtocolVersion", "other",
])


@given(st.dictionaries(identity_keys, json_values),
       st.fixed_dictionaries({}, optional={"deviceId": st.just(GOOD_ID),
                                           "deviceName": st.just("ok"),
                                           "protocolVersion": st.sampled_from([7, 8, "8"])}),
       st.booleans())
def test_random_identity_bodies_only_raise_remote_protocol_error(random_body, good_fields, udp):
    body = {**random_body, **good_fields}
    try:
        ident = parse_identity(Packet(types.IDENTITY, body), require_tcp_port=udp)
    except RemoteProtocolError:
        return
    assert is_valid_device_id(ident.device_id)
    assert ident.name and ident.name == sanitize_device_name(ident.name)
    assert ident.device_type in DEVICE_TYPES
    assert isinstance(ident.protocol_version, int) and ident.protocol_version >= 7
    assert ident.tcp_port is None or 1716 <= ident.tcp_port <= 1764
    assert not udp or ident.tcp_port is not None
    assert all(isinstance(c, str) for c in ident.incoming | ident.outgoing)
