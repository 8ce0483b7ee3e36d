"""Shared fixtures: a real HTTPS server on loopback with a throwaway local CA.

`start_server(**overrides)` starts `server.app.create_app` on 127.0.0.1 with TLS and
returns a `LiveServer`; `await live.restart()` stops it and starts a fresh app on the
same port (what a user sees when the server is restarted). Everything started is
stopped at the end of the test.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.appkeys import HUB, Site
from server.config import PROJECT_ROOT, ReloadMode, Settings
from server.hub import Hub
from server.netinfo import certificate_identities
from server.tls import CertFiles, ensure_local_certificates, server_context

TEST_KINDS = ("unit", "integration", "browser")  # one folder each under tests/; the folder is the marker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test by its folder, so `-m unit` etc. select by where a test lives.

    A test that still carries an explicit kind marker keeps it (mixed modules being split).
    """
    tests_root = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_root)
        kind = relative.parts[0] if len(relative.parts) > 1 else ""
        if kind in TEST_KINDS and not any(item.get_closest_marker(name) for name in TEST_KINDS):
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return ensure_local_certificates(tmp_path_factory.mktemp("certs"), certificate_identities())


@pytest.fixture(scope="session")
def client_ssl(cert_files: CertFiles) -> ssl.SSLContext:
    """Verifies the server against the test CA: no verification is turned off."""
    return ssl.create_default_context(cafile=str(cert_files.ca))


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
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.app = create_app(self.settings, Site([self.url], self.cert_files.ca))
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        context = server_context(self.cert_files.cert, self.cert_files.key, from_env=False)
        site = web.TCPSite(
            self.runner,
            "127.0.0.1",
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


def test_settings(**overrides: Any) -> Settings:
    """Settings for tests: no file watching and no echo peer unless asked for."""
    base: dict[str, Any] = {"reload": ReloadMode.OFF, "echo": False}
    base.update(overrides)
    return Settings(**base)


StartServer = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def start_server(cert_files: CertFiles, tmp_path: Path) -> AsyncIterator[StartServer]:
    started: list[LiveServer] = []

    async def start(**overrides: Any) -> LiveServer:
        # Each server keeps its own state file, so `restart()` resumes its peers.
        overrides.setdefault("state_file", tmp_path / f"state-{len(started)}.json")
        live = LiveServer(test_settings(**overrides), cert_files)
        await live.start()
        started.append(live)
        return live

    yield start
    for live in reversed(started):
        await live.stop()


@pytest.fixture
async def http(client_ssl: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTPS client session that trusts the test CA."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
        yield session


@pytest.fixture
def asset_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of public/ and templates/ a test may edit."""
    public, templates = tmp_path / "public", tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "public", public)
    shutil.copytree(PROJECT_ROOT / "templates", templates)
    return public, templates
