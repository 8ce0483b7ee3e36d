"""The aiortc pieces the server's echo peer (server/echo.py) and the Python test peer
(lancall_peer/peer.py) share: the ICE configuration, trickled candidates, the chat data
channel's fixed id and label, and SDP limits. The server owns this module; the test peer
imports it, never the other way round."""

from __future__ import annotations

from typing import Any

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

CHAT_LABEL = "chat"  # docs/protocol.md §6: every call's data channel
CHAT_CHANNEL_ID = 0
MAX_REMOTE_CANDIDATES = 100  # per call; a browser sends a handful, more are dropped


def rtc_configuration(ice_servers: list[dict[str, Any]] | None = None) -> RTCConfiguration:
    """An aiortc configuration from the `iceServers` of a `ready` config. The default,
    `[]`, means host candidates only: a LAN works offline and no public STUN server is
    ever contacted."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers or []
        if isinstance(s, dict) and "urls" in s
    ]
    return RTCConfiguration(iceServers=servers)


def parse_candidate(value: Any) -> RTCIceCandidate | None:
    """An aiortc candidate from a trickled `RTCIceCandidate.toJSON()`.

    Returns None for end-of-candidates (`null`, or an empty `candidate` string as
    browsers send). Raises ValueError for anything that is not a candidate."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("candidate"), str):
        raise ValueError("a candidate must be null or an object with a string 'candidate'")
    line = value["candidate"].strip()
    if not line:
        return None
    line = line.removeprefix("a=").removeprefix("candidate:")
    try:
        candidate = candidate_from_sdp(line)
    except (AssertionError, IndexError, ValueError) as exc:
        raise ValueError(f"unparsable candidate {line[:60]!r}") from exc
    mid, index = value.get("sdpMid"), value.get("sdpMLineIndex")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if isinstance(index, int) and not isinstance(index, bool) else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0  # bundled: the first m-line carries the transport
    return candidate


class RemoteCandidates:
    """Applies trickled remote candidates to a peer connection, keeping those that
    arrive before the remote description until `flush()` (docs/protocol.md §7: queued,
    never dropped). Past `MAX_REMOTE_CANDIDATES` in one call they are ignored, so a
    hostile caller cannot make us send connectivity checks to any number of hosts."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.pending: list[RTCIceCandidate] = []
        self.applied = 0
        self.dropped = 0

    async def add(self, value: Any) -> None:
        """Apply (or queue) one `data.candidate`; end-of-candidates is ignored, since
        aiortc keeps checking the candidates it has either way."""
        candidate = parse_candidate(value)
        if candidate is None:
            return
        if self.applied + len(self.pending) >= MAX_REMOTE_CANDIDATES:
            self.dropped += 1
            return
        if self.pc.remoteDescription is None:
            self.pending.append(candidate)
            return
        await self.pc.addIceCandidate(candidate)
        self.applied += 1

    async def flush(self) -> None:
        """Apply what was queued; call right after setRemoteDescription."""
        pending, self.pending = self.pending, []
        for candidate in pending:
            await self.pc.addIceCandidate(candidate)
            self.applied += 1


def count_media_sections(sdp: str) -> int:
    return sum(1 for line in sdp.splitlines() if line.startswith("m="))
