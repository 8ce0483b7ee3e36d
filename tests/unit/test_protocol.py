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
