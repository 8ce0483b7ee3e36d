"""The app in the test's own event loop, over real TLS on 127.0.0.1 (the `start_server` fixture
in tests/conftest.py makes these and stops them at the end of each test)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.app import create_app
from server.appkeys import HUB, Site
from server.config import ReloadMode, Settings
from server.hub import Hub
from server.tls import CertFiles, server_context
from tests.support.net import LOOPBACK, free_port


@dataclasses.dataclass
class LiveServer:
    settings: Settings
    cert_files: CertFiles
    port: int = 0
    runner: web.AppRunner | None = None
    app: web.Application | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"wss://localhost:{self.port}/rtc"

    @property
    def hub(self) -> Hub:
        assert self.app is not None
        return self.app[HUB]

    async def start(self) -> None:
        if not self.port:  # known before the app exists, so the page shows the real URL
            self.port = free_port()
        self.app = create_app(self.settings, Site([self.url], self.cert_files.ca))
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        context = server_context(self.cert_files.cert, self.cert_files.key, from_env=False)
        site = web.TCPSite(
            self.runner,
            LOOPBACK,
            self.port,
            ssl_context=context,
            reuse_address=True,
        )
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self, **overrides: Any) -> None:
        await self.stop()
        if overrides:
            self.settings = dataclasses.replace(self.settings, **overrides)
        await self.start()


def settings_for_tests(**overrides: Any) -> Settings:
    """Settings for tests: no file watching and no echo peer unless asked for."""
    base: dict[str, Any] = {"reload": ReloadMode.OFF, "echo": False}
    base.update(overrides)
    return Settings(**base)


StartServer = Callable[..., Awaitable[LiveServer]]
