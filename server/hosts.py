"""Which `Host` names this server answers to, and the check every request passes.

A DNS-rebinding page (evil.example resolving to this machine) makes the browser send
`Host: evil.example` and `Origin: https://evil.example`, which agree with each other;
only a check against the server's own names tells them apart. The names are the
certificate identities (localhost, loopback, hostname, HOSTNAME.local, LAN addresses),
the names in a user-supplied certificate, the HOST setting and the hosts of
ALLOWED_ORIGINS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

SERVED_NAMES = web.AppKey("served_names", frozenset[str])


def normalise_name(name: str) -> str:
    """Lower case, no trailing dot, IP addresses in canonical form ("::1", not "0::1")."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def served_names(
    identities: Iterable[str], bind_host: str | None, allowed_origins: Iterable[str]
) -> frozenset[str]:
    names = {normalise_name(n) for n in identities}
    names |= {"localhost", "127.0.0.1", "::1"}
    if bind_host and bind_host not in ("0.0.0.0", "::"):
        names.add(normalise_name(bind_host))
    for origin in allowed_origins:
        host = urlsplit(origin).hostname
        if host:
            names.add(normalise_name(host))
    return frozenset(names)


def split_host(header: str) -> tuple[str, int | None] | None:
    """("name", port or None) from a Host header value; None when it is malformed."""
    header = header.strip()
    if not header or len(header) > 300 or any(c in header for c in "/\\@ \t?#"):
        return None
    try:
        parts = urlsplit("//" + header)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name:
        return None
    return normalise_name(name), port


def host_allowed(host_header: str | None, names: frozenset[str], local_port: int | None) -> bool:
    """True when `Host` names this server: one of its names and, when a port is given,
    the port the connection actually arrived on."""
    if host_header is None:
        return False
    parsed = split_host(host_header)
    if parsed is None:
        return False
    name, port = parsed
    if name not in names:
        return False
    return port is None or local_port is None or port == local_port


def local_port(request: web.BaseRequest) -> int | None:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None


def request_host_allowed(request: web.BaseRequest) -> bool:
    names = request.app.get(SERVED_NAMES, frozenset()) if isinstance(request, web.Request) else frozenset()
    return host_allowed(request.headers.get("Host"), names, local_port(request))


@web.middleware
async def host_check(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every route, pages and /rtc alike: a request for a name that is not ours is
    refused before any handler runs (421 Misdirected Request)."""
    if not request_host_allowed(request):
        raise web.HTTPMisdirectedRequest(
            text="This server does not answer to that name; open one of the addresses it "
            "prints in its terminal.\n"
        )
    return await handler(request)
