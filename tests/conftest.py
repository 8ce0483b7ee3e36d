"""Shared fixtures: a real HTTPS server on loopback with a throwaway local CA.

`start_server(**overrides)` starts `server.app.create_app` on 127.0.0.1 with TLS and
returns a `LiveServer`; `await live.restart()` stops it and starts a fresh app on the
same port (what a user sees when the server is restarted). Everything started is
stopped at the end of the test.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.config import PROJECT_ROOT
from server.netinfo import certificate_identities
from server.tls import CertFiles, ensure_local_certificates
from tests.support.liveserver import LiveServer, StartServer, settings_for_tests
from tests.support.redisserver import RedisServer

TEST_KINDS = ("unit", "integration", "browser")  # one folder each under tests/; the folder is the marker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test by its folder, so `-m unit` etc. select by where a test lives.

    A test module outside those folders is refused, so no test escapes `-m unit` and the like.
    """
    tests_root = Path(__file__).parent
    for item in items:
        relative = item.path.relative_to(tests_root)
        kind = relative.parts[0] if len(relative.parts) > 1 else ""
        if kind not in TEST_KINDS:
            raise pytest.UsageError(
                f"{item.path.relative_to(tests_root.parent)}: move it into tests/unit, tests/integration "
                "or tests/browser (the folder marks the test; see tests/conftest.py)"
            )
        item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return ensure_local_certificates(tmp_path_factory.mktemp("certs"), certificate_identities())


@pytest.fixture(scope="session")
def client_ssl(cert_files: CertFiles) -> ssl.SSLContext:
    """Verifies the server against the test CA: no verification is turned off."""
    return ssl.create_default_context(cafile=str(cert_files.ca))


@pytest.fixture
async def start_server(cert_files: CertFiles, tmp_path: Path) -> AsyncIterator[StartServer]:
    started: list[LiveServer] = []

    async def start(**overrides: Any) -> LiveServer:
        # Each server keeps its own state file, so `restart()` resumes its peers.
        overrides.setdefault("state_file", tmp_path / f"state-{len(started)}.json")
        live = LiveServer(settings_for_tests(**overrides), cert_files)
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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on loopback for this test (REDIS_URL tests, workers)."""
    server = RedisServer(tmp_path)  # fails with a clear message when redis-server is missing
    server.start()
    yield server
    server.stop()
