"""mDNS discovery with KDE Connect 25.04, the one peer that speaks it (GSConnect and 22.12 do not).

PhoneBridge announces its UDP identity nowhere (loopback only), so only mDNS can bring the link up:
either side resolving the other sends a unicast UDP identity, and the peer dials.
"""

from __future__ import annotations

import time

import pytest

from .conftest import ARTIFACTS, bring_up
from .harness import KdeConnect8, PhoneBridge, wait_for

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def kc8():
    peer = bring_up(KdeConnect8)
    yield peer
    peer.down()


def test_mdns_discovery_both_ways(kc8: KdeConnect8, tmp_path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pb = PhoneBridge(kc8, tmp_path / "home", ARTIFACTS / "interop-mdns.log")
    (ARTIFACTS / "interop-mdns.log").unlink(missing_ok=True)
    try:
        pb.start("--discovery-address", "127.0.0.1")
        device = pb.wait_device(kc8.id, lambda d: d["reachable"], 20, "a link found by mDNS")
        assert device["protocol_version"] == 8
        # We resolved the peer's service (and invited it by unicast) ...
        assert f"mDNS found {kc8.id}._kdeconnect._udp.local." in pb.log_text()
        # ... and the peer resolved ours: on refresh it queries mDNS, we answer, and it sends its
        # UDP identity to our own address (unicast), besides its broadcast.
        unicast = f"UDP identity datagram from {kc8.peer_ip} to {kc8.host_ip}"
        kc8.refresh()
        wait_for(lambda: unicast in pb.log_text(), 15, "the peer's unicast identity after mDNS")
        # Control: without our mDNS the same refresh brings only the broadcast.
        pb.stop()
        mark = len(pb.log_text())
        pb.start("--discovery-address", "127.0.0.1", "--no-mdns")
        kc8.refresh()
        broadcast = f"UDP identity datagram from {kc8.peer_ip} to 255.255.255.255"
        wait_for(lambda: broadcast in pb.log_text()[mark:], 15, "the peer's broadcast")
        time.sleep(2)
        assert unicast not in pb.log_text()[mark:]
    finally:
        pb.stop()
