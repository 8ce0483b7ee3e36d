"""Compressed text responses (brotli or gzip, per Accept-Encoding), each body compressed
once and kept in memory.

Scripts, styles, SVG and the pages are text that shrinks 3-5x; on a phone's first load
that is most of the wait. Static files are compressed once per content (the key is the
file's ETag, which changes with its bytes, so live reload gets fresh copies); rendered
pages are the same bytes for every visitor until the assets change, so they share the
same cache keyed by a hash of the body. Brotli at its best quality costs ~50 ms per
asset once; gzip (stdlib) serves clients without brotli.
"""

from __future__ import annotations

import functools
import gzip
import hashlib

import brotli
from aiohttp import web

COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "image/svg+xml",
        "text/plain",
    }
)
MIN_BYTES = 256  # below this the headers outweigh the saving
ENCODINGS = ("br", "gzip")  # in order of preference


def accepted(accept_encoding: str) -> str | None:
    """The best encoding the client accepts ("br", "gzip") or None (q=0 refuses)."""
    offered: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered[name.strip()] = q
    for encoding in ENCODINGS:
        if offered.get(encoding, offered.get("*", 0.0)) > 0:
            return encoding
    return None


@functools.lru_cache(maxsize=512)
def encoded(key: str, encoding: str, body: bytes) -> bytes:
    """`body` compressed with `encoding`; `key` names the content (ETag or hash)."""
    if encoding == "br":
        return bytes(brotli.compress(body, mode=brotli.MODE_TEXT, quality=11))
    return gzip.compress(body, compresslevel=9, mtime=0)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match names this content in any of its encodings."""
    if not if_none_match:
        return False
    base = etag[:-1]
    for candidate in if_none_match.split(","):
        candidate = candidate.strip().removeprefix("W/")
        if candidate == etag or candidate in (f'{base}-{e}"' for e in ENCODINGS):
            return True
    return False


def content_key(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def compressed_response(
    request: web.Request,
    body: bytes,
    *,
    content_type: str,
    key: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A response with `body`, compressed when the type is text and the client accepts
    brotli or gzip; always `Vary: Accept-Encoding` for compressible types."""
    out_headers = dict(headers or {})
    out_headers["Content-Type"] = content_type
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in COMPRESSIBLE:
        return web.Response(body=body, status=status, headers=out_headers)
    out_headers["Vary"] = "Accept-Encoding"
    encoding = accepted(request.headers.get("Accept-Encoding", ""))
    if encoding is None or len(body) < MIN_BYTES:
        return web.Response(body=body, status=status, headers=out_headers)
    out_headers["Content-Encoding"] = encoding
    etag = out_headers.get("ETag")
    if etag:  # one representation, one ETag (RFC 9110 §8.8.3)
        out_headers["ETag"] = f'{etag[:-1]}-{encoding}"' if etag.endswith('"') else etag
    return web.Response(
        body=encoded(key or content_key(body), encoding, body), status=status, headers=out_headers
    )
