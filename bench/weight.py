"""First-load page weight on the wire (issue 9, user 10).

Starts the real server (`python -m server`, loopback only), then fetches what a browser
fetches on a first visit: the page, every script it loads (following static and dynamic
ES-module imports), every stylesheet, and every icon and image the page, the styles and
the scripts name on this server. It sends Chromium's Accept-Encoding and does not
decompress, so the figures are bytes on the wire: body bytes as sent, plus the HTTP
response headers (TLS record overhead, ~22 bytes per record, is left out). Prints the
same figures without compression (identity) for comparison.

    .venv/bin/python bench/weight.py
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.net import free_port, wait_for_port  # noqa: E402

CHROME_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
REFERENCES = [
    # HTML: what the page loads, not what it links to (<a href>): scripts, styles, icons
    re.compile(r"""<(?:script|link|img|use|source)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"'#]+)"""),
    re.compile(r"""\bfrom\s*["']([^"']+\.m?js)["']"""),  # static ES-module imports
    re.compile(r"""\bimport\s*["']([^"']+\.m?js)["']"""),  # side-effect imports
    re.compile(r"""url\(\s*["']?([^"')#]+)"""),  # CSS url()
    re.compile(r"""["']([^"'\s]+\.svg)(?:#[^"']*)?["']"""),  # icon sprites named in scripts
]


def kind_of(path: str) -> str:
    suffix = Path(path).suffix
    return {".js": "js", ".mjs": "js", ".css": "css", ".svg": "icons"}.get(
        suffix, "html" if suffix in ("", ".html") else "other"
    )


async def crawl(base: str, context: ssl.SSLContext, accept_encoding: str) -> dict[str, tuple[int, int]]:
    """{path: (body bytes on the wire, header bytes)} of a first load."""
    seen: dict[str, tuple[int, int]] = {}
    queue = [base]
    headers = {"Accept-Encoding": accept_encoding}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), auto_decompress=False
    ) as http:
        while queue:
            url = queue.pop(0)
            path = urlsplit(url).path
            if path in seen:
                continue
            async with http.get(url, headers=headers) as resp:
                raw = await resp.read()
                head = sum(len(k) + len(v) + 4 for k, v in resp.raw_headers) + len(b"HTTP/1.1 200 OK\r\n\r\n")
                if resp.status != 200:
                    continue
                seen[path] = (len(raw), head)
                encoding = resp.headers.get("Content-Encoding")
            text = raw
            if encoding == "br":
                import brotli

                text = brotli.decompress(raw)
            elif encoding == "gzip":
                import gzip

                text = gzip.decompress(raw)
            if kind_of(path) not in ("html", "js", "css"):
                continue
            for pattern in REFERENCES:
                for ref in pattern.findall(text.decode("utf-8", "replace")):
                    target = urljoin(url, ref)
                    if (
                        urlsplit(target).netloc == urlsplit(base).netloc
                        and urlsplit(target).scheme == "https"
                    ):
                        queue.append(target.split("#")[0])
    return seen


def summary(seen: dict[str, tuple[int, int]]) -> tuple[dict[str, int], int, int]:
    by_kind: dict[str, int] = {}
    for path, (body, head) in seen.items():
        by_kind[kind_of(path)] = by_kind.get(kind_of(path), 0) + body + head
    return by_kind, sum(b for b, _ in seen.values()), sum(h for _, h in seen.values())


async def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            PORT=str(port),
            HOST="127.0.0.1",
            CERTS_DIR=f"{tmp}/certs",
            STATE_FILE="",
            ECHO="0",
            RELOAD="off",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.to_thread(wait_for_port, port, 20)
            await asyncio.sleep(0.3)
            context = ssl.create_default_context(cafile=f"{tmp}/certs/ca.pem")
            base = f"https://localhost:{port}/"
            wire = await crawl(base, context, CHROME_ACCEPT_ENCODING)
            plain = await crawl(base, context, "identity")
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    print(f"first load: {len(wire)} responses (page, scripts with their static imports, styles, icons;")
    print("  modules loaded later with import() are not part of a first load)")
    for label, seen in (
        ("compressed (Chromium's Accept-Encoding)", wire),
        ("uncompressed (identity)", plain),
    ):
        by_kind, body, head = summary(seen)
        parts = ", ".join(f"{k} {v / 1000:.1f}" for k, v in sorted(by_kind.items()))
        print(
            f"  {label}: {(body + head) / 1000:.1f} KB on the wire "
            f"(bodies {body / 1000:.1f} KB + headers {head / 1000:.1f} KB; {parts})"
        )
    for path, (body, _) in sorted(wire.items(), key=lambda item: -item[1][0]):
        print(f"    {path:60} {body:7d} B (identity {plain.get(path, (0, 0))[0]:7d} B)")


if __name__ == "__main__":
    asyncio.run(main())
