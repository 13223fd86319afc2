"""Clipboard (PROTOCOL.md §8.4) with the real peers, both ways where the peer can be driven.

How each peer is driven (see the report of issue 3 and harness.py):
- KDE Connect 25.04: D-Bus `org.kde.kdeconnect.device.clipboard.sendClipboard()` sends its own
  clipboard (what we set there: our -> peer is read back), `sendClipboard(s)` sends any text
  (peer -> us). After receiving, sending its clipboard again proves we did not echo.
- GSConnect 62: its clipboard is GTK's on its Xvfb display; an X client in its root copies and
  pastes (harness `copy` / `clipboard_text`), with the per-device settings send-content and
  receive-content turned on (off by default).
- KDE Connect 22.12: no clipboard on D-Bus or in kdeconnect-cli, and its clipboard (Qt offscreen
  platform) lives inside the daemon process, so nothing outside can copy there. What it does send
  by itself is `clipboard.connect` {content, timestamp} whenever a link comes up: after we set
  its clipboard, a new link (PhoneBridge restarted) brings our text back, which shows both
  directions of the protocol (our `clipboard` in, its `clipboard.connect` out) with its timestamp.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .harness import GSConnect, KdeConnect7, KdeConnect8, Peer, PhoneBridge, wait_for

pytestmark = pytest.mark.interop

LINK_TIMEOUT = 20
PAIR_TIMEOUT = 40
SENT: dict[str, str] = {}
"""What test_clipboard_to_peer put on each peer's clipboard."""


def last_clipboard(pb: PhoneBridge) -> dict | None:
    return json.loads(pb.cli("clipboard", "--json").stdout)


def wait_received(pb: PhoneBridge, peer: Peer, content: str, what: str) -> dict:
    def check() -> dict | None:
        last = last_clipboard(pb)
        return last if last and last["device"] == peer.id and last["content"] == content else None

    try:
        return wait_for(check, 15, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- daemon log ---\n{pb.log_tail()}") from None


def gsconnect_received(peer: Peer) -> list[dict]:
    """The packets GSConnect read from PhoneBridge, from its debug log."""
    log = (peer.state / "log" / "peer.log").read_text(errors="replace")
    return [json.loads(m.group(1)) for m in
            re.finditer(r"\[file:_readLoop:[^\n]*: pb-interop: (\{\n.*?\n\})\n", log, re.S)]


def start_and_link(pb: PhoneBridge, peer: Peer) -> None:
    # Our broadcast is routed only onto the namespace's veth; the peer dials us.
    pb.start("--no-mdns", "--discovery-address", "255.255.255.255")
    pb.wait_device(peer.id, lambda d: d["reachable"], LINK_TIMEOUT, f"a link to {peer.name}")


def test_paired_with_clipboard(peer: Peer, phonebridge: PhoneBridge) -> None:
    start_and_link(phonebridge, peer)
    pairing = phonebridge.cli_background("pair", peer.id, "--timeout", "35")
    phonebridge.wait_device(peer.id, lambda d: d["pair_state"] == "requested", 10, "our request")
    peer.accept_pair(phonebridge.id)
    out, err = pairing.communicate(timeout=PAIR_TIMEOUT)
    assert pairing.returncode == 0, f"{out}\n{err}\n{phonebridge.log_tail()}"
    device = phonebridge.wait_device(peer.id, lambda d: "clipboard" in d["plugins"], 10,
                                     "the clipboard plugin")
    assert "kdeconnect.clipboard" in device["incoming_capabilities"]
    wait_for(lambda: peer.is_paired(phonebridge.id), 10, f"{peer.name} to trust us")
    if isinstance(peer, GSConnect):
        peer.enable_clipboard_sync(phonebridge.id)


def test_clipboard_to_peer(peer: Peer, phonebridge: PhoneBridge) -> None:
    text = f"from PhoneBridge to {peer.name} {time.time_ns()} — ✓ \"quoted\", comma"
    out = phonebridge.cli("clipboard", peer.id, text).stdout
    assert f"Sent the clipboard to {peer.device_name}" in out
    if isinstance(peer, GSConnect):
        wait_for(lambda: peer.clipboard_text() == text, 15, "GSConnect's clipboard to hold our text")
    elif isinstance(peer, KdeConnect8):
        time.sleep(0.5)  # the packet is on its way; then ask the peer to send its clipboard
        peer.send_clipboard(phonebridge.id)
        wait_received(phonebridge, peer, text, "25.04 to send back its clipboard (= our text)")
    else:
        assert isinstance(peer, KdeConnect7)
        # Read back in test_clipboard_from_peer (a new link makes 22.12 send its clipboard).
    SENT[peer.name] = text


def test_clipboard_from_peer(peer: Peer, phonebridge: PhoneBridge) -> None:
    sent_before = SENT.get(peer.name)
    if isinstance(peer, KdeConnect7):
        assert sent_before, "test_clipboard_to_peer must run first"
        phonebridge.stop()
        start_and_link(phonebridge, peer)
        phonebridge.wait_device(peer.id, lambda d: d["paired"] and "clipboard" in d["plugins"], 10,
                                "paired again")
        last = wait_received(phonebridge, peer, sent_before,
                             "22.12's clipboard.connect to carry the text we gave it")
        assert last["time"] > 0
        assert "clipboard received (kdeconnect.clipboard.connect" in phonebridge.log_text()
        assert "clipboard.connect older than our clipboard" not in phonebridge.log_text()
        return
    text = f"from {peer.name} {time.time_ns()} ünïcode ✓"
    owner = None
    try:
        if isinstance(peer, GSConnect):
            owner = peer.copy(text)
        else:
            assert isinstance(peer, KdeConnect8)
            peer.send_clipboard(phonebridge.id, text)
        wait_received(phonebridge, peer, text, f"{peer.name}'s clipboard")
        # No echo: the peer's clipboard was not replaced by anything we sent back.
        time.sleep(1.0)
        if isinstance(peer, KdeConnect8):
            # sendClipboard(s) did not touch its clipboard, which still holds our earlier text:
            # had we echoed, it would now hold `text`.
            peer.send_clipboard(phonebridge.id)
            wait_received(phonebridge, peer, sent_before, "25.04's own clipboard, unchanged")
        else:
            assert peer.clipboard_text() == text
            # GSConnect (debug on) logs every packet it reads from us.
            from_us = gsconnect_received(peer)
            assert [p["body"]["content"] for p in from_us if p["type"] == "kdeconnect.clipboard"] \
                == [SENT[peer.name]], "PhoneBridge sent the peer's own text back"
    finally:
        if owner is not None:
            owner.terminate()
            owner.wait(5)
