"""Several instances, one network: presence and relay through Redis (only with REDIS_URL).

Imported only when REDIS_URL is set, so a single instance never loads redis. The design
and what a Redis outage can lose are in docs/architecture.md ("Several instances").

Redis holds, under `lancall:`:
    alive:<instance>   a heartbeat key with a TTL (ALIVE_TTL_MS), refreshed every second
    peers:<instance>   hash: peer id -> record (name, kind, caps, token hash, call, space) of the
                       peers that instance holds; what a new or reconnected instance reads
    rooms              hash: call id -> members and invitations
    stats              hash: instance -> its own figures for /metrics, rewritten each second
    seen               hash: instance -> when it last refreshed its heartbeat (a dead one's
                       peers may resume anywhere for a grace period after that)
and two kinds of pub/sub channel: `presence` (events, `replica.py`) and `to:<instance>`
(frames for the peers that instance holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from . import metrics, protocol, replica
from .appkeys import HUB, SETTINGS, STARTED
from .config import SettingsError
from .hub import Hub, Peer, Room
from .outbox import Outbox, deliver

log = logging.getLogger("server.cluster")

PREFIX = "lancall:"
PRESENCE = PREFIX + "presence"
ROOMS = PREFIX + "rooms"
STATS = PREFIX + "stats"  # hash: instance -> its own figures for /metrics (metrics.py), each second
SEEN = PREFIX + "seen"  # hash: instance -> when it last said it was alive (wall clock)
HEARTBEAT_SECONDS = 1.0
ALIVE_TTL_MS = 3000  # an instance silent this long is taken for dead (kill -9, power cut)
# Frames queued longer (Redis down) are dropped, and their senders told `undelivered`: a
# relay seconds late answers a call that may be over (issue 18, finding 32: 14.9 s late).
FRAME_MAX_AGE = 5.0
QUEUE_LIMIT = 200_000  # commands queued while Redis is down; frames past it are dropped
BATCH = 512  # commands per pipeline round trip
RECONNECT_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)
RECENTLY_GONE_SECONDS = 10.0


def inbox(instance: str) -> str:
    return f"{PREFIX}to:{instance}"


def alive_key(instance: str) -> str:
    return f"{PREFIX}alive:{instance}"


def peers_key(instance: str) -> str:
    return f"{PREFIX}peers:{instance}"


def shown_url(url: str) -> str:
    """REDIS_URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


Command = tuple[float, bool, str, tuple[Any, ...]]  # queued at, is a frame, method, arguments


def unreachable(url: str, exc: BaseException) -> SettingsError:
    return SettingsError(
        f"REDIS_URL={shown_url(url)}: Redis is unreachable ({str(exc).rstrip('.')}); start Redis there "
        "or set REDIS_URL to a running one (unset it to run a single instance)"
    )


def exposure_warning(url: str) -> str | None:
    """What to say about a Redis others on the network could reach and use: one not on
    this machine with no password (it holds every peer record, and anyone who can
    publish there can send frames as anyone). None when it is local or protected."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", "") or host.startswith("127.") or host == "::1" or parts.scheme == "unix"
    if local or parts.password:
        return None
    tls = "" if parts.scheme == "rediss" else " and rediss:// for TLS"
    return (
        f"reason='Redis at {host} takes no password: anyone who reaches it reads who is here and can "
        f"send frames as anyone' fix='set requirepass (or an ACL user) and put it in REDIS_URL{tls}'"
    )


async def check_reachable(url: str) -> None:
    """Raise SettingsError (one line, exit code 2) unless Redis answers at `url`."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise unreachable(url, exc) from None
    finally:
        await client.aclose()


class Cluster:
    """This instance's link to the others: implements `hub.Presence` (what to publish)
    and `replica.Bus` (frames for mirrors), and applies what the others publish."""

    def __init__(
        self, hub: Hub, url: str, resume_grace: float, secret: bytes, instance: str | None = None
    ) -> None:
        self.hub = hub
        self.url = url
        self.resume_grace = resume_grace
        self.secret = secret  # CLUSTER_SECRET: every message and record is signed with it
        self.me = instance or uuid.uuid4().hex[:12]
        hub.instance = self.me
        hub.space_key = lambda code: replica.space_tag(secret, code)
        self.bad_signatures = 0
        self.redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=5
        )
        self._queue: deque[Command] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # the writer has sent everything queued
        self._up = asyncio.Event()  # connected and subscribed
        self._homes: dict[str, None] = {}  # other instances whose peers are mirrored here
        self._checks_from = 0.0  # no liveness verdicts before (just after a reconnect)
        self._recently_gone: dict[str, float] = {}  # id -> when, so a stale snapshot cannot revive it
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped_frames = 0
        # This instance's own figures (metrics.own_figures), published each heartbeat.
        self.stats: Callable[[], dict[str, Any]] | None = None

    async def others_stats(self) -> dict[str, dict[str, Any]]:
        """The other live instances' figures, by instance (at most ALIVE_TTL_MS old)."""
        raw = await self.redis.hgetall(STATS)
        fresh = time.time() - ALIVE_TTL_MS / 1000
        found: dict[str, dict[str, Any]] = {}
        stale: list[str] = []
        for key, value in raw.items():
            instance = key.decode() if isinstance(key, bytes) else str(key)
            try:
                figures = json.loads(value)
                at = float(figures.get("at", 0)) if isinstance(figures, dict) else 0.0
            except (ValueError, TypeError, AttributeError):
                figures, at = None, 0.0
            if at < fresh - 60:  # an instance gone for a minute (kill -9): its entry goes
                stale.append(instance)
            elif instance != self.me and isinstance(figures, dict) and at >= fresh:
                found[instance] = figures
        if stale:
            await self.redis.hdel(STATS, *stale)
        return found

    # --- hub.Presence ------------------------------------------------------------------

    def peer_up(self, peer: Peer) -> None:
        record = json.dumps(replica.peer_record(peer))
        self._push(False, "hset", peers_key(self.me), peer.id, record)
        self._push(False, "publish", PRESENCE, replica.up_event(self.me, peer))

    def peer_gone(self, peer: Peer, left: bool) -> None:
        self._push(False, "hdel", peers_key(self.me), peer.id)
        self._push(False, "publish", PRESENCE, replica.gone_event(self.me, peer, left))

    def room_changed(self, room: Room, ended: bool) -> None:
        if ended:
            self._push(False, "hdel", ROOMS, room.id)
        else:
            self._push(False, "hset", ROOMS, room.id, json.dumps(replica.room_record(room, False, self.me)))
        self._push(False, "publish", PRESENCE, replica.room_event(self.me, room, ended))

    # --- replica.Bus ---------------------------------------------------------------------

    def forward(self, home: str, peer_id: str, text: str) -> None:
        self._push(True, "publish", inbox(home), replica.frame_message(peer_id, text))

    def request(self, owner: str, peer_id: str, text: str) -> None:
        self._push(True, "publish", inbox(owner), replica.request_message(peer_id, text))

    def others(self) -> list[str]:
        return list(self._homes)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, publish this instance, read who is where; SettingsError if Redis
        cannot be reached (the entry point prints one line and exits with code 2)."""
        if (warning := exposure_warning(self.url)) is not None:
            log.warning("event=redis-exposed %s", warning)
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            await self.redis.aclose()
            raise unreachable(self.url, exc) from None
        self.hub.presence = self
        pubsub = await self._subscribe()
        await self._publish_presence(announce=False)
        await self._reconcile()
        self._up.set()
        log.info("event=cluster-joined instance=%s peers=%d", self.me, len(self.hub.mirrors.peers()))
        self._tasks = [
            asyncio.create_task(self._read(pubsub)),
            asyncio.create_task(self._write()),
            asyncio.create_task(self._heartbeat()),
        ]

    async def stop(self) -> None:
        """A polite exit: flush what is queued (briefly), then tell the others this
        instance is gone, so its peers start their grace period there at once."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                if self._up.is_set():
                    await self._drained.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                pipe = self.redis.pipeline(transaction=False)
                pipe.delete(alive_key(self.me))
                pipe.hdel(STATS, self.me)
                pipe.pexpire(peers_key(self.me), max(1, int(self.resume_grace * 1000)))
                pipe.publish(PRESENCE, replica.sign(self.secret, PRESENCE, replica.down_event(self.me)))
                await pipe.execute()
        self.hub.presence = None
        await self.redis.aclose()

    # --- writing -----------------------------------------------------------------------------

    def _push(self, frame: bool, method: str, *args: Any) -> None:
        if len(self._queue) >= QUEUE_LIMIT and frame:
            self._undelivered(args)
            return
        self._queue.append((time.monotonic(), frame, method, args))
        self._drained.clear()
        self._wake.set()

    def _signed(self, method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """What is published, and every record stored, carries this cluster's signature."""
        if method == "publish":
            channel, text = args
            return channel, replica.sign(self.secret, channel, text)
        if method == "hset":
            key, field, value = args
            return key, field, replica.sign(self.secret, f"{key}/{field}", value)
        return args

    def _read_signed(self, where: str, raw: str | bytes) -> str | None:
        """The text of a message or record if this cluster's key signed it; else None,
        counted, and said (now and then): an instance with another key, or a forgery."""
        text = replica.verified(self.secret, where, raw)
        if text is None:
            self.bad_signatures += 1
            if self.bad_signatures in (1, 10, 100) or self.bad_signatures % 1000 == 0:
                log.warning(
                    "event=bad-signature where=%s count=%d hint=%s",
                    where,
                    self.bad_signatures,
                    "a message in Redis not signed with this instance's CLUSTER_SECRET: set the same on "
                    "every instance; if they match, something else writes to this Redis",
                )
        return text

    def _signed_records(self, key: str, stored: dict[Any, Any]) -> dict[str, str]:
        """A hash's fields whose values this cluster's key signed (the others: dropped)."""
        records = {}
        for raw_field, value in stored.items():
            field = raw_field.decode(errors="replace") if isinstance(raw_field, bytes) else str(raw_field)
            if (text := self._read_signed(f"{key}/{field}", value)) is not None:
                records[field] = text
        return records

    async def _write(self) -> None:
        """One writer, in order: an event and the frames after it reach every other
        instance in the order they were queued (pub/sub keeps one connection's order)."""
        queue = self._queue
        while True:
            if not queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            while not self._up.is_set():  # Redis is away: senders of stale frames hear so
                self._drop_stale()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._up.wait(), HEARTBEAT_SECONDS)
            self._drop_stale()
            batch = list(islice(queue, BATCH))
            if not batch:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for _, _, method, args in batch:
                getattr(pipe, method)(*self._signed(method, args))
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                log.debug("event=cluster-write-failed error=%s", exc)
                self._up.clear()  # the reader reconnects; the batch is sent again then
                continue
            for _ in batch:
                queue.popleft()

    def _drop_stale(self) -> None:
        """Frames queued more than FRAME_MAX_AGE ago go, wherever they are in the queue
        (other commands keep their order)."""
        stale = time.monotonic() - FRAME_MAX_AGE
        queue = self._queue
        if not queue or queue[0][0] >= stale:
            return
        kept: deque[Command] = deque()
        while queue and queue[0][0] < stale:
            command = queue.popleft()
            if command[1]:
                self._undelivered(command[3])
            else:
                kept.append(command)
        queue.extendleft(reversed(kept))

    def _undelivered(self, args: tuple[Any, ...]) -> None:
        """A frame for another instance is dropped: its sender, if it is here and the
        frame was a relay, hears `undelivered` (a caller then says "not reachable")."""
        self.dropped_frames += 1
        parsed = replica.split_frame(args[1]) if len(args) == 2 else None
        if parsed is None:
            return
        target, text, request = parsed
        try:
            message = json.loads(text)
            kind, data = message["type"], message["data"]
            # A request for a call's owner is its peer's own invite, join or leave.
            sender = target if request else data["id"] if kind == "icecandidate" else data["source"]
        except (ValueError, KeyError, TypeError):
            return
        if request and kind not in ("invite", "join", "leave-call"):
            return  # a departure or an ended invitation: the owner hears `gone` or times out
        if (
            kind not in protocol.RELAY_TYPES and kind not in ("invite", "join", "leave-call")
        ) or not isinstance(sender, str):
            return  # a `call` update or the like: nobody sent it
        peer = self.hub.peer(sender)
        if peer is None or peer.home is not None:
            return
        log.info("event=undelivered peer=%s target=%s type=%s reason=redis", sender, target, kind)
        notice = protocol.error(
            protocol.UNDELIVERED,
            "the server holding them cannot be reached right now; this message was dropped",
            kind,
            target,
        )
        deliver(Outbox().send(sender, notice), self.hub)

    # --- reading -----------------------------------------------------------------------------

    async def _subscribe(self) -> Any:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(PRESENCE, inbox(self.me))
        return pubsub

    async def _read(self, pubsub: Any) -> None:
        attempt = 0
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    await self._publish_presence(announce=True)
                    self._checks_from = time.monotonic() + ALIVE_TTL_MS / 1000
                    self._up.set()
                    log.warning("event=redis-reconnected instance=%s", self.me)
                    self._tasks.append(asyncio.create_task(self._reconcile_later()))
                    attempt = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._handle(message["channel"], message["data"])
                        # get_message does not yield while messages are buffered: without
                        # this, a burst (thousands of joins elsewhere, each announced to
                        # every socket here) starves the heartbeat past ALIVE_TTL_MS and the
                        # other instances take this one for dead (bench/cluster.py).
                        await asyncio.sleep(0)
            except (RedisError, OSError) as exc:
                if self._up.is_set() or attempt == 0:
                    log.warning("event=redis-lost instance=%s error=%s", self.me, str(exc)[:120])
                self._up.clear()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
                await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
                attempt += 1

    def _handle(self, channel: bytes, raw: bytes) -> None:
        data = self._read_signed(channel.decode(errors="replace"), raw)
        if data is None:
            return  # not from an instance with this cluster's key: never acted on
        if channel != PRESENCE.encode():
            frame = replica.split_frame(data)
            if frame is not None:
                peer_id, text, request = frame
                mirrors = self.hub.mirrors
                out = mirrors.on_behalf(peer_id, text) if request else mirrors.forwarded(peer_id, text)
                deliver(out, self.hub)
            return
        event = replica.parse(data, self.me)
        if event is None:
            return
        kind, home = event["t"], event["home"]
        held = None
        if kind == replica.UP and isinstance(event.get("peer"), dict):
            peer = self.hub.peer(str(event["peer"].get("id")))
            held = peer.id if peer is not None and peer.home is None else None
        out = replica.apply(self.hub, event, self)
        self._homes[home] = None
        if held is not None:  # taken over there: no longer this instance's to list in Redis
            self._push(False, "hdel", peers_key(self.me), held)
        if kind == replica.GONE:
            self._recently_gone[str(event.get("id"))] = time.monotonic()
        elif kind == replica.DOWN:
            self._homes.pop(home, None)
            log.info("event=instance-down instance=%s", home)
        deliver(out, self.hub)

    # --- keeping in step ---------------------------------------------------------------------

    async def _publish_presence(self, announce: bool) -> None:
        """Write everything this instance holds (after a Redis restart nothing is there),
        and with `announce` tell the others again (they may have taken it for dead)."""
        held = self.hub.mirrors.held_here()
        rooms = [r for r in self.hub.calls if r.owner in (None, self.me)]  # only the owner publishes a call
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(alive_key(self.me), "1", px=ALIVE_TTL_MS)
        pipe.hset(SEEN, self.me, str(time.time()))
        pipe.delete(peers_key(self.me))
        records = {p.id: json.dumps(replica.peer_record(p)) for p in held}
        calls = {r.id: json.dumps(replica.room_record(r, False, self.me)) for r in rooms}
        commands: list[tuple[str, tuple[str, ...]]] = [
            ("hset", (peers_key(self.me), i, t)) for i, t in records.items()
        ]
        commands += [("hset", (ROOMS, i, t)) for i, t in calls.items()]
        if announce:
            commands += [("publish", (PRESENCE, replica.up_event(self.me, p))) for p in held]
            commands += [("publish", (PRESENCE, replica.room_event(self.me, r, False))) for r in rooms]
        for method, args in commands:
            getattr(pipe, method)(*self._signed(method, args))
        await pipe.execute()

    async def _reconcile_later(self) -> None:
        await asyncio.sleep(ALIVE_TTL_MS / 1000)  # every live instance has re-published by now
        with contextlib.suppress(RedisError, OSError):
            await self._reconcile()

    async def _reconcile(self) -> None:
        """Make the mirrors match what the live instances hold: add the missing, drop
        the ones their home no longer has (a `gone` lost in an outage: no ghosts), and
        let those whose home is not alive start their grace period."""
        keys = self.redis.scan_iter(match=alive_key("*"), count=1000)
        alive = {key.decode().rsplit(":", 1)[1] async for key in keys} - {self.me}
        dead = await self._recently_dead(alive)
        records: dict[str, dict[Any, Any]] = {}
        for home in alive | dead:
            records[home] = self._signed_records(peers_key(home), await self.redis.hgetall(peers_key(home)))
        rooms = self._signed_records(ROOMS, await self.redis.hgetall(ROOMS))
        now = time.monotonic()
        recent = self._recently_gone.items()
        self._recently_gone = {k: t for k, t in recent if now - t < RECENTLY_GONE_SECONDS}
        hub, out, listed = self.hub, Outbox(), set()
        for home, items in records.items():
            self._homes[home] = None
            for raw in items.values():
                with contextlib.suppress(ValueError):
                    record = replica.mirror_record(json.loads(raw))
                    current = hub.peer(record.id) if record is not None else None
                    if record is None or record.id in self._recently_gone:
                        continue
                    listed.add(record.id)
                    if current is not None and current.home is None and current.conn is not None:
                        continue  # live here: the newer claim
                    if (
                        current is None
                        or current.home != home
                        or (current.name, current.space)
                        != (
                            record.name,
                            record.space,
                        )
                    ):
                        out.extend(hub.mirrors.up(record, home, replica.BusConnection(self, home, record.id)))
        for peer in hub.mirrors.peers():
            if peer.id in listed:
                continue
            if peer.home is None:
                continue
            if peer.home in alive:
                out.extend(hub.mirrors.gone(peer.id, peer.home, False))
            else:
                self._lost(peer.home)
        for raw in rooms.values():
            with contextlib.suppress(ValueError):
                item = json.loads(raw)
                if isinstance(item, dict) and hub.room(str(item.get("id"))) is None:
                    out.extend(replica.apply_room(hub, item))
        deliver(out, hub)
        for home in dead:
            self._lost(home)  # its peers start their grace period here: they may resume here

    async def _recently_dead(self, alive: set[str]) -> set[str]:
        """Instances gone without a word less than a grace period ago, whose peers may
        still resume anywhere: a worker restarted after a kill -9 must know them too, or
        a tab that reconnects to it loses its id. Known by when each last refreshed its
        heartbeat (SEEN); older entries are dropped here."""
        seen = await self.redis.hgetall(SEEN)
        dead: set[str] = set()
        stale: list[str] = []
        now = time.time()
        for raw_home, raw_at in seen.items():
            home = raw_home.decode(errors="replace") if isinstance(raw_home, bytes) else str(raw_home)
            if home in alive or home == self.me:
                continue
            try:
                at = float(raw_at)
            except ValueError:
                at = 0.0
            if now - at < self.resume_grace:
                dead.add(home)
            else:
                stale.append(home)
        if stale:
            await self.redis.hdel(SEEN, *stale)
        return dead

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not self._up.is_set():
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.set(alive_key(self.me), "1", px=ALIVE_TTL_MS)
                pipe.hset(SEEN, self.me, str(time.time()))
                if self.stats is not None:  # what this instance alone knows, for any instance's scrape
                    pipe.hset(STATS, self.me, json.dumps({**self.stats(), "at": time.time()}))
                await pipe.execute()
                homes = list(self._homes)
                if not homes or time.monotonic() < self._checks_from:
                    continue
                values = await self.redis.mget([alive_key(h) for h in homes])
            except (RedisError, OSError):
                continue  # the reader sees the outage and reconnects
            for home, value in zip(homes, values, strict=True):
                if value is None:
                    self._lost(home)

    def _lost(self, home: str) -> None:
        self._homes.pop(home, None)
        count = self.hub.mirrors.orphan(home, self.others())
        log.warning("event=instance-lost instance=%s peers=%d", home, count)
        # Its records stay readable through its peers' grace period, then go.
        self._push(False, "pexpire", peers_key(home), max(1, int(self.resume_grace * 1000)))


CLUSTER = web.AppKey("cluster", Cluster)


SECRET_FILE = "cluster-secret"


def cluster_secret(configured: str | None, certs_dir: Path) -> bytes:
    """CLUSTER_SECRET, or the one kept in the certs directory, made once by whichever
    instance of this machine comes first (written aside, then linked in: the others read
    it whole or make it themselves, never half of it)."""
    if configured:
        return configured.encode()
    path = certs_dir / SECRET_FILE
    if not path.exists():
        certs_dir.mkdir(parents=True, exist_ok=True)
        aside = certs_dir / f".{SECRET_FILE}.{os.getpid()}"
        aside.write_text(secrets.token_urlsafe(32) + "\n")
        aside.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
        aside.unlink()
    return path.read_text().strip().encode()


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: join the other instances before the port opens; leave on shutdown."""
    settings = app[SETTINGS]
    assert settings.redis_url is not None
    secret = cluster_secret(settings.cluster_secret, settings.certs_dir)
    cluster = app[CLUSTER] = Cluster(app[HUB], settings.redis_url, settings.resume_grace, secret)
    name = metrics.server_name(settings.worker, cluster.me)
    cluster.stats = lambda: metrics.own_figures(app[HUB], app[STARTED], name)
    await cluster.start()
    yield
    await cluster.stop()
