"""vCard parsing for the contacts plugin (PROTOCOL.md §8.9) and number normalisation."""

from __future__ import annotations

from phonebridge.plugins.contacts import parse_vcard
from phonebridge.store.contacts import normalize_number


def test_android_vcard() -> None:
    card = parse_vcard("BEGIN:VCARD\nVERSION:2.1\nFN:Alice Example\nTEL;CELL:+15555550123\n"
                       "X-KDECONNECT-ID-DEV-0f1e2d3c4b5a69788796a5b4c3d2e1f0:1\nREV:1724300000000\nEND:VCARD\n")
    assert card == {"name": "Alice Example", "numbers": ["+15555550123"], "photo": None,
                    "rev": 1724300000000}


def test_folded_photo_quoted_printable_and_n_fallback() -> None:
    text = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;Zo=C3=AB;;;\r\n"
            "TEL;HOME:(555) 123-4567\r\nTEL;WORK:+44 20 7946 0958\r\n"
            "PHOTO;ENCODING=BASE64;JPEG:/9j/4AAQ\r\n SkZJRg==\r\n\r\nEND:VCARD\r\n")
    card = parse_vcard(text)
    assert card["name"] == "Zoë Müller"
    assert card["numbers"] == ["(555) 123-4567", "+44 20 7946 0958"]
    assert card["photo"] == "/9j/4AAQSkZJRg=="
    assert parse_vcard("garbage")["name"] == ""
    assert parse_vcard("BEGIN:VCARD\nPHOTO:***\nEND:VCARD")["photo"] is None


def test_numbers_match_in_normalised_form() -> None:
    assert normalize_number("+1 (555) 555-0123") == normalize_number("555-555-0123") \
        == normalize_number("0015555550123") == "5555550123"
    assert normalize_number("12345") != normalize_number("2345")
    assert normalize_number("Bank@Example.com") == "bank@example.com"
