"""Serve-time minification of public/ scripts and styles (rjsmin, rcssmin).

The files in public/ stay readable source with no build step; what a phone downloads
has no comments or layout whitespace. rjsmin squeezes the text of a template literal
nested inside another's `${…}`, so a file containing one is served as it is (and a
test keeps public/ free of them).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from pathlib import Path

import rcssmin
import rjsmin

log = logging.getLogger("server.minify")

SUFFIXES = frozenset({".js", ".mjs", ".css"})

# A backtick opening a template inside an unclosed `${` of another template.
NESTED_TEMPLATE = re.compile(r"`[^`]*\$\{[^}`]*`")


def minify(text: str, suffix: str) -> str | None:
    """Minified text, or None when it cannot be minified safely."""
    if suffix == ".css":
        return str(rcssmin.cssmin(text))
    if NESTED_TEMPLATE.search(text):
        return None
    return str(rjsmin.jsmin(text))


@functools.lru_cache(maxsize=128)
def minified(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """The file's served bytes and ETag; keyed by mtime and size so an edited file is
    minified afresh (live reload)."""
    source = path.read_text("utf-8")
    text = minify(source, path.suffix)
    if text is None:
        log.warning("event=minify-skipped path=%s reason=nested-template-literal", path.name)
        text = source
    body = text.encode()
    return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
