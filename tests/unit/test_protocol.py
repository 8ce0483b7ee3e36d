"""Pure protocol helpers: name cleaning and message building."""

from __future__ import annotations

import json

import pytest

from server import protocol
from server.protocol import ProtocolError, Relay, clean_name


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Alice", "Alice"),
        ("  Bob  ", "Bob"),
        ("Ca\x00rol\x07", "Carol"),
        ("two\n\nlines\there", "two lines here"),
        ("\u202eevil\u202c", "evil"),
        ("zero\u200bwidth", "zerowidth"),
        ("👩\u200d👩\u200d👧 family", "👩\u200d👩\u200d👧 family"),
        ("Zoë's Pixel 8", "Zoë's Pixel 8"),
    ],
)
def test_clean_name(raw: str, clean: str) -> None:
    assert clean_name(raw, 64) == clean


def test_clean_name_length_counts_characters() -> None:
    assert clean_name("é" * 64, 64) == "é" * 64
    with pytest.raises(ProtocolError) as caught:
        clean_name("é" * 65, 64)
    assert caught.value.code == "bad-name"


def test_relay_overwrites_sender_fields() -> None:
    message = Relay(
        "icecandidate", "T", {"id": "forged", "source": "forged", "target": "T", "candidate": None}
    )
    data = json.loads(protocol.relay(message, "REAL"))["data"]
    assert data == {"id": "REAL", "source": "REAL", "target": "T", "candidate": None}


def test_peer_message_shape_matches_original_protocol() -> None:
    assert json.loads(protocol.peer("i", "n", "bot")) == {
        "type": "peer",
        "data": {"id": "i", "name": "n", "kind": "bot"},
    }
    assert json.loads(protocol.peer("i", "n", "browser", remove=True))["data"]["remove"] is True


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse("[" * 100_000 + "]" * 100_000)
    assert caught.value.code in ("bad-json", "bad-message")


# Issue 9, attack 7: eight lookalikes of "Bob" were accepted as different names. Each must
# now either become exactly "Bob" (so lists show a duplicate, which the UI tells apart) or
# be refused.
LOOKALIKES = [
    "B\u043eb",  # Cyrillic о
    "Bo\u00adb",  # soft hyphen
    "Bo\u061cb",  # Arabic letter mark
    "Bob\U000e0041\U000e007f",  # tag characters
    "Bo\u180eb",  # Mongolian vowel separator
    "Bo\u0336b\u0336",  # combining overlays
    "B\u200dob",  # zero-width joiner between letters
    "Bob\u3164",  # Hangul filler (a blank letter)
]


@pytest.mark.parametrize("raw", LOOKALIKES)
def test_lookalike_names_become_the_real_name_or_are_refused(raw: str) -> None:
    try:
        assert clean_name(raw, 64) == "Bob"
    except ProtocolError as refused:
        assert refused.code == "bad-name" and "alphabet" in refused.message


def test_names_keep_what_real_names_need() -> None:
    assert clean_name("Nguye\u0302\u0303n", 64) == "Nguyễn"  # NFC composes the accents
    assert clean_name("नमस्ते", 64) == "नमस्ते"  # Devanagari keeps its combining signs
    assert clean_name("Ελένη Παπά", 64) == "Ελένη Παπά"
    assert clean_name("Иван & Bob", 64) == "Иван & Bob"  # scripts mix across words
    assert clean_name("👍\ufe0f ok", 64) == "👍\ufe0f ok"


def test_rejecting_a_huge_name_does_no_per_character_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 KiB names at 45/s once cost a whole core: refuse before normalising."""

    class NoWork:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"a name far past the limit reached unicodedata.{name}")

    monkeypatch.setattr(protocol, "unicodedata", NoWork())
    with pytest.raises(ProtocolError) as caught:
        clean_name("x" * 65_000, 64)
    assert caught.value.code == "bad-name"


def test_name_key_folds_case_accents_spacing_and_lookalikes() -> None:
    assert (
        protocol.name_key(" ÉCHO   test") == protocol.name_key("\u0415\u0441\u04bb\u043e test") == "echo test"
    )


def test_relay_forwards_only_documented_fields() -> None:
    message = Relay("offer", "T", {"type": "offer", "sdp": "v=0", "target": "T", "html": "<b>", "seq": 1})
    assert json.loads(protocol.relay(message, "S"))["data"] == {
        "type": "offer",
        "sdp": "v=0",
        "source": "S",
        "target": "T",
    }


def test_leave_and_ping_parse() -> None:
    assert isinstance(protocol.parse('{"type":"leave","data":{}}'), protocol.Leave)
    assert protocol.parse('{"type":"ping","data":{"t":3}}') == protocol.Ping(3)
