"""SMS message parsing (PROTOCOL.md §8.7) with the field types Android really sends, and the demo
phone's paging, checked against the rules Android follows (SMSHelper.getMessagesInRange)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.demo.sms import MMS, SMS, Message, android_page
from phonebridge.plugins.sms import BadMessage, Page, _Request, parse_message, parse_page

ints = st.integers(min_value=0, max_value=2**53)
dates = st.integers(min_value=0, max_value=2**49)
addresses = st.lists(st.fixed_dictionaries({"address": st.text(min_size=1, max_size=30)
                                            .filter(lambda s: s.strip())}), max_size=6)
attachments = st.lists(st.fixed_dictionaries({
    "part_id": ints, "mime_type": st.sampled_from(["image/jpeg", "image/png", "video/mp4", "text/plain"]),
    "unique_identifier": st.text(max_size=40),
}, optional={"encoded_thumbnail": st.sampled_from(["/9j/4AAQSkZJRg==", "iVBORw0KGgo="])}), max_size=3)


def android_message(with_attachments: bool):  # noqa: ANN201
    base = {
        "_id": ints, "thread_id": ints, "date": dates, "type": st.sampled_from([1, 2, 4, 5, 6]),
        "read": st.sampled_from([0, 1]), "body": st.text(max_size=200), "addresses": addresses,
        "sub_id": st.integers(min_value=-1, max_value=8), "event": st.sampled_from([0, 1, 2, 3]),
    }
    if with_attachments:
        base["attachments"] = attachments
    return st.fixed_dictionaries(base)


@settings(max_examples=200, deadline=None)
@given(st.one_of(android_message(False), android_message(True)))
def test_every_android_message_parses_to_the_same_values(raw) -> None:
    m = parse_message(raw)
    assert m.kind == (MMS if "attachments" in raw else SMS)
    assert (m.phone_id, m.thread_id, m.date, m.type, m.body) == (
        raw["_id"], raw["thread_id"], raw["date"], raw["type"], raw["body"])
    assert m.read is bool(raw["read"])
    assert list(m.addresses) == [a["address"].strip()[:200] for a in raw["addresses"]]
    assert m.event == raw["event"] and m.sub_id == raw["sub_id"]
    if "attachments" in raw:
        assert [a.part_id for a in m.attachments] == [a["part_id"] for a in raw["attachments"]]


@settings(max_examples=200, deadline=None)
@given(android_message(False), st.sampled_from(["_id", "thread_id", "date", "type"]),
       st.one_of(st.none(), st.text(alphabet="abcxyz", min_size=1), st.floats(allow_nan=True),
                 st.lists(st.integers()), st.booleans()))
def test_wrongly_typed_required_fields_are_rejected(raw, field, value) -> None:
    if isinstance(value, float) and value.is_integer():
        return  # 5.0 is a usable integer
    raw = {**raw, field: value}
    with pytest.raises(BadMessage):
        parse_message(raw)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(android_message(False), st.none(), st.integers(), st.text()), max_size=10))
def test_a_page_keeps_the_good_and_reports_the_bad(raws) -> None:
    page = parse_page(raws)
    assert len(page.messages) + len(page.bad) == len(raws) == page.raw_count


def test_integers_as_text_and_drafts_and_unknown_types() -> None:
    m = parse_message({"_id": "12", "thread_id": "3", "date": "1700000000000", "type": "1",
                       "read": "0", "addresses": [{"address": " +1 555 "}, {"address": 5}, "x"]})
    assert (m.phone_id, m.thread_id, m.type, m.read, m.body, m.addresses) == (
        12, 3, 1, False, "", ("+1 555",))
    for bad_type in (3, 0, 7, 99, -1, "sent"):
        with pytest.raises(BadMessage):
            parse_message({"_id": 1, "thread_id": 1, "date": 1, "type": bad_type})


def make(kind: str, mid: int, date: int) -> Message:
    return Message(kind, mid, 1, ["+1"], "", date, 1, 1, 1, 1)


def test_android_paging_rules() -> None:
    sms = [make(SMS, i, 1000 * (i // 3)) for i in range(30)]  # groups of 3 equal dates
    mms = [make(MMS, i, 1000 * i) for i in range(10)]
    thread = sms + mms
    page = android_page(thread, None, 5)
    # capped at 5 per table, merged in whole groups until >= 5
    assert len(page) >= 5
    assert [m.date for m in page] == sorted((m.date for m in page), reverse=True)
    first_dates = {m.date for m in page}
    assert all(m.date >= min(first_dates) for m in page)
    # inclusive boundary
    start = page[-1].date
    second = android_page(thread, start, 5)
    assert all(m.date <= start for m in second)
    assert any(m.date == start for m in second)
    # everything with N < 0, from the newest with start < 0
    assert len(android_page(thread, -1, -1)) == 40
    assert android_page(thread, 0, 1)[0].date == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SMS, MMS]), st.integers(0, 40)), min_size=1, max_size=80),
       st.integers(1, 12))
def test_desktop_paging_strategy_finds_everything(spec, n_min) -> None:
    """Paging from the oldest date seen with N > known-at-boundary ends with every message."""
    ids = itertools.count()
    thread = [make(kind, next(ids), date * 1000) for kind, date in spec]
    known: dict[tuple[str, int], Message] = {}
    start = None
    for _ in range(200):
        at_boundary = sum(1 for m in known.values() if start is not None and m.date >= start)
        page = android_page(thread, start, max(n_min, at_boundary + n_min))
        new = [m for m in page if (m.kind, m.id) not in known]
        for m in page:
            known[(m.kind, m.id)] = m
        if not page or not new:
            break
        start = min(m.date for m in page)
    assert set(known) == {(m.kind, m.id) for m in thread}


def test_answer_matching() -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        request = _Request(7, 5000, loop.create_future())
        ok = parse_page([{"_id": 1, "thread_id": 7, "date": 5000, "type": 1}])
        later = parse_page([{"_id": 2, "thread_id": 7, "date": 5001, "type": 1}])
        other = parse_page([{"_id": 3, "thread_id": 8, "date": 10, "type": 1}])
        mms_same_second = parse_page([{"_id": 4, "thread_id": 7, "date": 5000, "type": 1,
                                       "attachments": []}])
        assert request.answered_by(ok) and request.answered_by(Page([], [], 0))
        assert request.answered_by(mms_same_second)
        assert not request.answered_by(later) and not request.answered_by(other)
    finally:
        loop.close()
