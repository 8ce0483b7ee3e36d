"""Keeping listed peers across a server restart (docs/protocol.md §1, resume).

At shutdown the hub's listed peers (ids, names, token hashes — never tokens) are
written to STATE_FILE; at start they are restored into their grace period, so tabs
that reconnect with their resume token get their ids back and nobody sees a leave/join.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web

from .appkeys import HUB, SETTINGS
from .files import write_private

log = logging.getLogger("server.state")


def restore(app: web.Application) -> None:
    path = app[SETTINGS].state_file
    if path is None or not path.is_file():
        return
    try:
        state = json.loads(path.read_text())
        path.unlink()  # one restart's worth: never restore the same peers twice
    except (OSError, ValueError) as exc:
        log.warning("event=state-unreadable path=%s error=%s", path, exc)
        return
    restored = app[HUB].import_state(state, time.time()) if isinstance(state, dict) else 0
    log.info("event=state-restored peers=%d", restored)


async def save(app: web.Application) -> None:
    """on_cleanup: runs after every socket was closed and its peer entered grace."""
    path = app[SETTINGS].state_file
    if path is None:
        return
    state = app[HUB].export_state(time.time())
    if not state["peers"]:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(state).encode())  # token hashes: owner only
    except OSError as exc:
        log.warning("event=state-unwritable path=%s error=%s", path, exc)
        return
    log.info("event=state-saved peers=%d path=%s", len(state["peers"]), path)
