"""Keeping listed peers across a server restart (docs/protocol.md §1, resume).

The hub's listed peers (ids, names, token hashes — never tokens) are written to
STATE_FILE about a second after they change (at most every SAVE_INTERVAL seconds) and
at shutdown, so even a `kill -9` loses at most the last couple of seconds. At start
they are restored into a short grace period (RESTART_GRACE: open tabs reconnect within
about a second and a half; tabs closed while the server was down must not linger), so
tabs that reconnect with their resume token get their ids back and nobody sees a
leave/join.

The file is input like any client message: each entry is validated (name cleaned like
an `identify`, kind "browser", ids and token hashes of the right shape, finite times in
range) and bad entries are skipped; a file that cannot be parsed at all is moved aside
to `<name>.bad-<time>` with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import protocol
from .appkeys import HUB, SETTINGS
from .files import write_private
from .hub import Hub
from .peers import Peer
from .ratelimit import TokenBucket

log = logging.getLogger("server.state")

RESTART_GRACE = 5.0  # seconds a restored peer stays listed without reconnecting
SAVE_CHECK = 1.0  # seconds between looks for a change
SAVE_INTERVAL = 2.0  # at most one write per this many seconds
CLOCK_SKEW = 5.0  # seconds `saved_at` may lie in the future (an NTP step), no more
MAX_FILE_BYTES = 16 * 1024 * 1024

_PEER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")


class StateError(ValueError):
    """The file as a whole is unusable (not the shape `export_state` writes)."""


def valid_peers(
    state: object,
    *,
    wall_now: float,
    max_name_length: int,
    resume_grace: float,
    reserved: Callable[[str], bool] = lambda name: False,
) -> tuple[list[dict[str, Any]], int]:
    """(clean entries, how many were skipped) from a parsed state file; StateError
    when the file as a whole is unusable. Entries come back in `export_state`'s shape,
    names cleaned, `saved_at` as read."""
    if not isinstance(state, dict) or not isinstance(state.get("peers"), list):
        raise StateError("not an object with a list of peers")
    saved_at = state.get("saved_at")
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float) or not math.isfinite(saved_at):
        raise StateError("saved_at is not a finite number")
    if saved_at > wall_now + CLOCK_SKEW:
        raise StateError("saved_at is in the future")
    clean: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    for item in state["peers"]:
        peer = _valid_peer(item, max_name_length, resume_grace, reserved)
        if peer is None or peer["id"] in seen_ids or peer["token_hash"] in seen_hashes:
            continue
        seen_ids.add(peer["id"])
        seen_hashes.add(peer["token_hash"])
        clean.append(peer)
    return clean, len(state["peers"]) - len(clean)


def _valid_peer(
    item: object, max_name_length: int, resume_grace: float, reserved: Callable[[str], bool]
) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    peer_id, token_hash, name = item.get("id"), item.get("token_hash"), item.get("name")
    gone_for, kind = item.get("gone_for"), item.get("kind")
    if kind != "browser":  # bots rejoin by themselves; a saved "bot" is forged
        return None
    if not isinstance(peer_id, str) or not _PEER_ID.fullmatch(peer_id):
        return None
    if not isinstance(token_hash, str) or not _TOKEN_HASH.fullmatch(token_hash):
        return None
    if isinstance(gone_for, bool) or not isinstance(gone_for, int | float):
        return None
    if not (math.isfinite(gone_for) and 0 <= gone_for <= resume_grace):
        return None
    if not isinstance(name, str):
        return None
    try:
        cleaned = protocol.clean_name(name, max_name_length)
    except protocol.ProtocolError:
        return None
    if not cleaned or len(cleaned) > max_name_length or reserved(cleaned):
        return None
    caps = item.get("caps", [])
    if not isinstance(caps, list) or len(caps) > protocol.MAX_CAPS:
        caps = []
    space = protocol.clean_space(item.get("space"))  # docs/protocol.md §11; None: the open network
    return {
        "id": peer_id,
        "name": cleaned,
        "kind": kind,
        "token_hash": token_hash,
        "gone_for": float(gone_for),
        "caps": [c for c in caps if isinstance(c, str) and 0 < len(c) <= 32],
        **({"space": space} if space is not None else {}),
    }


def _move_aside(path: Path, reason: str) -> None:
    aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.replace(aside)
    except OSError as exc:
        log.warning("event=state-unreadable path=%s reason=%r moved=no error=%s", path, reason, exc)
        return
    log.warning("event=state-unreadable path=%s reason=%r moved_to=%s", path, reason, aside)


def restore(app: web.Application) -> int:
    """Restore the saved peers into the hub; returns how many."""
    settings, hub = app[SETTINGS], app[HUB]
    path = settings.state_file
    if path is None or not path.exists():
        return 0
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise StateError(f"larger than {MAX_FILE_BYTES} bytes")
        parsed = json.loads(path.read_bytes())
        wall_now = time.time()
        peers, skipped = valid_peers(
            parsed,
            wall_now=wall_now,
            max_name_length=settings.max_name_length,
            resume_grace=settings.resume_grace,
        )
    except (OSError, ValueError) as exc:  # StateError and JSON errors are ValueErrors
        _move_aside(path, str(exc)[:120])
        return 0
    # Calls are checked by the hub against the peers that came back.
    calls = parsed.get("calls", [])
    restored = import_state(
        hub,
        {"saved_at": parsed["saved_at"], "peers": peers, "calls": calls},
        wall_now,
        grace_cap=RESTART_GRACE,
    )
    log.info("event=state-restored peers=%d skipped=%d", restored, skipped)
    return restored


def export_state(hub: Hub, wall_now: float) -> dict[str, Any]:
    """Listed peers and their token hashes (never tokens), for `import_state` in the
    next process: a restarted server then looks like a short network blip."""
    now = hub.clock()
    peers = []
    for peer in hub.mirrors.held_here():
        if peer.kind != "browser":
            continue  # bots rejoin by themselves; another instance keeps its own peers
        gone_for = 0.0 if peer.gone_since is None else now - peer.gone_since
        peers.append(
            {
                "id": peer.id,
                "name": peer.name,
                "kind": peer.kind,
                "token_hash": peer.token_hash,
                "gone_for": round(gone_for, 3),
                "caps": sorted(peer.caps),
                **({"space": peer.space} if peer.space is not None else {}),
            }
        )
    saved = {str(p["id"]) for p in peers}
    calls = hub.rooms.export(saved)
    return {"saved_at": wall_now, "peers": peers, "calls": calls}


def import_state(hub: Hub, state: dict[str, Any], wall_now: float, grace_cap: float | None = None) -> int:
    """Restore peers saved by `export_state` (validated by `state.valid_peers`) into
    their grace period, of at most `grace_cap` seconds from now: open tabs reconnect
    at once, and tabs closed while the server was down must not linger. Returns how
    many are still within it. Malformed state is ignored, never fatal."""
    now = hub.clock()
    restored = 0
    try:
        downtime = max(0.0, wall_now - float(state["saved_at"]))
        for item in state["peers"]:
            gone_for = downtime + float(item["gone_for"])
            if gone_for >= hub.limits.resume_grace or not hub.restorable(
                item["id"], item["token_hash"], item["name"]
            ):
                continue
            if grace_cap is not None:  # time left: min(what was left, grace_cap)
                gone_for = max(gone_for, hub.limits.resume_grace - grace_cap)
            peer = Peer(
                id=str(item["id"]),
                token="",
                kind=str(item["kind"]),
                bucket=TokenBucket(hub.limits.rate_limit, hub.limits.rate_burst, now),
                conn=None,
                token_hash=str(item["token_hash"]),
                name=str(item["name"]),
                gone_since=now - gone_for,
            )
            peer.space = protocol.clean_space(item.get("space"))
            caps = item.get("caps", [])
            if isinstance(caps, list):
                peer.caps = frozenset(
                    c for c in caps[: protocol.MAX_CAPS] if isinstance(c, str) and len(c) <= 32
                )
            hub.restore(peer)
            restored += 1
        hub.rooms.restore(state.get("calls", []))
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("event=state-ignored reason=malformed")
    return restored


def _fingerprint(state: dict[str, Any]) -> str:
    """What makes a save worth it: who is listed, under which name and token (a resume
    rotates the token), and the calls. Not `gone_for`, which changes every moment
    someone is away."""
    peers = [{k: v for k, v in p.items() if k != "gone_for"} for p in state["peers"]]
    return json.dumps([peers, state.get("calls", [])], sort_keys=True)


def save_now(app: web.Application) -> bool:
    """Write the hub's listed peers (synchronously; small). False if it could not."""
    path = app[SETTINGS].state_file
    if path is None:
        return True
    state = export_state(app[HUB], time.time())
    return _write(path, state)


def _write(path: Path, state: dict[str, Any]) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(state).encode())  # token hashes: owner only
    except OSError as exc:
        log.warning("event=state-unwritable path=%s error=%s", path, exc)
        return False
    log.debug("event=state-saved peers=%d path=%s", len(state["peers"]), path)
    return True


async def save(app: web.Application) -> None:
    """on_cleanup: runs after every socket was closed and its peer entered grace."""
    if app[SETTINGS].state_file is not None and save_now(app):
        log.info("event=state-saved peers=%d", len(app[HUB].listed()))


async def saver_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: saves about a second after the listed peers change, at most every
    SAVE_INTERVAL seconds, off the event loop."""
    path = app[SETTINGS].state_file
    if path is None:
        yield
        return
    hub = app[HUB]

    async def loop() -> None:
        saved = _fingerprint(export_state(hub, time.time()))
        last_write = float("-inf")
        while True:
            await asyncio.sleep(SAVE_CHECK)
            state = export_state(hub, time.time())
            current = _fingerprint(state)
            if current == saved or time.monotonic() - last_write < SAVE_INTERVAL:
                continue
            last_write = time.monotonic()
            if await asyncio.to_thread(_write, path, state):
                saved = current

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
