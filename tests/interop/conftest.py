"""Fixtures for the interop tests: a real peer, brought up once per peer, and PhoneBridge beside it.

These tests need root (network namespaces) and the peers installed (`scripts/test.sh` installs
them). Outside CI a missing prerequisite skips them with the reason; under CI it fails them, so a
CI run can never pass without having talked to the real peers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .harness import ALL_PEERS, PEERS, PhoneBridge, Peer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"interop prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def bring_up(peer_class: type[Peer]) -> Peer:
    require(os.geteuid() == 0, "interop tests need root for network namespaces")
    require(PEERS.is_dir(), f"peer scripts not found at {PEERS}")
    require(shutil.which("ip") is not None, "iproute2 (ip) is missing")
    peer = peer_class()
    require(peer.installed(), f"{peer.name} is not installed: run `{peer.path} install`")
    peer.down_clean()
    peer.up()
    return peer


@pytest.fixture(scope="module", params=ALL_PEERS, ids=lambda c: c.name)
def peer(request: pytest.FixtureRequest):
    peer = bring_up(request.param)
    yield peer
    peer.down()


@pytest.fixture(scope="module")
def phonebridge(peer: Peer, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp(f"pb-{peer.name}")
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"interop-{peer.name}.log"
    log.unlink(missing_ok=True)
    pb = PhoneBridge(peer, home, log)
    yield pb
    pb.stop()
