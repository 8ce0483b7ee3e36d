"""What a browser test does as a person: open the app, call someone, answer, and read
what the page's WebRTC stack reports (through the read-only `window.__lanCall` hook)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page

TIMEOUT = 10.0  # seconds; loopback calls connect in well under one
# Online, and the features past the lobby loaded (public/app.js loads them after the list).
READY = "window.__lanCall?.link === 'online' && window.__lanCall.loaded"

# Totals over the current call's inbound and outbound RTP streams.
MEDIA_STATS_JS = """async () => {
  const pc = window.__lanCall.pc;
  if (!pc) return null;
  const out = {videoFrames: 0, videoBytes: 0, audioBytes: 0, audioPackets: 0,
               sentVideoBytes: 0, sentAudioBytes: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.videoFrames += s.framesDecoded || 0;
      out.videoBytes += s.bytesReceived || 0;
    } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.audioBytes += s.bytesReceived || 0;
      out.audioPackets += s.packetsReceived || 0;
    } else if (s.type === 'outbound-rtp') {
      out[s.kind === 'video' ? 'sentVideoBytes' : 'sentAudioBytes'] += s.bytesSent || 0;
    }
  });
  return out;
}"""

# The outgoing tracks as the peer connection sends them.
SENDERS_JS = """() => {
  const pc = window.__lanCall.pc;
  const result = {};
  for (const sender of pc ? pc.getSenders() : []) {
    const t = sender.track;
    if (t) result[t.kind] = {enabled: t.enabled, state: t.readyState, label: t.label,
                             deviceId: t.getSettings().deviceId || ''};
  }
  return result;
}"""


@dataclasses.dataclass
class User:
    name: str
    page: Page
    context: BrowserContext
    errors: list[str] = dataclasses.field(default_factory=list)

    # --- reading the page -------------------------------------------------------------

    async def js(self, expression: str, arg: Any = None) -> Any:
        return await self.page.evaluate(expression, arg)

    async def wait_for(self, predicate: str, timeout: float = TIMEOUT, arg: Any = None) -> Any:
        """Wait until a JS expression or function is truthy; returns its value."""
        if not predicate.lstrip().startswith(("(", "async", "function")):
            # A bare expression would be eval'd in the page, which its CSP forbids; a
            # function is called through the debugger protocol instead.
            predicate = f"() => ({predicate})"
        handle = await self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=50)
        return await handle.json_value()

    @property
    async def id(self) -> str:
        return await self.js("window.__lanCall.id")

    async def call_state(self) -> str | None:
        return await self.js("window.__lanCall.callState")

    async def media_stats(self) -> dict[str, int] | None:
        return await self.js(MEDIA_STATS_JS)

    async def senders(self) -> dict[str, dict[str, Any]]:
        return await self.js(SENDERS_JS)

    def test_id(self, test_id: str) -> Locator:
        return self.page.get_by_test_id(test_id)

    def person(self, name: str) -> Locator:
        return self.page.get_by_test_id("person").filter(has_text=name)

    def notices(self) -> Locator:
        return self.page.get_by_test_id("notice")

    # --- acting -------------------------------------------------------------------------

    async def call(self, other: User) -> None:
        await self.person(other.name).click()

    async def accept(self) -> None:
        await self.test_id("accept-call").click()

    async def wait_connected(self, timeout: float = TIMEOUT) -> None:
        await self.wait_for("window.__lanCall.callState === 'connected'", timeout)

    async def wait_idle(self, timeout: float = TIMEOUT) -> None:
        """Back in the lobby with no call."""
        await self.wait_for(
            "window.__lanCall.callState === null && !document.getElementById('lobby').hidden", timeout
        )

    async def wait_media_flowing(
        self, *, frames_above: int = 0, audio: bool = True, timeout: float = TIMEOUT
    ) -> dict[str, int]:
        """Poll getStats until video frames were decoded (and, by default, audio arrived:
        headless Chromium plays no sound, so bytes and packets are the evidence)."""
        deadline = time.monotonic() + timeout
        stats: dict[str, int] | None = None
        while time.monotonic() < deadline:
            stats = await self.media_stats()
            if (
                stats
                and stats["videoFrames"] > frames_above
                and (not audio or (stats["audioBytes"] > 0 and stats["audioPackets"] > 0))
            ):
                return stats
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name}: no media after {timeout}s (last stats {stats})")


async def connect_call(caller: User, callee: User) -> None:
    """Caller taps callee, callee accepts, both connected."""
    await caller.call(callee)
    await callee.test_id("accept-call").wait_for()
    await callee.accept()
    await asyncio.gather(caller.wait_connected(), callee.wait_connected())
