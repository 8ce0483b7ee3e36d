"""The peer state file is input: validated entry by entry, a broken file moved aside,
restored peers given only a short grace after a restart."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from server import state
from server.app import create_app
from server.appkeys import HUB
from server.config import ReloadMode, Settings
from server.state import RESTART_GRACE, StateError, export_state, import_state, valid_peers
from tests.support.hubtools import apply, join, make_hub

NOW = 1_700_000_000.0
HASH = "a" * 64


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "5c1e8d2a-1111-4222-8333-944455556666", "name": "Bob", "kind": "browser"}
    base.update(token_hash=HASH, gone_for=1.5, caps=["group"])
    base.update(overrides)
    return base


def check(*entries: Any, saved_at: Any = NOW - 2) -> tuple[list[dict[str, Any]], int]:
    return valid_peers(
        {"saved_at": saved_at, "peers": list(entries)}, wall_now=NOW, max_name_length=64, resume_grace=20
    )


def test_a_good_entry_passes() -> None:
    peers, skipped = check(entry())
    assert skipped == 0 and peers == [entry()]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "\u202e" + "x" * 100_000 + "\0"},  # 100,002 characters with RLO and NUL
        {"name": ""},
        {"name": 5},
        {"kind": "bot", "name": "Echo test"},  # a forged bot
        {"kind": "admin"},
        {"gone_for": math.nan},
        {"gone_for": -1e9},
        {"gone_for": math.inf},
        {"gone_for": 1e9},
        {"gone_for": "1"},
        {"gone_for": True},
        {"id": ""},
        {"id": "x" * 65},
        {"id": "../../etc"},
        {"id": 7},
        {"token_hash": "A" * 64},
        {"token_hash": "a" * 63},
        {"token_hash": None},
    ],
)
def test_bad_entries_are_skipped(bad: dict[str, Any]) -> None:
    peers, skipped = check(entry(**bad), entry(id="other-id", token_hash="b" * 64))
    assert skipped == 1 and [p["id"] for p in peers] == ["other-id"]


def test_caps_are_kept_only_when_short_strings() -> None:
    peers, _ = check(entry(caps=["group", 5, "x" * 33]), entry(id="b", token_hash="b" * 64, caps="group"))
    assert [p["caps"] for p in peers] == [["group"], []]


def test_names_are_cleaned_like_an_identify() -> None:
    peers, _ = check(entry(name="  Bo\u200bb\u202e  "))
    assert peers[0]["name"] == "Bob"


def test_duplicate_ids_and_token_hashes_keep_the_first() -> None:
    peers, skipped = check(entry(), entry(name="Twin"), entry(id="other", name="Same token"))
    assert skipped == 2 and [p["name"] for p in peers] == ["Bob"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"peers": []},
        {"saved_at": NOW, "peers": {}},
        {"saved_at": math.nan, "peers": []},
        {"saved_at": "yesterday", "peers": []},
        {"saved_at": NOW + 3600, "peers": [entry()]},  # in the future
    ],
)
def test_unusable_files_are_refused_as_a_whole(document: Any) -> None:
    with pytest.raises(StateError):
        valid_peers(document, wall_now=NOW, max_name_length=64, resume_grace=20)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"reload": ReloadMode.OFF, "echo": False, "state_file": tmp_path / "peers.json"}
    base.update(overrides)
    return Settings(**base)


def test_unparseable_file_is_moved_aside_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "peers.json").write_text('{"saved_at": 1, "peers": [')
    caplog.set_level(logging.INFO, "server.state")
    app = create_app(settings_for(tmp_path))
    assert app[HUB].listed() == []
    assert not (tmp_path / "peers.json").exists()
    aside = list(tmp_path.glob("peers.json.bad-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"saved_at": 1, "peers": ['
    lines = [r for r in caplog.records if r.name == "server.state"]
    assert len(lines) == 1 and "moved_to=" in lines[0].getMessage()


def test_restore_skips_bad_entries_and_a_saved_echo_test(tmp_path: Path) -> None:
    import time

    document = {
        "saved_at": time.time(),
        "peers": [
            entry(name="\u202eEvil\0"),
            entry(id="two", token_hash="b" * 64, name="x" * 100_002),
            entry(id="three", token_hash="c" * 64, name="Echo test"),
            entry(id="four", token_hash="d" * 64, name="Alice"),
        ],
    }
    (tmp_path / "peers.json").write_text(json.dumps(document))
    app = create_app(settings_for(tmp_path, echo=True))
    names = sorted(p.name or "" for p in app[HUB].listed())
    assert names == ["Alice", "Evil"]


def test_restored_peers_get_a_short_grace_after_a_restart() -> None:
    hub, _ = make_hub(resume_grace=20)
    join(hub, "a", "Alice")
    saved = export_state(hub, wall_now=NOW)
    fresh, clock = make_hub(resume_grace=20)
    assert import_state(fresh, saved, wall_now=NOW + 1, grace_cap=RESTART_GRACE) == 1
    due = fresh.next_expiry()
    assert due is not None and due - clock.now <= RESTART_GRACE
    clock.advance(RESTART_GRACE + 0.01)
    apply(fresh.expire(), fresh)
    assert fresh.listed() == []


def test_a_restored_peer_near_the_end_of_its_grace_keeps_only_what_was_left() -> None:
    hub, _ = make_hub(resume_grace=20)
    join(hub, "a", "Alice")
    saved = export_state(hub, wall_now=NOW)
    fresh, clock = make_hub(resume_grace=20)
    import_state(fresh, saved, wall_now=NOW + 18, grace_cap=RESTART_GRACE)  # 2 s of grace left
    due = fresh.next_expiry()
    assert due is not None and 1.9 <= due - clock.now <= 2.1


def test_saver_writes_after_a_change(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    join(app[HUB], "a", "Alice")
    assert state.save_now(app)
    saved = json.loads((tmp_path / "peers.json").read_text())
    assert [p["name"] for p in saved["peers"]] == ["Alice"]
