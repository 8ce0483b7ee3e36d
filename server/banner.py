"""What `python -m server` prints at start: where to open the app, a QR code to scan,
and how to trust the local CA."""

from __future__ import annotations

import io
from pathlib import Path

import segno

from .tls import fingerprint

# The banner's last line, printed once the port is open: the WORKERS parent waits for it
# from each worker (server/workers.py), and tests wait for it too.
LISTENING_LINE = "Press Ctrl+C to stop."


def terminal_qr(url: str) -> str:
    """A QR code drawn with half-block characters: two modules per character row, so it
    fits a normal terminal and phones scan it straight off the screen."""
    out = io.StringIO()
    segno.make(url, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def banner(urls: list[str], ca_file: Path | None, *, qr: bool = True) -> str:
    lines = ["", "LAN Call is running. Open one of these on any device on this network:"]
    lines += [f"  {url}" for url in urls]
    if urls and qr:
        lines += ["", f"Or scan this with a phone's camera ({urls[0]}):", terminal_qr(urls[0])]
    if ca_file is not None:
        lines += [
            f"Local CA certificate: {ca_file}",
            f"  SHA-256 {fingerprint(ca_file)}",
            "  Trust it once per device (padlock and camera access): open "
            f"{urls[0] if urls else 'https://localhost/'}trust",
        ]
    lines += [LISTENING_LINE, ""]
    return "\n".join(lines)
