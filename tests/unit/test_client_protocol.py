"""The browser's wire vocabulary (public/core/protocol.js) is the server's (server/protocol.py):
message types, the fields each relay carries, error codes, capabilities and space codes,
read from the module itself under Node. Like the settings table in the README, a change on
one side fails here until the other follows (issue 21, part 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from server import protocol
from server.config import PROJECT_ROOT

DUMP = """
const p = await import(process.argv[1]);
console.log(JSON.stringify({
  relayFields: p.RELAY_FIELDS, callRequests: p.CALL_REQUESTS, clientTypes: p.CLIENT_TYPES,
  serverTypes: p.SERVER_TYPES, errors: Object.values(p.ERROR), caps: p.CAPS, dataLink: p.DATA_LINK,
  space: p.SPACE, maxReason: p.MAX_REASON_LENGTH,
  roles: ['offer', 'icecandidate', 'space-move', 'call', 'invite'].map((t) => p.relayRole(t, {})),
  dataRole: p.relayRole('offer', { link: p.DATA_LINK }),
}));
"""


@pytest.fixture(scope="module")
def client() -> dict[str, Any]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (scripts/setup installs it)")
    module = (PROJECT_ROOT / "public" / "core" / "protocol.js").as_uri()
    result = subprocess.run(
        ["node", "--input-type=module", "-e", DUMP, module],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_relays_carry_the_same_fields(client: dict[str, Any]) -> None:
    assert {k: tuple(v) for k, v in client["relayFields"].items()} == protocol.RELAY_FIELDS


def test_the_same_message_types_each_way(client: dict[str, Any]) -> None:
    assert set(client["callRequests"]) == protocol.CALL_TYPES
    assert set(client["clientTypes"]) == protocol.CLIENT_TYPES
    built = [
        protocol.ready("v", "id", "token", {}),
        protocol.peer("id", "Ann", "browser"),
        protocol.error(protocol.BAD_JSON, "m"),
        protocol.pong(1),
        protocol.call("c", ["a", "b"]),
        protocol.invite("a", "b", "c", ["a"]),
    ]
    assert set(client["serverTypes"]) == {json.loads(frame)["type"] for frame in built}


def test_the_same_error_codes_capabilities_and_space_codes(client: dict[str, Any]) -> None:
    assert set(client["errors"]) == protocol.ERROR_CODES
    assert client["caps"] == {"GROUP": protocol.GROUP, "DATA": protocol.DATA}
    assert client["dataLink"] == protocol.DATA_LINK
    assert client["space"] == {
        "ALPHABET": protocol.SPACE_ALPHABET,
        "MIN_LENGTH": protocol.SPACE_MIN_LENGTH,
        "MAX_LENGTH": protocol.SPACE_MAX_LENGTH,
    }
    assert client["maxReason"] == protocol.MAX_REASON_LENGTH


def test_frames_go_to_their_role(client: dict[str, Any]) -> None:
    assert client["roles"] == ["call", "call", "space", "call", "call"]
    assert client["dataRole"] == "data"
