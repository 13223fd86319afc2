"""PhoneBridge against the real KDE Connect 22.12 (v7), KDE Connect 25.04 (v8) and GSConnect 62 (v8).

The tests of one peer run in file order and build on each other: discovery, pairing from our side,
pings, battery, the peer restarting, unpairing, pairing from the peer's side, unpairing from there.
"""

from __future__ import annotations

import time

import pytest

from .harness import Peer, PhoneBridge, wait_for

pytestmark = pytest.mark.interop

LINK_TIMEOUT = 20
PAIR_TIMEOUT = 40


def linked(pb: PhoneBridge, peer: Peer, timeout: float = LINK_TIMEOUT) -> dict:
    return pb.wait_device(peer.id, lambda d: d["reachable"], timeout, f"a link to {peer.name}")


def test_peer_discovers_phonebridge_by_udp_broadcast(peer: Peer, phonebridge: PhoneBridge) -> None:
    # Our broadcast (routed only onto the namespace's veth) makes the peer dial us.
    phonebridge.start("--no-mdns", "--discovery-address", "255.255.255.255")
    device = linked(phonebridge, peer)
    assert device["name"] == peer.device_name
    assert device["protocol_version"] == peer.protocol_version
    assert device["paired"] is False and device["pair_state"] == "unpaired"
    wait_for(lambda: peer.sees(phonebridge.id), 10, f"{peer.name} to list PhoneBridge")


def test_phonebridge_discovers_peer_by_udp_broadcast(peer: Peer, phonebridge: PhoneBridge) -> None:
    # Restart PhoneBridge announcing nowhere (loopback only): now only the peer's broadcast can
    # bring the link up, and we must dial it.
    phonebridge.stop()
    phonebridge.start("--no-mdns", "--discovery-address", "127.0.0.1")
    time.sleep(1.5)
    assert phonebridge.device(peer.id) is None, "linked before the peer announced itself"
    peer.refresh()
    device = linked(phonebridge, peer)
    assert device["protocol_version"] == peer.protocol_version
    assert f"discovered {peer.id}" in phonebridge.log_text()


def test_pair_requested_by_phonebridge(peer: Peer, phonebridge: PhoneBridge) -> None:
    pairing = phonebridge.cli_background("pair", peer.id, "--timeout", "35")
    requested = phonebridge.wait_device(peer.id, lambda d: d["pair_state"] == "requested", 10,
                                        "our pair request")
    our_key = requested["verification_key"]
    assert our_key and len(our_key) == 8
    peer.accept_pair(phonebridge.id)
    out, err = pairing.communicate(timeout=PAIR_TIMEOUT)
    assert pairing.returncode == 0, f"{out}\n{err}\n{phonebridge.log_tail()}"
    assert our_key in out
    device = phonebridge.wait_device(peer.id, lambda d: d["paired"], 10, "paired")
    assert device["reachable"] is True
    assert device["pair_state"] == "paired"
    assert device["protocol_version"] == peer.protocol_version
    assert device["verification_key"] == our_key
    wait_for(lambda: peer.is_paired(phonebridge.id), 10, f"{peer.name} to trust us")
    assert our_key in peer.verification_keys(phonebridge.id)


def test_ping_from_phonebridge(peer: Peer, phonebridge: PhoneBridge) -> None:
    message = f"hello {peer.name} {time.time_ns()}"
    phonebridge.cli("ping", peer.id, message)
    wait_for(lambda: peer.ping_received(message), 10, f"{peer.name} to show the ping")


def test_ping_from_peer(peer: Peer, phonebridge: PhoneBridge) -> None:
    message = f"hi phonebridge {time.time_ns()}"
    peer.ping(phonebridge.id, message)
    wait_for(lambda: f"notification: {peer.device_name}: {message}" in phonebridge.log_text(), 10,
             "the ping's desktop notification")


def test_battery_is_answered_or_ignored_cleanly(peer: Peer, phonebridge: PhoneBridge) -> None:
    device = phonebridge.device(peer.id)
    assert device is not None and device["reachable"] and device["paired"]
    battery = device["battery"]
    assert battery is None or (0 <= battery["charge"] <= 100 and isinstance(battery["charging"], bool))
    assert "battery" in device["plugins"]
    log = phonebridge.log_text()
    assert "Traceback" not in log, log
    assert phonebridge.alive()


def test_link_comes_back_after_peer_restart(peer: Peer, phonebridge: PhoneBridge) -> None:
    peer.restart()
    # The link drops, then comes back: by the peer's start-up announcement or our reconnects.
    device = phonebridge.wait_device(
        peer.id, lambda d: d["reachable"] and d["paired"], 60, "the link after the restart")
    assert device["pair_state"] == "paired"
    wait_for(lambda: peer.is_paired(phonebridge.id), 10, f"{peer.name} still paired")
    message = f"after restart {time.time_ns()}"
    phonebridge.cli("ping", peer.id, message)
    wait_for(lambda: peer.ping_received(message), 10, "a ping over the new link")


def test_unpair_from_phonebridge(peer: Peer, phonebridge: PhoneBridge) -> None:
    phonebridge.cli("unpair", peer.id)
    wait_for(lambda: not peer.is_paired(phonebridge.id), 10, f"{peer.name} to forget us")
    device = phonebridge.wait_device(peer.id, lambda d: not d["paired"], 5, "unpaired")
    assert device["pair_state"] == "unpaired"
    refused = phonebridge.cli("ping", peer.id, "not paired", check=False)
    assert refused.returncode != 0 and "not paired" in refused.stderr


def test_pair_requested_by_peer(peer: Peer, phonebridge: PhoneBridge) -> None:
    linked(phonebridge, peer)
    peer.request_pair(phonebridge.id)
    device = phonebridge.wait_device(peer.id, lambda d: d["pair_state"] == "incoming", 15,
                                     "the peer's pair request")
    our_key = device["verification_key"]
    assert our_key and our_key in peer.verification_keys(phonebridge.id)
    listing = phonebridge.cli("devices").stdout
    assert our_key in listing
    phonebridge.cli("pair", peer.id)
    device = phonebridge.wait_device(peer.id, lambda d: d["paired"], 10, "paired")
    wait_for(lambda: peer.is_paired(phonebridge.id), 10, f"{peer.name} to trust us")


def test_unpair_from_peer(peer: Peer, phonebridge: PhoneBridge) -> None:
    peer.unpair(phonebridge.id)
    device = phonebridge.wait_device(peer.id, lambda d: not d["paired"], 10, "unpaired by the peer")
    assert device["pair_state"] == "unpaired"
    assert phonebridge.alive()


def test_connect_by_address_without_discovery(peer: Peer, phonebridge: PhoneBridge) -> None:
    # The way across networks: no discovery at all, `phonebridge connect HOST`.
    phonebridge.stop()
    wait_for(lambda: not peer.sees(phonebridge.id), 20, f"{peer.name} to notice we left")
    phonebridge.start("--no-discovery")
    time.sleep(1)
    assert phonebridge.device(peer.id) is None
    out = phonebridge.cli("connect", peer.peer_ip, "--json", timeout=40).stdout
    assert peer.id in out
    device = linked(phonebridge, peer, 5)
    assert device["pair_state"] == "unpaired"


def test_pair_and_reconnect_by_dialing_without_discovery(peer: Peer, phonebridge: PhoneBridge) -> None:
    pairing = phonebridge.cli_background("pair", peer.id, "--timeout", "35")
    phonebridge.wait_device(peer.id, lambda d: d["pair_state"] == "requested", 10, "our request")
    peer.accept_pair(phonebridge.id)
    out, err = pairing.communicate(timeout=PAIR_TIMEOUT)
    assert pairing.returncode == 0, f"{out}\n{err}\n{phonebridge.log_tail()}"
    # With discovery off only our reconnect loop (dialing the last address) can bring it back.
    peer.restart()
    device = phonebridge.wait_device(
        peer.id, lambda d: d["reachable"] and d["paired"], 60, "our reconnect after the restart")
    assert device["address"].startswith(peer.peer_ip)
    message = f"after redial {time.time_ns()}"
    phonebridge.cli("ping", peer.id, message)
    wait_for(lambda: peer.ping_received(message), 10, "a ping over the redialed link")
    phonebridge.cli("unpair", peer.id)
    wait_for(lambda: not peer.is_paired(phonebridge.id), 10, f"{peer.name} to forget us")
