"""The application factory: settings in, a ready-to-run aiohttp app out.

Routes (each handler lives in the module named):
    GET /                  views.index         the calling app (templates/index.html)
    GET /trust             views.trust         how to trust the local CA, per platform
    GET /ca.pem            views.ca_pem        the local CA certificate
    GET /qr.svg            views.qr_svg        QR code of the first LAN URL
    GET /qr/text.svg       views.qr_text_svg   QR code of a short text (verification codes)
    GET /healthz           views.healthz       status JSON
    GET /metrics           metrics.metrics     Prometheus text (loopback, or METRICS_TOKEN)
    GET /rtc               rtc.rtc_handler     the signalling WebSocket (hub.py)
    GET /assets/<v>/<path> views.versioned_asset   public/, cached forever
    GET /vendor/<name>     views.vendor_file   a browser library from npm (the QR decoder)
    GET /<path>            views.public_file   public/, revalidated (also /sw.js and
                                               /manifest.webmanifest, at the root scope)
    POST /share            views.share_without_worker   the share target before a service worker
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web_response
import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import metrics, quietlog, rtc, state, views
from .appkeys import BUNDLER, HUB, SETTINGS, SITE, SOCKETS, STARTED, Site
from .assets import asset_roots, compute_version
from .bundle import ESBUILD, ClientBundler
from .config import ReloadMode, Settings, hub_limits
from .hosts import SERVED_NAMES, host_check, served_names
from .hub import Hub, HubLimits
from .netinfo import certificate_identities

# The Server header names no software or version (aiohttp's default names both). The
# hook below covers the app's responses; this covers the 400s aiohttp writes for
# malformed requests, which never reach the app.
SERVER_HEADER = "lan-call"
setattr(aiohttp.web_response, "SERVER_SOFTWARE", SERVER_HEADER)  # noqa: B010

# No inline script or style anywhere: the page's config travels in a JSON data block.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The app is only ever served over HTTPS (plain HTTP on the port is redirected).
    # No includeSubDomains or preload: the names are LAN addresses and .local names.
    "Strict-Transport-Security": "max-age=31536000",
}


# What only a document (or a worker script) obeys. A module script or a stylesheet
# ignores them, and on a first load of ~45 such files they were about half of every
# response's header bytes (bench/weight.py).
DOCUMENT_ONLY = frozenset(
    {"Content-Security-Policy", "Permissions-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy"}
)
SUBRESOURCE_TYPES = frozenset({"text/css", "text/javascript", "application/javascript"})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # on_response_prepare covers every response: pages, files, errors, the WS upgrade.
    # Versioned scripts and styles (/assets/…) skip the document-only headers; the service
    # worker, served from the root, keeps its CSP.
    subresource = request.path.startswith("/assets/") and response.content_type in SUBRESOURCE_TYPES
    for name, value in SECURITY_HEADERS.items():
        if not (subresource and name in DOCUMENT_ONLY):
            response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_HEADER


def client_config(settings: Settings) -> dict[str, Any]:
    """The `config` in every `ready` (docs/protocol.md §1) and in the page."""
    return {
        "iceServers": settings.ice_servers,
        "maxMessageBytes": settings.max_message_bytes,
        "maxNameLength": settings.max_name_length,
        "ringTimeoutMs": int(settings.ring_timeout * 1000),
        "resumeGraceMs": int(settings.resume_grace * 1000),
        "maxCallSize": settings.max_call_size,
        "openSpace": settings.open_space,
    }


async def _close_bundler(bundler: ClientBundler) -> None:
    bundler.close()


def create_app(
    settings: Settings,
    site: Site | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    host_names: Iterable[str] = (),
) -> web.Application:
    """`host_names`: names beyond this machine's own that requests may use in `Host`
    (those in a user-supplied certificate)."""
    app = web.Application(client_max_size=1024**2, middlewares=[host_check])
    app[SERVED_NAMES] = served_names(
        [*certificate_identities(), *host_names], settings.host, settings.allowed_origins
    )
    app[SETTINGS] = settings
    app[SITE] = site or Site(urls=[], ca_file=None)
    app[STARTED] = time.monotonic()
    app[SOCKETS] = weakref.WeakSet()
    version = compute_version(asset_roots(settings))
    bundler = app[BUNDLER] = ClientBundler(settings.public_dir, ESBUILD if settings.bundle else None)
    bundler.build_now(version)
    app.on_cleanup.append(lambda _: _close_bundler(bundler))
    limits = HubLimits(**hub_limits(settings))  # the settings marked `hub` in config.SETTINGS
    app[HUB] = Hub(limits, version, client_config(settings), clock)

    quietlog.install()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(settings.templates_dir), autoescape=True)
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(rtc.close_sockets)
    if settings.redis_url is None:
        app.on_cleanup.append(state.save)
        app.cleanup_ctx.append(state.saver_ctx)
    else:  # presence lives in Redis; a restarted instance's peers resume on any instance
        from .cluster import cluster_ctx  # only here: one instance never imports redis

        app.cleanup_ctx.append(cluster_ctx)
    app.cleanup_ctx.append(rtc.expiry_task)
    if settings.reload is not ReloadMode.OFF:
        from .livereload import livereload_ctx

        app.cleanup_ctx.append(livereload_ctx)
    if settings.echo and settings.echo_max_calls > 0:
        from .echo import ECHO_NAME, echo_peer_ctx

        app[HUB].reserve_name(ECHO_NAME)  # before restoring: no saved peer may hold it
        app.cleanup_ctx.append(echo_peer_ctx)

    if settings.redis_url is None:
        state.restore(app)

    app.router.add_get("/", views.index)
    app.router.add_get("/trust", views.trust)
    app.router.add_get("/ca.pem", views.ca_pem)
    app.router.add_get("/qr.svg", views.qr_svg)
    app.router.add_get("/qr/text.svg", views.qr_text_svg)
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/metrics", metrics.metrics)
    app.router.add_get("/rtc", rtc.rtc_handler)
    app.router.add_get("/assets/{version}/{path:.+}", views.versioned_asset)
    app.router.add_get("/vendor/{name}", views.vendor_file)
    app.router.add_post("/share", views.share_without_worker)
    app.router.add_get("/{path:.+}", views.public_file)
    return app
