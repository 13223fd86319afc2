"""PairingSession: the pairing state machine of one device (PROTOCOL.md §6.2), clock-free.

Rules:
1. `pair:true` answers our request (REQUESTED -> PAIRED) or starts theirs (-> INCOMING). A v8 peer's
   request must carry a `timestamp` (int or, as KDE 25.04 sends it, a decimal string) within
   PAIR_CLOCK_TOLERANCE of `now`; otherwise it is refused without a reply, as KDE does.
2. `pair:false` from the peer ends any state (cancel, reject or unpair).
3. A pending request in either direction expires after PAIR_TIMEOUT; we then send `pair:false`.
4. `pair:true` from a device we are paired with means it forgot us: we drop to unpaired and treat it
   as a new request (KDE and Android do the same; never auto-accept, §10.13).

Every method takes `now` (seconds since the epoch) and returns the actions to carry out, in order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from . import types
from .constants import PAIR_CLOCK_TOLERANCE, PAIR_TIMEOUT
from .errors import LocalProtocolError
from .packet import Packet, body_bool, body_int


class PairState(enum.Enum):
    UNPAIRED = "unpaired"
    REQUESTED = "requested"  # we asked, waiting for the peer
    INCOMING = "incoming"  # the peer asked, waiting for our user
    PAIRED = "paired"


@dataclass(frozen=True, slots=True)
class SendPacket:
    """Send this packet to the peer."""

    packet: Packet


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The pairing state moved; `reason` is for the user ("accepted", "timed out", ...)."""

    old: PairState
    new: PairState
    reason: str


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """A pair request from the peer was refused without a reply (missing or skewed timestamp)."""

    reason: str


Action = SendPacket | StateChanged | RequestRefused


def pair_packet(pair: bool, timestamp: int | None = None) -> Packet:
    body: dict[str, Any] = {"pair": pair}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return Packet(type=types.PAIR, body=body)


class PairingSession:
    """Pairing with one peer. `timestamp` is the one the verification key uses (§6.3)."""

    def __init__(self, peer_version: int, paired: bool = False) -> None:
        self.peer_version = peer_version
        self.state = PairState.PAIRED if paired else PairState.UNPAIRED
        self.timestamp: int | None = None
        self.deadline: float | None = None

    @property
    def is_paired(self) -> bool:
        return self.state is PairState.PAIRED

    @property
    def is_pending(self) -> bool:
        return self.state in (PairState.REQUESTED, PairState.INCOMING)

    # -- packets from the peer -------------------------------------------------------------

    def receive(self, packet: Packet, now: float) -> list[Action]:
        """Handle a `kdeconnect.pair` packet."""
        if body_bool(packet.body.get("pair")):
            return self._receive_request(packet.body, now)
        if self.state is PairState.UNPAIRED:
            return []
        reason = "unpaired by peer" if self.state is PairState.PAIRED else (
            "rejected by peer" if self.state is PairState.REQUESTED else "cancelled by peer"
        )
        return self._move(PairState.UNPAIRED, reason)

    def _receive_request(self, body: dict[str, Any], now: float) -> list[Action]:
        if self.state is PairState.REQUESTED:
            return self._move(PairState.PAIRED, "accepted by peer")
        if self.state is PairState.INCOMING:
            return []  # a duplicate of the request we are already showing
        actions: list[Action] = []
        if self.state is PairState.PAIRED:
            actions += self._move(PairState.UNPAIRED, "peer asked to pair again")
        timestamp = body_int(body.get("timestamp"))
        if self.peer_version >= 8:
            if timestamp is None:
                return actions + [RequestRefused("pair request without timestamp")]
            if abs(timestamp - now) > PAIR_CLOCK_TOLERANCE:
                return actions + [RequestRefused("device clocks are out of sync")]
        self.timestamp = timestamp
        self.deadline = now + PAIR_TIMEOUT
        return actions + self._move(PairState.INCOMING, "pair request from peer")

    # -- what our user does ----------------------------------------------------------------

    def request(self, now: float) -> list[Action]:
        """Ask the peer to pair; accepts instead when the peer is already asking."""
        if self.state is PairState.INCOMING:
            return self.accept(now)
        if self.state is not PairState.UNPAIRED:
            return []
        self.timestamp = int(now)
        self.deadline = now + PAIR_TIMEOUT
        return [SendPacket(pair_packet(True, self.timestamp))] + self._move(
            PairState.REQUESTED, "pair request sent"
        )

    def accept(self, now: float) -> list[Action]:
        if self.state is not PairState.INCOMING:
            raise LocalProtocolError(f"no pair request to accept (state {self.state.value})")
        return [SendPacket(pair_packet(True))] + self._move(PairState.PAIRED, "accepted")

    def reject(self, now: float) -> list[Action]:
        if not self.is_pending:
            raise LocalProtocolError(f"no pending pair request (state {self.state.value})")
        return [SendPacket(pair_packet(False))] + self._move(PairState.UNPAIRED, "rejected")

    def unpair(self, now: float) -> list[Action]:
        """Forget the peer (or cancel a pending request); always tells the peer."""
        return [SendPacket(pair_packet(False))] + self._move(PairState.UNPAIRED, "unpaired")

    def link_lost(self) -> list[Action]:
        """The link went away: a pending request dies with it (nothing can be sent)."""
        if not self.is_pending:
            return []
        return self._move(PairState.UNPAIRED, "link lost")

    # -- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """Expire a pending request whose 30 s are over."""
        if self.is_pending and self.deadline is not None and now >= self.deadline:
            return [SendPacket(pair_packet(False))] + self._move(PairState.UNPAIRED, "timed out")
        return []

    def _move(self, new: PairState, reason: str) -> list[Action]:
        old, self.state = self.state, new
        if new in (PairState.UNPAIRED, PairState.PAIRED):
            self.deadline = None
        return [StateChanged(old, new, reason)] if old is not new else []
