"""LAN address discovery and the printed URLs (addresses discovered, not hard-coded)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import ifaddr
import pytest

from server import netinfo
from server.banner import banner, terminal_qr


def fake_adapters(monkeypatch: pytest.MonkeyPatch, ips: list[Any]) -> None:
    adapter = SimpleNamespace(nice_name="eth0", ips=[SimpleNamespace(ip=ip) for ip in ips])
    monkeypatch.setattr(ifaddr, "get_adapters", lambda: [adapter])
    monkeypatch.setattr(netinfo.socket, "gethostname", lambda: "studio.example.org")


def test_urls_list_lan_ipv4_first_then_mdns_name(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_adapters(
        monkeypatch,
        ["127.0.0.1", "10.0.0.7", "169.254.3.3", "192.168.1.20", ("fe80::1", 0, 2), ("fd00::5", 0, 0)],
    )
    assert netinfo.public_urls(None, 3000) == [
        "https://192.168.1.20:3000/",
        "https://10.0.0.7:3000/",
        "https://studio.local:3000/",
    ]
    assert netinfo.public_urls("0.0.0.0", 8443)[-1] == "https://studio.local:8443/"


def test_specific_bind_address_prints_only_that(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_adapters(monkeypatch, ["192.168.1.20"])
    assert netinfo.public_urls("192.168.1.20", 3000) == ["https://192.168.1.20:3000/"]
    assert netinfo.public_urls("127.0.0.1", 3000) == ["https://localhost:3000/"]
    assert netinfo.public_urls("fd00::5", 3000) == ["https://[fd00::5]:3000/"]


def test_certificate_names_cover_loopback_hostname_and_lan(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_adapters(monkeypatch, ["192.168.1.20", ("fd00::5", 0, 0), ("fe80::1", 0, 2)])
    names = netinfo.certificate_identities()
    assert names[:5] == ["localhost", "127.0.0.1", "::1", "studio", "studio.local"]
    assert "192.168.1.20" in names and "fd00::5" in names and "fe80::1" not in names


def test_real_machine_addresses_are_discovered() -> None:
    v4, _v6 = netinfo.lan_addresses()
    assert "127.0.0.1" not in v4 and "0.0.0.0" not in v4
    urls = netinfo.public_urls(None, 3000)
    assert all(url.startswith("https://") and "0.0.0.0" not in url for url in urls)
    assert urls[-1].endswith(".local:3000/")


def test_banner_shows_urls_qr_and_ca(tmp_path: Any) -> None:
    from server.tls import ensure_local_certificates

    files = ensure_local_certificates(tmp_path, ["localhost"])
    text = banner(["https://192.168.1.20:3000/", "https://studio.local:3000/"], files.ca)
    assert "https://192.168.1.20:3000/" in text and "https://studio.local:3000/" in text
    assert terminal_qr("https://192.168.1.20:3000/") in text
    assert str(files.ca) in text and "SHA-256" in text and "/trust" in text
