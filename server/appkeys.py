"""Typed application state keys (aiohttp `web.AppKey`), in one place so every module
agrees on what lives in the app."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .bundle import ClientBundler
from .config import Settings
from .hub import Hub
from .wsconn import WebSocketConnection


@dataclass(frozen=True, slots=True)
class Site:
    """How the outside world reaches this server: for the page, the banner, /ca.pem."""

    urls: list[str]  # one per LAN address, best first
    ca_file: Path | None  # the local CA certificate; None when KEY/CERT were given


SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
SITE = web.AppKey("site", Site)
STARTED = web.AppKey("started", float)  # time.monotonic() at app creation
SOCKETS = web.AppKey("sockets", weakref.WeakSet[WebSocketConnection])
BUNDLER = web.AppKey("bundler", ClientBundler)  # the client as served (server/bundle.py)
