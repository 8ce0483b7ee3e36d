"""HTTP views: the app page, the trust page and CA download, the QR code, health, and
static files from public/ (versioned URLs are cached forever; the rest revalidate)."""

from __future__ import annotations

import functools
import hashlib
import io
import mimetypes
import time
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import segno
from aiohttp import web

from . import __version__, metrics, minify, protocol
from .appkeys import BUNDLER, HUB, SETTINGS, SITE, STARTED
from .assets import is_ignored
from .compress import COMPRESSIBLE, compressed_response, etag_matches
from .config import PROJECT_ROOT
from .tls import fingerprint

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("image/svg+xml", ".svg")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def page_context(request: web.Request) -> dict[str, Any]:
    """What every template gets. Passed explicitly (aiohttp-jinja2 context processors
    trip aiohttp's AppKey warning)."""
    hub = request.app[HUB]
    site = request.app[SITE]
    bundle = request.app[BUNDLER].current
    built = bundle if bundle is not None and bundle.version == hub.version else None
    return {
        "version": hub.version,
        "asset_base": f"/assets/{hub.version}/",
        # The built client's chunks the entry imports (server/bundle.py); None: the sources.
        "bundle_preload": built.preload if built else None,
        "bundle_stylesheet": built.stylesheet if built else None,
        # Rendered into a data- attribute (autoescaped), read with JSON.parse by the client.
        "config_json": protocol.dumps(hub.client_config),
        "urls": site.urls,
        "primary_url": site.urls[0] if site.urls else "",
        "ca_available": site.ca_file is not None,
    }


def _page(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    html = aiohttp_jinja2.render_string(template, request, context).encode()
    return compressed_response(
        request,
        html,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},  # the page embeds the asset version
    )


async def index(request: web.Request) -> web.Response:
    return _page(request, "index.html", page_context(request))


PLATFORMS = ("ios", "android", "macos", "windows", "linux", "firefox")


def visitor_platform(user_agent: str) -> str | None:
    """Which set of steps on /trust fits the visitor's device, from its User-Agent.
    Firefox keeps its own certificate store on desktops, so it wins there."""
    ua = user_agent.lower()
    if any(word in ua for word in ("iphone", "ipad", "ipod")) or ("macintosh" in ua and "mobile/" in ua):
        return "ios"  # iPadOS Safari says "Macintosh", but also "Mobile/"
    if "android" in ua:
        return "android"
    if "firefox/" in ua:
        return "firefox"
    if "windows" in ua:
        return "windows"
    if "macintosh" in ua or "mac os x" in ua:
        return "macos"
    if "linux" in ua or "x11" in ua or "cros" in ua:
        return "linux"
    return None


@functools.lru_cache(maxsize=4)
def _ca_fingerprint(path: Path, mtime_ns: int) -> str:
    return fingerprint(path)


async def trust(request: web.Request) -> web.Response:
    context = page_context(request)
    platform = visitor_platform(request.headers.get("User-Agent", ""))
    context["platform"] = platform
    context["platform_order"] = sorted(PLATFORMS, key=lambda key: key != platform)  # theirs first
    ca_file = request.app[SITE].ca_file
    context["ca_fingerprint"] = (
        _ca_fingerprint(ca_file, ca_file.stat().st_mtime_ns)
        if ca_file is not None and ca_file.is_file()
        else ""
    )
    return _page(request, "trust.html", context)


async def ca_pem(request: web.Request) -> web.StreamResponse:
    ca_file = request.app[SITE].ca_file
    if ca_file is None or not ca_file.is_file():
        raise web.HTTPNotFound(
            text="This server uses a certificate supplied with KEY/CERT; there is no local CA.\n"
        )
    # application/x-x509-ca-cert makes iOS offer a profile and Android a CA install.
    return web.Response(
        body=ca_file.read_bytes(),
        content_type="application/x-x509-ca-cert",
        headers={
            "Content-Disposition": 'attachment; filename="lan-call-ca.crt"',
            "Cache-Control": REVALIDATE,
        },
    )


async def qr_svg(request: web.Request) -> web.Response:
    """QR code of the first LAN URL, so a laptop screen can bring a phone in."""
    urls = request.app[SITE].urls
    if not urls:
        raise web.HTTPNotFound(text="no LAN address to encode\n")
    svg = io.BytesIO()
    # A standalone SVG document (with xmlns), as <img> needs; inline SVG would not render.
    segno.make(urls[0], error="m").save(
        svg,
        kind="svg",
        xmldecl=False,
        scale=6,
        border=2,
        dark="#111",
        light="#fff",
        svgclass=None,
        lineclass=None,
        title=urls[0],
    )
    return compressed_response(
        request, svg.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": REVALIDATE}
    )


MAX_QR_TEXT = 256  # a verification code's QR text is ~120 characters


async def qr_text_svg(request: web.Request) -> web.Response:
    """QR code of a short text (a verification code, docs/verification.md), for the page's
    <img>: the page cannot render QR codes itself without a third-party encoder. The text
    is public: it is made from the fingerprints the server relays anyway."""
    text = request.query.get("text", "")
    if not text or len(text) > MAX_QR_TEXT:
        raise web.HTTPBadRequest(text=f"text must be 1-{MAX_QR_TEXT} characters\n")
    svg = io.BytesIO()
    segno.make(text, error="m").save(
        svg,
        kind="svg",
        xmldecl=False,
        scale=4,
        border=2,
        dark="#111",
        light="#fff",
        svgclass=None,
        lineclass=None,
    )
    return web.Response(
        body=svg.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"}
    )


async def healthz(request: web.Request) -> web.Response:
    """Up or not, for anyone; how many are connected only for those who may read
    /metrics (this machine, or METRICS_TOKEN): a count tells a stranger when people are
    here (issue 18, finding 33)."""
    hub = request.app[HUB]
    health: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "assets": hub.version,
        "uptime": round(time.monotonic() - request.app[STARTED], 3),
    }
    if metrics.allowed(request, request.app[SETTINGS].metrics_token):
        health |= {"clients": hub.connections, "peers": len(hub.listed())}
    return web.json_response(health, headers={"Cache-Control": "no-store"})


def resolve_public(root: Path, relative: str) -> Path | None:
    """The file under `root` that `relative` names, or None. Refuses traversal,
    absolute paths, hidden files and directories (no listings)."""
    if not relative or "\0" in relative or "\\" in relative or relative.startswith("/"):
        return None
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    if is_ignored(candidate, base):
        return None
    return candidate


def _file(request: web.Request, relative: str, cache_control: str) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    path = resolve_public(settings.public_dir, relative)
    if path is None:
        raise web.HTTPNotFound(text="not found\n")
    content_type, _ = mimetypes.guess_type(path.name)
    headers = {"Cache-Control": cache_control}
    if content_type not in COMPRESSIBLE:
        if content_type:
            headers["Content-Type"] = content_type
        return web.FileResponse(path, headers=headers)
    assert content_type is not None
    stat = path.stat()
    if settings.minify and path.suffix in minify.SUFFIXES:
        body, etag = minify.minified(path, stat.st_mtime_ns, stat.st_size)
    else:
        body, etag = _text_file(path, stat.st_mtime_ns, stat.st_size)
    return _text_response(request, body, etag, content_type, cache_control)


def _text_response(
    request: web.Request, body: bytes, etag: str, content_type: str, cache_control: str
) -> web.StreamResponse:
    """A text asset: 304 when the browser has this ETag, else compressed (once per body)."""
    headers = {"Cache-Control": cache_control, "ETag": etag}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers={**headers, "Vary": "Accept-Encoding"})
    return compressed_response(request, body, content_type=content_type, key=etag, headers=headers)


@functools.lru_cache(maxsize=128)
def _text_file(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """A text asset's bytes and ETag, read once per content (mtime and size)."""
    body = path.read_bytes()
    return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


async def versioned_asset(request: web.Request) -> web.StreamResponse:
    """/assets/<version>/<path>: the URL changes whenever any asset does, so a browser
    may keep it forever. Relative ES-module imports inherit the versioned prefix. A file
    of the current build (server/bundle.py) comes first: the bundle's app.js, its chunks."""
    version, relative = request.match_info["version"], request.match_info["path"]
    current = version == request.app[HUB].version
    built = request.app[BUNDLER].file(version, relative) if current else None
    if built is not None:
        return _built_file(request, built)
    return _file(request, relative, IMMUTABLE if current else REVALIDATE)


def _built_file(request: web.Request, path: Path) -> web.StreamResponse:
    """A bundle's file: already minified; compressed once and kept like the others."""
    try:
        stat = path.stat()
    except OSError:  # replaced by a newer build meanwhile: the tab is reloading anyway
        raise web.HTTPNotFound(text="not found\n") from None
    body, etag = _text_file(path, stat.st_mtime_ns, stat.st_size)
    content_type = "text/javascript" if path.suffix == ".js" else "text/css"
    return _text_response(request, body, etag, content_type, IMMUTABLE)


# Browser libraries from npm (package.json; scripts/setup installs them), served by name.
# Missing until `npm ci` ran: the page then says what does not work (e.g. the QR scanner
# falls back to the browser's own BarcodeDetector, or says there is none).
VENDOR_FILES = {"jsqr.js": Path("node_modules/jsqr/dist/jsQR.js")}


async def vendor_file(request: web.Request) -> web.StreamResponse:
    relative = VENDOR_FILES.get(request.match_info["name"])
    path = PROJECT_ROOT / relative if relative is not None else None
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text="not installed (scripts/setup installs it)\n")
    stat = path.stat()
    body, etag = _text_file(path, stat.st_mtime_ns, stat.st_size)
    return _text_response(request, body, etag, "text/javascript", REVALIDATE)


async def public_file(request: web.Request) -> web.StreamResponse:
    return _file(request, request.match_info["path"], REVALIDATE)


async def share_without_worker(request: web.Request) -> web.Response:
    """POST /share is the Web Share Target (public/manifest.webmanifest) that the service
    worker answers in the browser. It reaches the server only when no worker is installed
    yet; the files are not read (they are for a person, not for the server): back to the
    app, which says to open it once first."""
    raise web.HTTPSeeOther("/?shared=unavailable", headers={"Cache-Control": "no-store"})
