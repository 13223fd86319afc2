"""PairingSession (PROTOCOL.md §5, §6.2): the pure state machine, time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.protocol import types
from phonebridge.protocol.constants import PAIR_CLOCK_TOLERANCE, PAIR_TIMEOUT
from phonebridge.protocol.errors import LocalProtocolError
from phonebridge.protocol.packet import Packet
from phonebridge.protocol.pairing import (
    PairingSession,
    PairState,
    RequestRefused,
    SendPacket,
    StateChanged,
    pair_packet,
)

NOW = 1_795_653_568.0  # what KDE 25.04 sent in a real session, as seconds


def pair(body: dict) -> Packet:
    return Packet(types.PAIR, body)


def sent(actions) -> list[dict]:  # noqa: ANN001
    return [a.packet.body for a in actions if isinstance(a, SendPacket)]


def changes(actions) -> list[tuple[PairState, PairState]]:  # noqa: ANN001
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def refusals(actions) -> list[RequestRefused]:  # noqa: ANN001
    return [a for a in actions if isinstance(a, RequestRefused)]


def incoming(version: int = 8, ts: float = NOW) -> PairingSession:
    session = PairingSession(version)
    session.receive(pair({"pair": True, "timestamp": int(ts)}), ts)
    assert session.state is PairState.INCOMING
    return session


def test_constants():
    assert PAIR_TIMEOUT == 30.0
    assert PAIR_CLOCK_TOLERANCE == 1800


def test_pair_packets():
    assert pair_packet(True, 5) == Packet(types.PAIR, {"pair": True, "timestamp": 5})
    assert pair_packet(True) == Packet(types.PAIR, {"pair": True})
    assert pair_packet(False) == Packet(types.PAIR, {"pair": False})


# -- we ask ----------------------------------------------------------------------------------------------


def test_request_sends_pair_true_with_timestamp_in_seconds():
    session = PairingSession(8)
    actions = session.request(NOW + 0.7)
    assert sent(actions) == [{"pair": True, "timestamp": int(NOW)}]
    assert isinstance(sent(actions)[0]["timestamp"], int)
    assert changes(actions) == [(PairState.UNPAIRED, PairState.REQUESTED)]
    assert session.timestamp == int(NOW)
    assert session.is_pending and not session.is_paired
    assert session.deadline == pytest.approx(NOW + 0.7 + 30)


def test_request_accepted_by_peer():
    session = PairingSession(8)
    session.request(NOW)
    actions = session.receive(pair({"pair": True}), NOW + 5)
    assert changes(actions) == [(PairState.REQUESTED, PairState.PAIRED)]
    assert sent(actions) == []
    assert session.is_paired and session.deadline is None


def test_request_rejected_by_peer():
    session = PairingSession(8)
    session.request(NOW)
    actions = session.receive(pair({"pair": False}), NOW + 5)
    assert changes(actions) == [(PairState.REQUESTED, PairState.UNPAIRED)]
    assert "reject" in actions[0].reason
    assert sent(actions) == []
    assert session.deadline is None


@pytest.mark.parametrize("state", [PairState.REQUESTED, PairState.PAIRED])
def test_request_when_already_requested_or_paired_does_nothing(state):
    session = PairingSession(8, paired=state is PairState.PAIRED)
    if state is PairState.REQUESTED:
        session.request(NOW)
    assert session.request(NOW + 1) == []
    assert session.state is state


def test_own_request_times_out_at_30_seconds():
    session = PairingSession(8)
    session.request(NOW)
    assert session.tick(NOW + 29.999) == []
    assert session.state is PairState.REQUESTED
    actions = session.tick(NOW + 30)
    assert sent(actions) == [{"pair": False}]
    assert changes(actions) == [(PairState.REQUESTED, PairState.UNPAIRED)]
    assert "timed out" in [a for a in actions if isinstance(a, StateChanged)][0].reason
    assert session.tick(NOW + 31) == [], "times out only once"


def test_accept_after_timeout_is_a_new_request_not_an_accept():
    session = PairingSession(8)
    session.request(NOW)
    session.tick(NOW + 31)
    actions = session.receive(pair({"pair": True}), NOW + 32)
    assert session.state is PairState.UNPAIRED
    assert refusals(actions) and sent(actions) == []


# -- they ask ------------------------------------------------------------------------------------------


def test_incoming_request_waits_for_the_user():
    session = PairingSession(8)
    actions = session.receive(pair({"pair": True, "timestamp": int(NOW)}), NOW)
    assert changes(actions) == [(PairState.UNPAIRED, PairState.INCOMING)]
    assert sent(actions) == [], "never auto-accept"
    assert session.timestamp == int(NOW)
    assert session.deadline == NOW + 30


def test_accept_sends_pair_true_without_timestamp():
    session = incoming()
    actions = session.accept(NOW + 3)
    assert sent(actions) == [{"pair": True}]
    assert changes(actions) == [(PairState.INCOMING, PairState.PAIRED)]
    assert session.deadline is None


def test_reject_sends_pair_false():
    session = incoming()
    actions = session.reject(NOW + 3)
    assert sent(actions) == [{"pair": False}]
    assert changes(actions) == [(PairState.INCOMING, PairState.UNPAIRED)]


def test_user_request_while_incoming_accepts():
    session = incoming()
    actions = session.request(NOW + 2)
    assert sent(actions) == [{"pair": True}]
    assert session.is_paired
    assert session.timestamp == int(NOW), "the key keeps the peer's timestamp"


def test_incoming_request_times_out_at_30_seconds():
    session = incoming()
    assert session.tick(NOW + 29.5) == []
    actions = session.tick(NOW + 30.5)
    assert sent(actions) == [{"pair": False}]
    assert session.state is PairState.UNPAIRED
    with pytest.raises(LocalProtocolError):
        session.accept(NOW + 31)


def test_peer_cancels_incoming_request():
    session = incoming()
    actions = session.receive(pair({"pair": False}), NOW + 1)
    assert changes(actions) == [(PairState.INCOMING, PairState.UNPAIRED)]
    assert sent(actions) == []


def test_duplicate_request_is_ignored():
    session = incoming()
    deadline = session.deadline
    assert session.receive(pair({"pair": True, "timestamp": int(NOW) + 10}), NOW + 10) == []
    assert session.state is PairState.INCOMING
    assert session.timestamp == int(NOW) and session.deadline == deadline


@pytest.mark.parametrize("timestamp", ["1795653568", " 1795653568", 1795653568, 1795653568.0])
def test_timestamp_as_json_string_or_number_accepted(timestamp):
    session = PairingSession(8)
    actions = session.receive(pair({"pair": True, "timestamp": timestamp}), NOW)
    assert session.state is PairState.INCOMING, actions
    assert session.timestamp == 1795653568


@pytest.mark.parametrize("timestamp", [None, "soon", [1], True, 1795653568.5])
def test_v8_request_without_usable_timestamp_refused_without_reply(timestamp):
    session = PairingSession(8)
    body = {"pair": True} if timestamp is None else {"pair": True, "timestamp": timestamp}
    actions = session.receive(pair(body), NOW)
    assert session.state is PairState.UNPAIRED
    assert len(refusals(actions)) == 1
    assert sent(actions) == [] and changes(actions) == []


@pytest.mark.parametrize("skew", [-1801, 1801, 86400, -10**9])
def test_v8_request_with_clock_skew_over_1800_s_refused_without_reply(skew):
    session = PairingSession(8)
    actions = session.receive(pair({"pair": True, "timestamp": int(NOW) + skew}), NOW)
    assert session.state is PairState.UNPAIRED
    assert len(refusals(actions)) == 1 and sent(actions) == []


@pytest.mark.parametrize("skew", [-1800, 0, 1800])
def test_v8_request_within_1800_s_accepted(skew):
    session = PairingSession(8)
    session.receive(pair({"pair": True, "timestamp": int(NOW) + skew}), NOW)
    assert session.state is PairState.INCOMING


def test_v7_request_without_timestamp_accepted():
    session = PairingSession(7)
    actions = session.receive(pair({"pair": True}), NOW)
    assert changes(actions) == [(PairState.UNPAIRED, PairState.INCOMING)]
    assert session.timestamp is None


def test_v7_request_with_skewed_timestamp_not_checked():
    session = PairingSession(7)
    session.receive(pair({"pair": True, "timestamp": 1}), NOW)
    assert session.state is PairState.INCOMING


def test_pair_string_true_is_a_request():
    session = PairingSession(8)
    session.receive(pair({"pair": "true", "timestamp": int(NOW)}), NOW)
    assert session.state is PairState.INCOMING


# -- paired ----------------------------------------------------------------------------------------------


def test_pair_true_while_paired_means_unpaired_then_incoming():
    session = PairingSession(8, paired=True)
    actions = session.receive(pair({"pair": True, "timestamp": int(NOW)}), NOW)
    assert changes(actions) == [(PairState.PAIRED, PairState.UNPAIRED),
                                (PairState.UNPAIRED, PairState.INCOMING)]
    assert sent(actions) == [], "not auto-accepted (§10.13)"
    assert session.state is PairState.INCOMING


def test_pair_true_without_timestamp_while_paired_unpairs_and_refuses():
    session = PairingSession(8, paired=True)
    actions = session.receive(pair({"pair": True}), NOW)
    assert changes(actions) == [(PairState.PAIRED, PairState.UNPAIRED)]
    assert len(refusals(actions)) == 1
    assert session.state is PairState.UNPAIRED


def test_peer_unpairs():
    session = PairingSession(8, paired=True)
    actions = session.receive(pair({"pair": False}), NOW)
    assert changes(actions) == [(PairState.PAIRED, PairState.UNPAIRED)]
    assert sent(actions) == []


def test_pair_false_while_unpaired_is_ignored():
    session = PairingSession(8)
    assert session.receive(pair({"pair": False}), NOW) == []
    assert session.receive(pair({}), NOW) == []
    assert session.state is PairState.UNPAIRED


@pytest.mark.parametrize("state", list(PairState))
def test_unpair_always_tells_the_peer(state):
    session = PairingSession(8, paired=state is PairState.PAIRED)
    if state is PairState.REQUESTED:
        session.request(NOW)
    elif state is PairState.INCOMING:
        session = incoming()
    actions = session.unpair(NOW + 1)
    assert sent(actions) == [{"pair": False}]
    assert session.state is PairState.UNPAIRED and session.deadline is None


def test_paired_session_never_times_out():
    session = PairingSession(8, paired=True)
    assert session.tick(NOW + 10**6) == []


@pytest.mark.parametrize("state", [PairState.UNPAIRED, PairState.REQUESTED, PairState.PAIRED])
def test_accept_without_incoming_request_is_a_local_error(state):
    session = PairingSession(8, paired=state is PairState.PAIRED)
    if state is PairState.REQUESTED:
        session.request(NOW)
    with pytest.raises(LocalProtocolError):
        session.accept(NOW)
    assert session.state is state


@pytest.mark.parametrize("state", [PairState.UNPAIRED, PairState.PAIRED])
def test_reject_without_pending_request_is_a_local_error(state):
    session = PairingSession(8, paired=state is PairState.PAIRED)
    with pytest.raises(LocalProtocolError):
        session.reject(NOW)
    assert session.state is state


def test_link_lost_ends_a_pending_request_without_a_packet():
    for session in (incoming(), PairingSession(8)):
        if session.state is PairState.UNPAIRED:
            session.request(NOW)
        before = session.state
        actions = session.link_lost()
        assert changes(actions) == [(before, PairState.UNPAIRED)]
        assert sent(actions) == [], "nothing can be sent on a lost link"
        assert session.deadline is None and session.tick(NOW + 60) == []


@pytest.mark.parametrize("paired", [True, False])
def test_link_lost_keeps_a_pairing(paired):
    session = PairingSession(8, paired=paired)
    assert session.link_lost() == []
    assert session.is_paired is paired


# -- random walks ------------------------------------------------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["request", "accept", "reject", "unpair", "tick",
                         "recv_true_ts", "recv_true", "recv_false", "recv_true_skewed",
                         "link_lost"]),
        st.floats(min_value=0, max_value=40),
    ),
    max_size=25,
)


@settings(max_examples=300)
@given(version=st.sampled_from([7, 8]), paired=st.booleans(), ops=operations)
def test_random_walks_keep_the_invariants(version, paired, ops):
    session = PairingSession(version, paired=paired)
    now = NOW
    for op, dt in ops:
        now += dt
        # The daemon's timer ticks the session at its deadline, before anything later happens.
        tick = session.tick(now)
        if tick:
            assert sent(tick) == [{"pair": False}]
            assert session.state is PairState.UNPAIRED
        assert not (session.is_pending and now >= session.deadline), "outlived its deadline"
        before = session.state
        try:
            if op == "request":
                actions = session.request(now)
            elif op == "accept":
                actions = session.accept(now)
            elif op == "reject":
                actions = session.reject(now)
            elif op == "unpair":
                actions = session.unpair(now)
            elif op == "tick":
                actions = session.tick(now)
            elif op == "recv_true_ts":
                actions = session.receive(pair({"pair": True, "timestamp": int(now)}), now)
            elif op == "recv_true":
                actions = session.receive(pair({"pair": True}), now)
            elif op == "recv_false":
                actions = session.receive(pair({"pair": False}), now)
            elif op == "link_lost":
                actions = session.link_lost()
                assert sent(actions) == []
            else:
                actions = session.receive(pair({"pair": True, "timestamp": int(now) - 7200}), now)
        except LocalProtocolError:
            assert session.state is before, "a refused user action changes nothing"
            continue
        # The StateChanged actions chain from the old state to the new one.
        state = before
        for change in changes(actions):
            assert change[0] is state and change[1] is not state
            state = change[1]
        assert state is session.state
        # Only pair packets with a boolean `pair` are sent; a timestamp only with our request.
        for body in sent(actions):
            assert isinstance(body["pair"], bool)
            assert set(body) <= {"pair", "timestamp"}
            if "timestamp" in body:
                assert body["pair"] is True and session.state is PairState.REQUESTED
        # A deadline exists exactly while a request is pending, and is at most 30 s away.
        if session.is_pending:
            assert session.deadline is not None and session.deadline <= now + PAIR_TIMEOUT
        else:
            assert session.deadline is None
