"""Desktop notifications forwarded by real peers: KDE Connect 25.04 (`sendnotifications`, off by
default) and GSConnect 62 (its notification plugin, on by default) both eavesdrop on
`org.freedesktop.Notifications.Notify` calls on their session bus (BecomeMonitor) and send them to
paired devices as `kdeconnect.notification`. No notification server runs in the lab, so our
Notify call (made from the host with gdbus on the peer's path socket) fails with ServiceUnknown;
the peers see it anyway.

Per peer: pair, (KDE: enable the plugin for us over D-Bus, `setPluginEnabled`), post, check that
PhoneBridge lists it (KDE: an *int* id, no time), dismiss it from PhoneBridge, and check that the
peer got the cancel:
  * GSConnect acts on it: `notification.request {"cancel": "fdo|null|N"}` makes it call
    `CloseNotification(N)` on its bus, which its dbus-monitor log shows.
  * KDE 25.04's sendnotifications ignores every packet it receives (`receivePacket` returns true
    without acting, logging nothing), so nothing closes there. To see the cancel arrive we switch
    the plugin off again: the peer's core then logs the packet as "discarding unsupported packet".

Run under the interop lock: `flock /tmp/phonebridge-interop.lock uv run pytest tests/interop/test_notifications.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from .conftest import bring_up
from .harness import GSConnect, KdeConnect8, Peer, PhoneBridge, wait_for

pytestmark = pytest.mark.interop

LINK_TIMEOUT = 20
PAIR_TIMEOUT = 40
GSC_REPLACES_ID = 4242
"""GSConnect marks an fdo notification clearable only when it replaces an id (`replacesId != 0`)."""


@pytest.fixture(scope="module", params=[KdeConnect8, GSConnect], ids=lambda c: c.name)
def peer(request: pytest.FixtureRequest):
    peer = bring_up(request.param)
    yield peer
    peer.down()


def is_kde(peer: Peer) -> bool:
    return isinstance(peer, KdeConnect8)


def peer_bus(peer: Peer) -> str:
    inner = "kc8" if is_kde(peer) else "gsc"
    return f"unix:path={peer.state}/root/{inner}/run/bus"


def notify(peer: Peer, app: str, summary: str, body: str, replaces: int = 0) -> subprocess.CompletedProcess:
    """A Notify call on the peer's session bus (from the host: the bus is a path socket, reachable
    across namespaces; gdbus builds the a{sv} that dbus-send cannot)."""
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": peer_bus(peer)}
    return subprocess.run(
        ["gdbus", "call", "--session", "--timeout", "2", "--dest", "org.freedesktop.Notifications",
         "--object-path", "/org/freedesktop/Notifications",
         "--method", "org.freedesktop.Notifications.Notify",
         # GVariant text (a bare "-1" would be read as an option): timeout -1 = "persistent",
         # which KDE maps to isClearable true.
         app, f"uint32 {replaces}", "", summary, body, "@as []", "@a{sv} {}", "int32 -1"],
        capture_output=True, text=True, timeout=20, env=env)


def set_kde_plugin(peer: Peer, device_id: str, enabled: bool) -> None:
    """KDE's per-device plugin switch (what its settings dialog does); it reloads plugins."""
    peer.sh("dbus-send", "--print-reply", "--dest=org.kde.kdeconnect",
            f"/modules/kdeconnect/devices/{device_id}", "org.kde.kdeconnect.device.setPluginEnabled",
            "string:kdeconnect_sendnotifications", f"boolean:{'true' if enabled else 'false'}")


def peer_log(peer: Peer) -> str:
    return (peer.state / "log" / "peer.log").read_text(errors="replace")


def notifications(pb: PhoneBridge, device_id: str) -> list[dict]:
    return json.loads(pb.cli("notifications", device_id, "--json").stdout)


def test_pair_and_enable_forwarding(peer: Peer, phonebridge: PhoneBridge) -> None:
    phonebridge.start("--no-mdns", "--discovery-address", "255.255.255.255")
    phonebridge.wait_device(peer.id, lambda d: d["reachable"], LINK_TIMEOUT, "a link")
    pairing = phonebridge.cli_background("pair", peer.id, "--timeout", "35")
    phonebridge.wait_device(peer.id, lambda d: d["pair_state"] == "requested", 10, "our request")
    peer.accept_pair(phonebridge.id)
    out, err = pairing.communicate(timeout=PAIR_TIMEOUT)
    assert pairing.returncode == 0, f"{out}\n{err}\n{phonebridge.log_tail()}"
    device = phonebridge.wait_device(peer.id, lambda d: d["paired"] and "notifications" in d["plugins"],
                                     10, "paired with the notifications plugin")
    assert "kdeconnect.notification" in device["outgoing_capabilities"]
    if is_kde(peer):
        set_kde_plugin(peer, phonebridge.id, True)
        wait_for(lambda: 'Loaded plugin: "kdeconnect_sendnotifications"' in peer_log(peer), 15,
                 "the peer to load sendnotifications for us")


def test_peer_desktop_notification_is_mirrored_and_dismissed(peer: Peer, phonebridge: PhoneBridge) -> None:
    title = f"Build finished {time.time_ns()}"
    replaces = 0 if is_kde(peer) else GSC_REPLACES_ID
    posted = None
    deadline = time.monotonic() + 20
    while posted is None and time.monotonic() < deadline:
        # The peer's listener may need a moment after the plugin loads: post until it is seen.
        notify(peer, "interop-app", title, "All 42 tests passed", replaces)
        try:
            posted = wait_for(lambda: next((n for n in notifications(phonebridge, peer.id)
                                            if n["title"] == title), None), 3, "the notification")
        except AssertionError:
            posted = None
    assert posted is not None, f"not mirrored\n{phonebridge.log_tail()}"
    assert posted["app"] == "interop-app" and posted["text"] == "All 42 tests passed"
    assert posted["active"] is True and posted["dismissable"] is True
    assert isinstance(posted["time"], int) and posted["time"] > 1_600_000_000_000  # ours: none sent
    if is_kde(peer):
        assert posted["id"].isdigit()  # KDE sends an int id
    else:
        assert posted["id"] == f"fdo|null|{GSC_REPLACES_ID}"
    # Our toast (no session bus for PhoneBridge here: logged).
    wait_for(lambda: f"notification: interop-app: {title}" in phonebridge.log_text(), 5, "the toast")

    if is_kde(peer):
        # With sendnotifications loaded the peer swallows notification.request without a trace;
        # switched off, its core logs what it receives for no plugin (as for our request on link).
        line = 'discarding unsupported packet "kdeconnect.notification.request"'
        reloads = peer_log(peer).count("reload plugins")
        set_kde_plugin(peer, phonebridge.id, False)
        wait_for(lambda: peer_log(peer).count("reload plugins") > reloads, 5, "a reload")
        time.sleep(0.5)
        before = peer_log(peer).count(line)
        phonebridge.cli("dismiss", peer.id, posted["id"])
        wait_for(lambda: peer_log(peer).count(line) > before, 10, "the peer to receive our cancel")
    else:
        closes = peer.monitor_log.read_text(errors="replace").count("member=CloseNotification")
        phonebridge.cli("dismiss", peer.id, posted["id"])

        def closed() -> bool:
            text = peer.monitor_log.read_text(errors="replace")
            tail = text.split("member=CloseNotification")[-1][:200]
            return text.count("member=CloseNotification") > closes and f"uint32 {GSC_REPLACES_ID}" in tail

        wait_for(closed, 10, "GSConnect to close the notification on its desktop")

    wait_for(lambda: not next(n for n in notifications(phonebridge, peer.id)
                              if n["id"] == posted["id"])["active"], 10, "the notification inactive")
    hits = json.loads(phonebridge.cli("search", "build finish", "--json").stdout)
    assert any(h["id"] == posted["id"] and h["device"] == peer.id for h in hits)
    device = phonebridge.device(peer.id)
    assert device["reachable"] and device["paired"]
    assert "Traceback" not in phonebridge.log_text()
