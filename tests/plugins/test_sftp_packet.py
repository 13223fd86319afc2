"""The phone's `kdeconnect.sftp` answer (PROTOCOL.md §8.14), parsed without I/O (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phonebridge.core.phonefiles import StorageRoot
from phonebridge.plugins.sftp import SftpOffer, SftpRefusal, parse_sftp_offer

ANDROID = {
    "ip": "192.168.1.23",
    "port": 1739,
    "user": "kdeconnect",
    "password": "x" * 28,
    "path": "/storage/emulated/0",
    "multiPaths": ["/storage/emulated/0", "/storage/1A2B-3C4D"],
    "pathNames": ["Internal shared storage", "SD card"],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def assert_well_formed(result: SftpOffer | SftpRefusal) -> None:
    if isinstance(result, SftpRefusal):
        assert isinstance(result.reason, str) and result.reason.strip()
        return
    assert 1 <= result.port <= 65535
    assert result.user and isinstance(result.user, str)
    assert result.password is None or (isinstance(result.password, str) and result.password)
    assert result.roots
    paths = [root.path for root in result.roots]
    assert len(set(paths)) == len(paths)
    for root in result.roots:
        assert root.path.startswith("/") and "\x00" not in root.path
        assert isinstance(root.name, str) and root.name


def test_android_answer_gives_every_volume_with_its_name() -> None:
    offer = parse_sftp_offer(ANDROID)
    assert offer == SftpOffer(
        port=1739, user="kdeconnect", password="x" * 28,
        roots=(StorageRoot("/storage/emulated/0", "Internal shared storage"),
               StorageRoot("/storage/1A2B-3C4D", "SD card")),
    )
    assert [r.to_json() for r in offer.roots][1] == {"path": "/storage/1A2B-3C4D",
                                                     "name": "SD card"}


def test_error_message_is_shown_as_the_phone_wrote_it() -> None:
    text = "Storage permission is needed to browse files"
    assert parse_sftp_offer({"errorMessage": text}) == SftpRefusal(text)
    assert parse_sftp_offer({**ANDROID, "errorMessage": text}) == SftpRefusal(text)


@given(st.text(min_size=1, max_size=200).filter(str.strip))
def test_any_error_message_wins_verbatim(text: str) -> None:
    assert parse_sftp_offer({**ANDROID, "errorMessage": text}) == SftpRefusal(text)


@pytest.mark.parametrize("port", [0, -1, 65536, 10**12, None, "abc", True, 1.5, [1739], {}])
def test_a_port_that_cannot_be_dialled_is_refused(port: object) -> None:
    body = {**ANDROID, "port": port}
    if port is None:
        del body["port"]
    result = parse_sftp_offer(body)
    assert isinstance(result, SftpRefusal)
    assert "port" in result.reason


@given(st.integers(1, 65535))
def test_port_as_number_or_text(port: int) -> None:
    assert parse_sftp_offer({**ANDROID, "port": port}).port == port
    assert parse_sftp_offer({**ANDROID, "port": str(port)}).port == port


def test_missing_user_and_password_fall_back_to_kdeconnect_and_key_login() -> None:
    offer = parse_sftp_offer({"port": 1740, "path": "/storage/emulated/0"})
    assert offer == SftpOffer(1740, "kdeconnect", None,
                              (StorageRoot("/storage/emulated/0", "0"),))


def test_wrong_types_for_user_password_and_paths_are_ignored() -> None:
    offer = parse_sftp_offer({"port": 1739, "user": 5, "password": ["p"], "path": 7,
                              "multiPaths": "/storage/emulated/0", "pathNames": None})
    assert offer == SftpOffer(1739, "kdeconnect", None, (StorageRoot("/", "Phone"),))


def test_names_of_another_length_are_not_paired_with_the_wrong_volume() -> None:
    offer = parse_sftp_offer({**ANDROID, "pathNames": ["SD card"]})
    assert [(r.path, r.name) for r in offer.roots] == [
        ("/storage/emulated/0", "0"), ("/storage/1A2B-3C4D", "1A2B-3C4D")]


def test_relative_duplicate_and_odd_paths_are_dropped() -> None:
    offer = parse_sftp_offer({**ANDROID,
                              "multiPaths": ["relative", "/a//b/", "/a/b", 3, "/x\x00y", "/c"],
                              "pathNames": ["r", "AB", "again", "three", "nul", "C"]})
    assert [(r.path, r.name) for r in offer.roots] == [("/a/b", "AB"), ("/c", "C")]


def test_no_usable_multi_paths_falls_back_to_path() -> None:
    offer = parse_sftp_offer({**ANDROID, "multiPaths": [], "pathNames": []})
    assert offer.roots == (StorageRoot("/storage/emulated/0", "0"),)


def test_the_ip_field_is_not_part_of_the_offer() -> None:
    offer = parse_sftp_offer({**ANDROID, "ip": "8.8.8.8"})
    assert not hasattr(offer, "ip")


@given(st.dictionaries(st.sampled_from(sorted(ANDROID) + ["errorMessage", "other"]), json_values,
                       max_size=9))
@settings(max_examples=500)
def test_any_body_gives_a_usable_offer_or_a_reason(body: dict) -> None:
    assert_well_formed(parse_sftp_offer(body))


@given(st.fixed_dictionaries({
    "port": st.integers(1, 65535) | st.integers(1, 65535).map(str),
    "password": st.text(max_size=40),
    "multiPaths": st.lists(st.text(max_size=20).map(lambda s: "/" + s), max_size=6),
    "pathNames": st.lists(st.text(max_size=20), max_size=6),
}))
@settings(max_examples=300)
def test_well_typed_answers_are_always_offers(body: dict) -> None:
    result = parse_sftp_offer(body)
    assert isinstance(result, SftpOffer)
    assert_well_formed(result)


display_names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s)


@given(st.lists(st.tuples(st.sampled_from(["/storage/emulated/0", "/storage/AAAA-BBBB", "/mnt/x"]),
                          display_names),
                min_size=1, max_size=5, unique_by=lambda pair: pair[0]))
def test_matching_names_label_their_volume(pairs: list[tuple[str, str]]) -> None:
    offer = parse_sftp_offer({"port": 1739, "multiPaths": [p for p, _ in pairs],
                              "pathNames": [n for _, n in pairs]})
    assert [(r.path, r.name) for r in offer.roots] == [(p, n.strip()) for p, n in pairs]


def test_non_object_body_is_refused() -> None:
    assert isinstance(parse_sftp_offer([]), SftpRefusal)  # type: ignore[arg-type]
