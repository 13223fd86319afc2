"""Pairing end to end over real TLS on 127.0.0.1: a Daemon in-process against DemoPhone / RawPeer.

PROTOCOL.md §6: request / accept / reject / timeout / unpair, verification keys (§6.3), v7 and v8
requests, pinning (§4.4) and persistence across a daemon restart.
"""

from __future__ import annotations

import asyncio
import time


import pytest

import helpers
from helpers import RawPeer, device_json, wait_for
from phonebridge.demo.phone import DemoPhone
from phonebridge.protocol import types
from phonebridge.protocol.certs import verification_key
from phonebridge.protocol.packet import Packet
from phonebridge.protocol.pairing import PairState, SendPacket
from phonebridge.store.devices import DeviceRepository

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def phone(tmp_path):
    p = DemoPhone(tmp_path / "phone")
    try:
        yield p
    finally:
        await p.stop()


@pytest.fixture
async def peers():
    made: list[RawPeer] = []
    try:
        yield made
    finally:
        for peer in made:
            await peer.close()


async def linked_phone(daemon, phone: DemoPhone) -> None:
    await phone.start(helpers.LOOPBACK, daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(phone.device_id), what="phone linked")
    await wait_for(lambda: phone.link is not None and phone.session is not None, what="phone link")


async def raw_peer(daemon, peers: list[RawPeer], **kwargs) -> RawPeer:
    peer = RawPeer(**kwargs)
    peers.append(peer)
    await peer.connect(daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(peer.device_id), what="raw peer linked")
    return peer


async def trusted_ids(daemon) -> set[str]:
    return {t.id for t in await DeviceRepository(daemon._db).all()}


def pair_events(sub) -> list:  # noqa: ANN001
    out = []
    while not sub.queue.empty():
        event = sub.queue.get_nowait()
        if event.type == "pair.changed":
            out.append(event)
    return out


# -- requests from the daemon ----------------------------------------------------------------------


async def test_daemon_request_accepted_by_phone_with_equal_verification_keys(daemon, phone):
    await linked_phone(daemon, phone)
    with daemon.bus.subscribe() as sub:
        await daemon.manager.pair(phone.device_id)
        requested = device_json(daemon, phone.device_id)
        assert requested["pair_state"] in ("requested", "paired")
        await wait_for(lambda: phone.is_paired, what="phone paired")
        await wait_for(lambda: daemon.manager.devices[phone.device_id].is_paired, what="daemon paired")
        events = pair_events(sub)
    key_shown = next(e.data["verification_key"] for e in events if e.data["new"] == "requested")
    assert key_shown is not None and len(key_shown) == 8
    # The phone computes the key from its own certificate, the daemon's link certificate and the
    # timestamp of the request it received (§6.3).
    assert phone.session.timestamp is not None
    assert abs(phone.session.timestamp - time.time()) < 60
    phone_key = verification_key(phone._local.cert_der, phone.link.certificate, 8,
                                 phone.session.timestamp)
    assert phone_key == key_shown
    info = device_json(daemon, phone.device_id)
    assert info["paired"] is True and info["pair_state"] == "paired"
    assert phone.device_id in await trusted_ids(daemon)


async def test_phone_request_shows_incoming_with_key_then_daemon_accepts(daemon, phone):
    await linked_phone(daemon, phone)
    for action in phone.session.request(time.time()):
        if isinstance(action, SendPacket):
            assert await phone.send(action.packet)
    await wait_for(lambda: device_json(daemon, phone.device_id)["pair_state"] == "incoming",
                   what="incoming request")
    info = device_json(daemon, phone.device_id)
    expected = verification_key(phone._local.cert_der, phone.link.certificate, 8,
                                phone.session.timestamp)
    assert info["verification_key"] == expected
    assert info["paired"] is False
    assert info["pair_deadline"] is not None
    # The user is told, with the key.
    assert any(expected in message for _title, message in daemon.desktop.notifications)
    await daemon.manager.pair(phone.device_id)
    await wait_for(lambda: phone.is_paired, what="phone paired after accept")
    assert device_json(daemon, phone.device_id)["pair_state"] == "paired"
    assert phone.device_id in await trusted_ids(daemon)


async def test_daemon_rejects_incoming_request(daemon, peers):
    peer = await raw_peer(daemon, peers)
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    await daemon.manager.reject(peer.device_id)
    reply = await peer.expect(lambda p: p.type == types.PAIR)
    assert reply.body == {"pair": False}
    info = device_json(daemon, peer.device_id)
    assert info["pair_state"] == "unpaired" and info["paired"] is False
    assert info["verification_key"] is None
    assert peer.device_id not in await trusted_ids(daemon)


async def test_peer_rejects_daemon_request(daemon, peers):
    peer = await raw_peer(daemon, peers)
    await daemon.manager.pair(peer.device_id)
    request = await peer.expect(lambda p: p.type == types.PAIR)
    assert request.body["pair"] is True
    assert isinstance(request.body["timestamp"], int)
    assert abs(request.body["timestamp"] - time.time()) < 60
    assert device_json(daemon, peer.device_id)["pair_state"] == "requested"
    await peer.send(types.PAIR, {"pair": False})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "unpaired")
    assert device_json(daemon, peer.device_id)["paired"] is False
    assert peer.device_id not in await trusted_ids(daemon)


async def test_own_request_times_out_and_sends_unpair(daemon, peers, monkeypatch):
    monkeypatch.setattr("phonebridge.protocol.pairing.PAIR_TIMEOUT", 0.3)
    peer = await raw_peer(daemon, peers)
    await daemon.manager.pair(peer.device_id)
    await peer.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is True)
    cancel = await peer.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is False,
                               timeout=5)
    assert cancel.body == {"pair": False}
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "unpaired")
    # A late accept after the timeout does not pair: without a timestamp it is a refused request.
    with daemon.bus.subscribe() as sub:
        await peer.send(types.PAIR, {"pair": True})
        await helpers.next_event(sub, "pair.refused")
    assert device_json(daemon, peer.device_id)["paired"] is False
    assert peer.device_id not in await trusted_ids(daemon)


async def test_incoming_request_times_out_and_sends_unpair(daemon, peers, monkeypatch):
    monkeypatch.setattr("phonebridge.protocol.pairing.PAIR_TIMEOUT", 0.3)
    peer = await raw_peer(daemon, peers)
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    cancel = await peer.expect(lambda p: p.type == types.PAIR, timeout=5)
    assert cancel.body == {"pair": False}
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "unpaired")
    assert device_json(daemon, peer.device_id)["verification_key"] is None


async def test_v8_request_with_skewed_clock_is_refused_without_reply(daemon, peers):
    peer = await raw_peer(daemon, peers)
    with daemon.bus.subscribe() as sub:
        await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time()) - 1900})
        skewed = await helpers.next_event(sub, "pair.refused")
        await peer.send(types.PAIR, {"pair": True})  # v8 without timestamp: refused too
        missing = await helpers.next_event(sub, "pair.refused")
    assert "clock" in skewed.data["reason"]
    assert "timestamp" in missing.data["reason"]
    assert device_json(daemon, peer.device_id)["pair_state"] == "unpaired"
    # No reply to either; the first pair packet the peer gets is the answer to a later ping.
    await peer.send(types.PING, {})
    unpair = await peer.expect(lambda p: p.type == types.PAIR)
    assert unpair.body == {"pair": False}
    assert len(peer.pair_packets()) == 1


async def test_v8_request_with_string_timestamp_accepted(daemon, peers):
    peer = await raw_peer(daemon, peers)
    await peer.send(types.PAIR, {"pair": True, "timestamp": str(int(time.time()))})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")


async def test_v7_request_without_timestamp_key_has_no_timestamp(daemon, peers):
    peer = await raw_peer(daemon, peers, version=7)
    assert device_json(daemon, peer.device_id)["protocol_version"] == 7
    await peer.send(types.PAIR, {"pair": True})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    expected = verification_key(peer.cert.cert_der, daemon.manager.certificate, 7, None)
    assert device_json(daemon, peer.device_id)["verification_key"] == expected
    await daemon.manager.pair(peer.device_id)
    accept = await peer.expect(lambda p: p.type == types.PAIR)
    assert accept.body == {"pair": True}
    await wait_for(lambda: device_json(daemon, peer.device_id)["paired"])
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    assert trusted[peer.device_id].protocol_version == 7
    assert trusted[peer.device_id].certificate == peer.cert.cert_der


async def test_pair_request_while_paired_means_unpaired_then_incoming(daemon, peers):
    peer = await raw_peer(daemon, peers)
    await helpers.pair_raw(daemon, peer)
    assert peer.device_id in await trusted_ids(daemon)
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    assert device_json(daemon, peer.device_id)["paired"] is False
    assert peer.device_id not in await trusted_ids(daemon)
    # Not auto-accepted (§10.13): the peer got exactly one pair:true, the accept of pair_raw.
    assert [b for b in peer.pair_packets() if b.get("pair") is True] == [{"pair": True}]


# -- unpairing -------------------------------------------------------------------------------------


async def test_unpair_from_daemon_seen_by_phone(daemon, phone):
    await linked_phone(daemon, phone)
    await daemon.manager.pair(phone.device_id)
    await wait_for(lambda: phone.is_paired and daemon.manager.devices[phone.device_id].is_paired)
    await daemon.manager.unpair(phone.device_id)
    await wait_for(lambda: not phone.is_paired, what="phone sees unpair")
    assert phone.session.state is PairState.UNPAIRED
    assert daemon.manager.devices[phone.device_id].is_paired is False
    assert phone.device_id not in await trusted_ids(daemon)
    # The phone forgot the pin too.
    assert daemon.identity.device_id not in phone._trusted


async def test_unpair_from_phone_seen_by_daemon(daemon, phone):
    await linked_phone(daemon, phone)
    await daemon.manager.pair(phone.device_id)
    await wait_for(lambda: phone.is_paired and daemon.manager.devices[phone.device_id].is_paired)
    for action in phone.session.unpair(time.time()):
        if isinstance(action, SendPacket):
            await phone.send(action.packet)
    await wait_for(lambda: not daemon.manager.devices[phone.device_id].is_paired,
                   what="daemon sees unpair")
    info = device_json(daemon, phone.device_id)
    assert info["pair_state"] == "unpaired"
    assert info["plugins"] == []
    assert phone.device_id not in await trusted_ids(daemon)
    # Data is no longer accepted: a ping is dropped and answered with pair:false.
    before = len(daemon.desktop.notifications)
    await phone.link.send(Packet(types.PING, {"message": "x"}))
    await wait_for(lambda: any(p.type == types.PAIR and p.body == {"pair": False}
                               for p in phone.received), what="pair:false reply")
    assert len(daemon.desktop.notifications) == before


# -- persistence -----------------------------------------------------------------------------------


async def test_pairing_survives_daemon_restart(tmp_path):
    home = tmp_path / "home"
    daemon = await helpers.start_daemon(home)
    phone = DemoPhone(tmp_path / "phone")
    try:
        await linked_phone(daemon, phone)
        await daemon.manager.pair(phone.device_id)
        await wait_for(lambda: phone.is_paired and daemon.manager.devices[phone.device_id].is_paired)
        daemon_id = daemon.identity.device_id
    finally:
        await phone.stop()
        await daemon.stop()

    daemon = await helpers.start_daemon(home)
    phone = DemoPhone(tmp_path / "phone")
    try:
        assert daemon.identity.device_id == daemon_id
        info = device_json(daemon, phone.device_id)
        assert info is not None and info["paired"] is True and info["reachable"] is False
        await linked_phone(daemon, phone)
        assert phone.is_paired, "phone kept the pin"
        device = daemon.manager.devices[phone.device_id]
        assert device.is_paired and device.is_reachable
        assert device.certificate_changed is False
        # (Packets sent before the plugins are loaded are lost: see
        # test_packets_right_after_a_paired_reconnect_are_delivered; here we wait for them.)
        await wait_for(lambda: "ping" in device_json(daemon, phone.device_id)["plugins"])
        # Plugins are live again: a ping becomes a notification.
        await phone.ping("after restart")
        await wait_for(lambda: any(m == "after restart" for _t, m in daemon.desktop.notifications),
                       what="ping after restart")
    finally:
        await phone.stop()
        await daemon.stop()


# -- pinning during a pending request --------------------------------------------------------------


async def test_pending_request_cannot_be_accepted_for_another_certificate(daemon, peers):
    """A second link with the same id but another certificate must not inherit the pending request.

    The user compares the key computed from the first certificate; accepting must never pin a
    certificate the user did not see a key for.
    """
    genuine = await raw_peer(daemon, peers)
    await genuine.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, genuine.device_id)["pair_state"] == "incoming")
    shown_key = device_json(daemon, genuine.device_id)["verification_key"]

    impostor = RawPeer(helpers.PeerCert(genuine.device_id))
    peers.append(impostor)
    await impostor.connect(daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.devices[genuine.device_id].link is not None
                   and daemon.manager.devices[genuine.device_id].link.certificate
                   == impostor.cert.cert_der, timeout=3, what="impostor link")

    try:
        await daemon.manager.pair(genuine.device_id)  # the user accepts what they saw
    except Exception:  # noqa: BLE001 - refusing is fine too
        pass
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    pinned = trusted.get(genuine.device_id)
    assert pinned is None or pinned.certificate == genuine.cert.cert_der, (
        f"accepting the request shown with key {shown_key} (genuine certificate) pinned the"
        " impostor's certificate"
    )


async def test_own_request_cannot_be_accepted_by_another_certificate(daemon, peers):
    """Our request was shown with the genuine key; an impostor link must not complete it."""
    genuine = await raw_peer(daemon, peers)
    await daemon.manager.pair(genuine.device_id)
    await genuine.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is True)
    assert device_json(daemon, genuine.device_id)["pair_state"] == "requested"

    impostor = RawPeer(helpers.PeerCert(genuine.device_id))
    peers.append(impostor)
    await impostor.connect(daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.devices[genuine.device_id].link is not None
                   and daemon.manager.devices[genuine.device_id].link.certificate
                   == impostor.cert.cert_der, timeout=3, what="impostor link")
    with daemon.bus.subscribe() as sub:
        await impostor.send(types.PAIR, {"pair": True})  # "accept"
        await helpers.next_event(sub, "device.changed")
    trusted = {t.id: t for t in await DeviceRepository(daemon._db).all()}
    pinned = trusted.get(genuine.device_id)
    assert pinned is None or pinned.certificate == genuine.cert.cert_der, (
        "an impostor link answered our pending request and its certificate was pinned"
    )


# -- packets sent as soon as a link is up --------------------------------------------------------------


@pytest.fixture
def slow_store(monkeypatch):
    """Saving a trusted device takes 0.3 s, as on a busy disk: widens any race with the store."""
    original = DeviceRepository.save

    async def slow_save(self, device):  # noqa: ANN001
        await asyncio.sleep(0.3)
        await original(self, device)

    monkeypatch.setattr(DeviceRepository, "save", slow_save)


async def test_packets_right_after_a_paired_reconnect_are_delivered(daemon, peers, slow_store):
    """A phone sends its battery the moment a paired link is up (Android does, §8.3).

    The daemon must not read packets of a paired device before its plugins are loaded.
    """
    genuine = await raw_peer(daemon, peers)
    await helpers.pair_raw(daemon, genuine)
    await genuine.close()
    # Wait until the old link is fully gone (its plugins unloaded), as after a real network drop.
    await wait_for(lambda: daemon.manager.devices[genuine.device_id].link is None
                   and device_json(daemon, genuine.device_id)["plugins"] == [])

    back = RawPeer(genuine.cert, name=genuine.name)
    peers.append(back)
    first_words = (helpers.packet_line(types.BATTERY, {"currentCharge": 55, "isCharging": True,
                                                       "thresholdEvent": 0})
                   + helpers.packet_line(types.PING, {"message": "hello again"}))
    await back.connect(daemon.provider.tcp_port, after_identity=first_words)
    await wait_for(lambda: "ping" in device_json(daemon, genuine.device_id)["plugins"],
                   what="plugins loaded")
    await wait_for(lambda: (back.name, "hello again") in daemon.desktop.notifications, timeout=3,
                   what="the ping sent right after reconnecting (dropped: no plugin loaded yet?)")
    assert device_json(daemon, genuine.device_id)["battery"] == {"charge": 55, "charging": True}


async def test_packets_right_after_our_accept_are_delivered(daemon, peers, slow_store):
    """The phone sends its battery as soon as it sees our accept (DemoPhone and Android do)."""
    peer = await raw_peer(daemon, peers)
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: device_json(daemon, peer.device_id)["pair_state"] == "incoming")
    accepting = asyncio.get_running_loop().create_task(daemon.manager.pair(peer.device_id))
    await peer.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is True)
    await peer.send(types.BATTERY, {"currentCharge": 33, "isCharging": False, "thresholdEvent": 0})
    await accepting
    await wait_for(lambda: daemon.manager.devices[peer.device_id].is_paired)
    await wait_for(lambda: device_json(daemon, peer.device_id)["battery"]
                   == {"charge": 33, "charging": False}, timeout=3,
                   what="the battery sent right after our accept (dropped: plugins not loaded yet?)")
    # And it was not treated as data from an unpaired device either.
    assert {"pair": False} not in peer.pair_packets()
