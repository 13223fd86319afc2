"""Bad input from a hostile peer, over real TLS on 127.0.0.1 against an in-process Daemon.

What must hold (device_manager.py rules, PROTOCOL.md §1, §4.4, §5, §6.2): a bad packet costs that
packet, a framing or TLS error costs that link, nothing a peer does blocks other peers, unpaired
devices cannot deliver data, and a paired device is pinned to its certificate and version.
"""

from __future__ import annotations

import asyncio
import json
import time


import pytest

import helpers
from helpers import PeerCert, RawPeer, device_json, packet_line, read_until_eof, wait_for
from phonebridge.protocol import types
from phonebridge.protocol.certs import sha256_fingerprint
from phonebridge.protocol.constants import MAX_IDENTITY_LINE
from phonebridge.store.devices import DeviceRepository
from phonebridge.transports.lan.tls import TlsStream

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def peers():
    made: list[RawPeer] = []
    try:
        yield made
    finally:
        for peer in made:
            await peer.close()


async def linked_peer(daemon, peers: list[RawPeer], peer: RawPeer | None = None, **connect) -> RawPeer:
    peer = peer or RawPeer()
    peers.append(peer)
    await peer.connect(daemon.provider.tcp_port, **connect)
    await wait_for(lambda: daemon.manager.is_linked(peer.device_id), what="peer linked")
    return peer


async def paired_peer(daemon, peers: list[RawPeer], **kwargs) -> RawPeer:
    peer = await linked_peer(daemon, peers, **kwargs)
    await helpers.pair_raw(daemon, peer)
    return peer


async def assert_ping_delivered(daemon, peer: RawPeer, message: str) -> None:
    await peer.send(types.PING, {"message": message})
    await wait_for(lambda: (peer.name, message) in daemon.desktop.notifications,
                   what=f"ping {message!r} delivered")


async def assert_daemon_serves_new_peer(daemon, peers: list[RawPeer]) -> RawPeer:
    peer = await linked_peer(daemon, peers, RawPeer(name="Second Phone"))
    await helpers.pair_raw(daemon, peer)
    await assert_ping_delivered(daemon, peer, "second peer works")
    return peer


def refused(daemon, device_id: str) -> bool:
    device = daemon.manager.devices.get(device_id)
    return device is None or not device.is_reachable


# -- malformed packets on an established link ------------------------------------------------------

MALFORMED_LINES = [
    b"{not json\n",
    b"\xff\xfe\xfd garbage that is not UTF-8\n",
    b"[1, 2, 3]\n",
    b'"just a string"\n',
    b'{"type": "kdeconnect.ping"}\n',  # no body
    b'{"type": "kdeconnect.ping", "body": []}\n',
    b'{"type": 42, "body": {}}\n',
    b'{"body": {}}\n',
    b'{"type": "kdeconnect.ping", "body": {}, "payloadSize": "12"}\n',
    b'{"type": "kdeconnect.ping", "body": {}, "payloadSize": 12}\n',  # no payloadTransferInfo
    b'{"type": "kdeconnect.ping", "body": {}, "payloadSize": -5, "payloadTransferInfo": {}}\n',
    b"[" * 100000 + b"\n",  # nesting bomb
    b"\x00\x00\x00\n",
]


async def test_malformed_lines_are_dropped_and_paired_link_stays_up(daemon, peers):
    peer = await paired_peer(daemon, peers)
    for line in MALFORMED_LINES:
        await peer.send_raw(line)
    await assert_ping_delivered(daemon, peer, "still here")
    assert daemon.manager.is_linked(peer.device_id)
    assert not peer.closed.is_set()
    # Only the ping became a notification (besides the pair request shown while pairing).
    pings = [n for n in daemon.desktop.notifications if n[0] == peer.name]
    assert pings == [(peer.name, "still here")]


async def test_malformed_lines_in_one_write_with_a_valid_packet(daemon, peers):
    peer = await paired_peer(daemon, peers)
    blob = b"".join(MALFORMED_LINES[:4]) + packet_line(types.PING, {"message": "same chunk"})
    await peer.send_raw(blob)
    await wait_for(lambda: (peer.name, "same chunk") in daemon.desktop.notifications)
    assert daemon.manager.is_linked(peer.device_id)


async def test_malformed_lines_from_unpaired_peer_keep_the_link(daemon, peers):
    peer = await linked_peer(daemon, peers)
    for line in MALFORMED_LINES:
        await peer.send_raw(line)
    # The link is still read: a pair request after the garbage is seen.
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    assert not peer.closed.is_set()


async def test_unknown_packet_types_and_identity_on_link_are_ignored(daemon, peers):
    peer = await paired_peer(daemon, peers)
    await peer.send("kdeconnect.does.not.exist", {"x": 1})
    await peer.send(types.IDENTITY, helpers.identity_body(peer.device_id, name="Renamed",
                                                          version=7))
    await peer.send(types.BATTERY, {"currentCharge": "not a number"})
    await peer.send(types.BATTERY, {"currentCharge": 1e308, "isCharging": [1]})
    await assert_ping_delivered(daemon, peer, "after oddities")
    info = device_json(daemon, peer.device_id)
    assert info["name"] == peer.name and info["protocol_version"] == 8
    assert info["battery"] is None


# -- oversize lines ----------------------------------------------------------------------------------


async def test_oversize_line_on_link_closes_only_that_link(daemon, peers, monkeypatch):
    # 32 MiB would be slow; the daemon's framer takes its limit from provider.MAX_LINE.
    monkeypatch.setattr("phonebridge.transports.lan.provider.MAX_LINE", 4096)
    bystander = await paired_peer(daemon, peers, peer=RawPeer(name="Bystander"))
    hostile = await paired_peer(daemon, peers)
    await hostile.send_raw(packet_line(types.PING, {"message": "x" * 5000}))
    assert await hostile.wait_closed(5), "the daemon kept a link that sent an oversize line"
    await wait_for(lambda: not daemon.manager.is_linked(hostile.device_id))
    # The oversize ping itself was not delivered.
    assert not any(m.startswith("xxx") for _t, m in daemon.desktop.notifications)
    # Others are unaffected, and new peers are served.
    await assert_ping_delivered(daemon, bystander, "bystander fine")
    await assert_daemon_serves_new_peer(daemon, peers)
    # The hostile device stays paired (a framing error is no reason to forget it).
    assert daemon.manager.devices[hostile.device_id].is_paired


async def test_oversize_line_without_newline_closes_the_link(daemon, peers, monkeypatch):
    monkeypatch.setattr("phonebridge.transports.lan.provider.MAX_LINE", 4096)
    hostile = await linked_peer(daemon, peers)
    await hostile.send_raw(b"{" + b" " * 6000)  # never terminated
    assert await hostile.wait_closed(5)
    await assert_daemon_serves_new_peer(daemon, peers)


async def test_oversize_clear_identity_is_refused(daemon, peers):
    hostile = RawPeer()
    await hostile.open_tcp(daemon.provider.tcp_port)
    body = hostile.identity(padding="p" * (MAX_IDENTITY_LINE + 100))
    hostile.writer.write(packet_line(types.IDENTITY, body))
    assert await read_until_eof(hostile.reader, 5), "oversize identity line was not refused"
    hostile.writer.close()
    assert daemon.manager.devices.get(hostile.device_id) is None
    await assert_daemon_serves_new_peer(daemon, peers)


async def test_endless_clear_identity_without_newline_is_refused(daemon, peers):
    hostile = RawPeer()
    await hostile.open_tcp(daemon.provider.tcp_port)
    hostile.writer.write(b"{" + b"a" * (MAX_IDENTITY_LINE * 4))
    assert await read_until_eof(hostile.reader, 5)
    hostile.writer.close()
    await assert_daemon_serves_new_peer(daemon, peers)


async def test_oversize_identity_inside_tls_is_refused(daemon, peers):
    hostile = RawPeer()
    peers.append(hostile)
    big = hostile.identity(padding="p" * (MAX_IDENTITY_LINE + 100))
    try:
        await hostile.connect(daemon.provider.tcp_port, tls_identity=big)
    except (ConnectionError, AssertionError, TimeoutError):
        pass  # the daemon may close before or after sending its own identity
    assert await hostile.wait_closed(5)
    assert refused(daemon, hostile.device_id)
    await assert_daemon_serves_new_peer(daemon, peers)


# -- stalling peers ----------------------------------------------------------------------------------


async def test_silent_peer_is_dropped_and_does_not_block_others(daemon, peers, monkeypatch):
    monkeypatch.setattr("phonebridge.transports.lan.provider.PLAINTEXT_IDENTITY_TIMEOUT", 2.0)
    silent = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection(helpers.LOOPBACK, daemon.provider.tcp_port)
        silent.append((reader, writer))
    started = time.monotonic()
    await assert_daemon_serves_new_peer(daemon, peers)  # while the silent ones hang
    assert time.monotonic() - started < 2.0, "the new peer waited for the silent ones"
    assert not any(r.at_eof() for r, _w in silent)
    results = await asyncio.gather(*(read_until_eof(r, 5) for r, _w in silent))
    assert all(results), "a peer that never sent its identity was not dropped"
    assert time.monotonic() - started >= 1.5
    for _r, w in silent:
        w.close()


async def test_peer_stalling_in_tls_handshake_is_dropped(daemon, peers, monkeypatch):
    monkeypatch.setattr(TlsStream.handshake, "__defaults__", (2.0,))
    staller = RawPeer()
    await staller.open_tcp(daemon.provider.tcp_port)
    staller.writer.write(packet_line(types.IDENTITY, staller.identity()))
    await staller.writer.drain()
    # It never answers the daemon's ClientHello.
    started = time.monotonic()
    await assert_daemon_serves_new_peer(daemon, peers)
    assert time.monotonic() - started < 2.0, "the new peer waited for the stalled handshake"
    assert await read_until_eof(staller.reader, 5), "a peer stalling in TLS was not dropped"
    assert time.monotonic() - started >= 1.5
    staller.writer.close()
    assert refused(daemon, staller.device_id)


async def test_v8_peer_that_never_sends_its_tls_identity_is_dropped(daemon, peers, monkeypatch):
    monkeypatch.setattr("phonebridge.transports.lan.provider.V8_IDENTITY_TIMEOUT", 1.0)
    # As TLS client the daemon lets the peer speak first for a while (KDE needs it), then writes.
    monkeypatch.setattr("phonebridge.transports.lan.provider.CLIENT_IDENTITY_DELAY", 0.2,
                        raising=False)
    staller = RawPeer()
    peers.append(staller)
    await staller.connect(daemon.provider.tcp_port, send_tls_identity=False)
    started = time.monotonic()
    assert await staller.wait_closed(5), "a v8 peer without in-TLS identity was kept"
    assert time.monotonic() - started < 3
    assert refused(daemon, staller.device_id)
    await assert_daemon_serves_new_peer(daemon, peers)


# -- TLS failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x00\x05hello",  # a TLS record header with nonsense in it
    b"\x00" * 4096,
])
async def test_garbage_instead_of_tls_drops_only_that_link(daemon, peers, garbage):
    bystander = await paired_peer(daemon, peers, peer=RawPeer(name="Bystander"))
    hostile = RawPeer()
    await hostile.open_tcp(daemon.provider.tcp_port)
    hostile.writer.write(packet_line(types.IDENTITY, hostile.identity()) + garbage)
    await hostile.writer.drain()
    assert await read_until_eof(hostile.reader, 5), "garbage TLS was not refused"
    hostile.writer.close()
    assert refused(daemon, hostile.device_id)
    await assert_ping_delivered(daemon, bystander, "bystander after garbage")
    await assert_daemon_serves_new_peer(daemon, peers)


async def test_peer_closing_mid_handshake_is_harmless(daemon, peers):
    hostile = RawPeer()
    await hostile.open_tcp(daemon.provider.tcp_port)
    hostile.writer.write(packet_line(types.IDENTITY, hostile.identity()))
    await hostile.writer.drain()
    await hostile.reader.read(10)  # the start of the ClientHello
    hostile.writer.close()
    await assert_daemon_serves_new_peer(daemon, peers)
    assert refused(daemon, hostile.device_id)


# -- invalid identities --------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {"deviceId": "short"},
    {"deviceId": "x" * 39},
    {"deviceId": "bad.chars.in.this.id.0123456789abcdef"},
    {"deviceName": "<>()[]"},
    {"deviceName": 42},
    {"protocolVersion": 6},
    {"protocolVersion": "six"},
    {"targetDeviceId": "0" * 32},  # meant for somebody else
    {"targetProtocolVersion": 7},  # §2: the accepting side aborts if it differs from its own
    {"targetProtocolVersion": "7"},
], ids=["short-id", "long-id", "dotted-id", "empty-name", "int-name", "version-6",
        "version-text", "target-id", "target-version-7", "target-version-7-string"])
async def test_invalid_clear_identity_is_refused(daemon, peers, overrides):
    hostile = RawPeer()
    await hostile.open_tcp(daemon.provider.tcp_port)
    hostile.writer.write(packet_line(types.IDENTITY, hostile.identity(**overrides)))
    assert await read_until_eof(hostile.reader, 2), "invalid identity accepted: TLS started"
    hostile.writer.close()
    assert refused(daemon, hostile.device_id)
    assert all(d.identity.name != hostile.name for d in daemon.manager.devices.values())


async def test_identity_line_limit_is_8192_bytes(daemon, peers):
    """§1: identity lines up to 8192 bytes are accepted, longer ones are refused."""
    def line_of(size: int, peer: RawPeer) -> bytes:
        body = peer.identity(padding="")
        base = len(packet_line(types.IDENTITY, body)) - 1  # without the newline
        body["padding"] = "p" * (size - base)
        line = packet_line(types.IDENTITY, body)
        assert len(line) == size + 1
        return line

    fits = RawPeer()
    peers.append(fits)
    fits_line = line_of(MAX_IDENTITY_LINE, fits)
    await fits.connect(daemon.provider.tcp_port,
                       clear_identity=json.loads(fits_line)["body"])
    await wait_for(lambda: daemon.manager.is_linked(fits.device_id))

    too_long = RawPeer()
    await too_long.open_tcp(daemon.provider.tcp_port)
    too_long.writer.write(line_of(MAX_IDENTITY_LINE + 1, too_long))
    assert await read_until_eof(too_long.reader, 5)
    too_long.writer.close()
    assert refused(daemon, too_long.device_id)


async def test_identity_claiming_to_be_the_daemon_is_refused(daemon, peers):
    hostile = RawPeer(PeerCert(daemon.identity.device_id))
    await hostile.open_tcp(daemon.provider.tcp_port)
    hostile.writer.write(packet_line(types.IDENTITY, hostile.identity()))
    assert await read_until_eof(hostile.reader, 5)
    hostile.writer.close()
    assert daemon.manager.devices.get(daemon.identity.device_id) is None


async def test_certificate_cn_must_match_device_id(daemon, peers):
    hostile = RawPeer(PeerCert(cn=helpers.new_device_id()))  # CN is another id
    peers.append(hostile)
    try:
        await hostile.connect(daemon.provider.tcp_port)
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await hostile.wait_closed(5)
    assert refused(daemon, hostile.device_id)


@pytest.mark.parametrize("field,value", [("deviceId", None), ("protocolVersion", 7)])
async def test_tls_identity_must_match_clear_identity(daemon, peers, field, value):
    hostile = RawPeer()
    peers.append(hostile)
    tls_identity = hostile.identity()
    tls_identity[field] = value if value is not None else helpers.new_device_id()
    try:
        await hostile.connect(daemon.provider.tcp_port, tls_identity=tls_identity)
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await hostile.wait_closed(5)
    assert refused(daemon, hostile.device_id)
    assert refused(daemon, tls_identity["deviceId"])


# -- unpaired devices ----------------------------------------------------------------------------------


async def test_data_from_unpaired_device_is_dropped_and_answered_with_unpair(daemon, peers):
    peer = await linked_peer(daemon, peers)
    await peer.send(types.PING, {"message": "let me in"})
    await peer.send(types.BATTERY, {"currentCharge": 5, "isCharging": False, "thresholdEvent": 1})
    await peer.send(types.CONNECTIVITY_REPORT,
                    {"signalStrengths": {"1": {"networkType": "LTE", "signalStrength": 3}}})
    reply = await peer.expect(lambda p: p.type == types.PAIR)
    assert reply.body == {"pair": False}
    # Let the daemon read everything, then check nothing got through.
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    info = device_json(daemon, peer.device_id)
    assert info["battery"] is None and info["connectivity"] is None
    assert info["plugins"] == []
    assert not any(m in ("let me in",) or "Battery" in m for _t, m in daemon.desktop.notifications)
    # Answered once, not once per packet.
    assert peer.pair_packets() == [{"pair": False}]


# -- pinning -------------------------------------------------------------------------------------------


async def test_paired_device_with_a_different_certificate_is_refused(daemon, peers):
    genuine = await paired_peer(daemon, peers)
    pinned = genuine.cert.cert_der
    await genuine.close()
    await wait_for(lambda: not daemon.manager.is_linked(genuine.device_id))

    impostor = RawPeer(PeerCert(genuine.device_id))
    peers.append(impostor)
    try:
        await impostor.connect(daemon.provider.tcp_port)
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await impostor.wait_closed(5), "link with a changed certificate was kept"
    await wait_for(lambda: device_json(daemon, genuine.device_id)["certificate_changed"])
    info = device_json(daemon, genuine.device_id)
    assert info["paired"] is True
    assert info["reachable"] is False
    assert info["certificate_sha256"] == sha256_fingerprint(pinned)
    assert info["refused_reason"] == "certificate changed"
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    assert trusted[genuine.device_id].certificate == pinned
    key_before = info["verification_key"]

    # A second try that goes straight for a pair request is refused the same way: no re-pairing.
    again = RawPeer(impostor.cert)
    peers.append(again)
    try:
        await again.connect(daemon.provider.tcp_port)
        await again.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await again.wait_closed(5)
    info = device_json(daemon, genuine.device_id)
    assert info["pair_state"] == "paired" and info["verification_key"] == key_before
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    assert trusted[genuine.device_id].certificate == pinned

    # The genuine phone still gets in, which clears the warning.
    back = await linked_peer(daemon, peers, RawPeer(genuine.cert, name=genuine.name))
    await wait_for(lambda: "ping" in device_json(daemon, genuine.device_id)["plugins"])
    await assert_ping_delivered(daemon, back, "genuine again")
    assert device_json(daemon, genuine.device_id)["certificate_changed"] is False


async def test_impostor_cannot_kick_a_live_paired_link(daemon, peers):
    genuine = await paired_peer(daemon, peers)
    impostor = RawPeer(PeerCert(genuine.device_id))
    peers.append(impostor)
    try:
        await impostor.connect(daemon.provider.tcp_port)
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await impostor.wait_closed(5)
    assert not genuine.closed.is_set()
    await assert_ping_delivered(daemon, genuine, "genuine survives")
    assert daemon.manager.devices[genuine.device_id].link.certificate == genuine.cert.cert_der


async def test_protocol_downgrade_of_paired_device_is_refused(daemon, peers):
    genuine = await paired_peer(daemon, peers)
    await genuine.close()
    await wait_for(lambda: not daemon.manager.is_linked(genuine.device_id))

    downgraded = RawPeer(genuine.cert, name=genuine.name, version=7)
    peers.append(downgraded)
    try:
        await downgraded.connect(daemon.provider.tcp_port)
    except (ConnectionError, AssertionError, TimeoutError):
        pass
    assert await downgraded.wait_closed(5), "a downgraded link was kept"
    info = device_json(daemon, genuine.device_id)
    assert info["paired"] is True and info["reachable"] is False
    assert info["refused_reason"] == "protocol downgrade"
    assert info["protocol_version"] == 8
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    assert trusted[genuine.device_id].protocol_version == 8


# -- stopping ------------------------------------------------------------------------------------------


async def test_daemon_stop_aborts_handshakes_in_progress(tmp_path):
    """After Daemon.stop() no connection accepted before it may still become a link."""
    daemon = await helpers.start_daemon(tmp_path / "home")
    peer = RawPeer()
    try:
        await peer.open_tcp(daemon.provider.tcp_port)
        peer.writer.write(packet_line(types.IDENTITY, peer.identity()))
        await peer.writer.drain()
        await asyncio.sleep(0.2)  # the daemon read the identity and sent its ClientHello
    finally:
        await daemon.stop()
    # The peer now answers the handshake the daemon started before it stopped.
    from phonebridge.transports.lan.tls import make_context

    stream = TlsStream(peer.reader, peer.writer,
                       make_context(peer.cert.cert_pem, peer.cert.key_pem, server=True), server=True)
    got_identity = registered = False
    try:
        await stream.handshake(timeout=2)
        await stream.write(packet_line(types.IDENTITY, peer.identity()))
        got_identity = bool(await asyncio.wait_for(stream.read(), 2))
        await asyncio.sleep(0.2)
        registered = peer.device_id in daemon.manager.devices
    except (ConnectionError, OSError, TimeoutError):
        pass
    finally:
        await stream.close()
    assert not registered, "a stopped daemon finished a handshake and registered a new device"
    assert not got_identity, "a stopped daemon still completed a link"
