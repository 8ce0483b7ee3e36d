"""Which addresses this machine answers to on the LAN, for the printed URLs and the
certificate's names. Discovered from the interfaces (ifaddr, already needed by aiortc's
ICE stack), never hard-coded."""

from __future__ import annotations

import ipaddress
import socket

import ifaddr


def _usable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def lan_addresses() -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) addresses of the machine's interfaces, loopback and link-local excluded."""
    v4: list[str] = []
    v6: list[str] = []
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            raw = entry.ip[0] if isinstance(entry.ip, tuple) else entry.ip
            try:
                ip = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if _usable(ip):
                (v4 if ip.version == 4 else v6).append(str(ip))
    return sorted(set(v4), key=_v4_rank), sorted(set(v6))


def _v4_rank(address: str) -> tuple[int, str]:
    # Home and office LANs first; container bridges (172.17.x from Docker) last.
    ip = ipaddress.IPv4Address(address)
    rank = 0 if ip in ipaddress.IPv4Network("192.168.0.0/16") else 1
    if ip in ipaddress.IPv4Network("172.16.0.0/12"):
        rank = 2
    return rank, address


def hostname() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def certificate_identities() -> list[str]:
    """Every name a browser may use to reach us: localhost, the hostname and its mDNS
    name, and all LAN addresses."""
    v4, v6 = lan_addresses()
    host = hostname()
    names = ["localhost", "127.0.0.1", "::1", host, f"{host}.local", *v4, *v6]
    return list(dict.fromkeys(names))


def _url(host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}/"


def public_urls(bind_host: str | None, port: int) -> list[str]:
    """One URL per LAN address (IPv4 first, then HOSTNAME.local); for a specific bind
    address, just that one. Never 0.0.0.0."""
    if bind_host and bind_host not in ("0.0.0.0", "::"):
        return [_url("localhost" if bind_host in ("127.0.0.1", "::1") else bind_host, port)]
    v4, _ = lan_addresses()
    urls = [_url(ip, port) for ip in v4]
    urls.append(_url(f"{hostname()}.local", port))
    return urls
