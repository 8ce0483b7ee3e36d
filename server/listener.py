"""The listening socket: what happens between accept() and aiohttp.

asyncio's own TLS server gives a connection that sends nothing unlimited time, answers
plain http:// with silence, and at the file-descriptor limit logs a traceback for every
failed accept. This site accepts connections itself and then, per connection:

* **per-address cap**: a client address holding MAX_CONNECTIONS_PER_ADDRESS open
  connections has further ones closed at once (one rate-limited log line);
* **first byte**: waits (without a transport, so without a TLS buffer) for the first
  byte, at most HANDSHAKE_TIMEOUT seconds; 0x16 starts a TLS handshake, which must
  finish within the same deadline; anything else is plain HTTP and gets a redirect to
  the https:// URL on the same port;
* **after the handshake**: aiohttp's keep-alive timer (IDLE_TIMEOUT) closes a
  connection that has not completed a request, before the first one and between them;
* **at the fd limit**: the oldest connections that have not sent a byte are closed to
  make room, accepting pauses briefly, and one line per window says how many failed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from .hosts import host_allowed, split_host
from .quietlog import RateLimitedLog

log = logging.getLogger("server.listener")

TLS_HANDSHAKE = 0x16  # first byte of a TLS record carrying a ClientHello
OUT_OF_FILES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_PAUSE = 0.1  # seconds accepting stops after running out of descriptors
SHED_AT_LIMIT = 16  # silent connections closed per out-of-descriptors event
PLAIN_REQUEST_LIMIT = 8192  # bytes of a plain-HTTP request read before answering


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    handshake_timeout: float = 10.0  # accept -> TLS handshake done
    max_per_address: int = 64  # 0: no cap


@dataclass(eq=False, slots=True)
class _Waiting:
    """An accepted connection that has not sent its first byte yet."""

    sock: socket.socket
    address: str
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class EdgeStats:
    refused_per_address: int = 0
    accept_failures: int = 0
    shed_at_limit: int = 0
    plain_http: int = 0
    timeouts: int = 0


def client_address(peer: object) -> str:
    host = peer[0] if isinstance(peer, tuple) and peer else "?"
    host = str(host)
    return host[7:] if host.startswith("::ffff:") else host  # IPv4-mapped: one client


class PlainHttpRedirect(asyncio.Protocol):
    """Answers one plain-HTTP request with a redirect to the same URL over https://."""

    def __init__(self, target: Callable[[str | None, str], str], deadline: float) -> None:
        self.target = target
        self.deadline = deadline
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.timer = asyncio.get_running_loop().call_at(self.deadline, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 and len(self.buffer) < PLAIN_REQUEST_LIMIT:
            return
        self.answer(self.buffer[: end if end >= 0 else PLAIN_REQUEST_LIMIT])

    def answer(self, head: bytes) -> None:
        assert self.transport is not None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1] if len(parts) == 3 and parts[2].startswith("HTTP/") else None
        host = next(
            (line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("host:")), None
        )
        if path is None:
            body = b"This port speaks HTTPS only.\n"
            head_out = b"HTTP/1.1 400 Bad Request\r\n"
        else:
            url = self.target(host, path)
            body = f"This server speaks HTTPS only: {url}\n".encode()
            head_out = f"HTTP/1.1 308 Permanent Redirect\r\nLocation: {url}\r\n".encode()
        self.transport.write(
            head_out
            + b"Content-Type: text/plain; charset=utf-8\r\nServer: lan-call\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


class GuardedSite(web.BaseSite):
    """An aiohttp site: TLS on `host:port` with the edge rules above."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        limits: EdgeLimits,
        names: frozenset[str],
        fallback_host: str,
        backlog: int = 512,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port  # WORKERS: the processes share the port (server/workers.py)
        self.limits = limits
        self.names = names
        self.fallback_host = fallback_host  # "name:port" for a redirect with a foreign Host
        self.stats = EdgeStats()
        self._listeners: list[socket.socket] = []
        self._waiting: OrderedDict[int, _Waiting] = OrderedDict()  # id -> waiting, oldest first
        self._by_address: dict[str, set[socket.socket]] = {}
        self._accepts_since_sweep = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusal_log = RateLimitedLog(per_window=1, window=10.0)
        self._accept_log = RateLimitedLog(per_window=1, window=10.0)
        self._paused = False

    @property
    def name(self) -> str:
        return f"https://{self._host or '0.0.0.0'}:{self._port}"

    @property
    def port(self) -> int:
        return self._listeners[0].getsockname()[1] if self._listeners else self._port

    # --- listening --------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self._reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(self._backlog)
                sock.setblocking(False)
        except OSError:
            self._close_listeners()
            raise
        for sock in self._listeners:
            loop.add_reader(sock.fileno(), self._accept, sock)

    async def stop(self) -> None:
        self._close_listeners()
        for waiting in list(self._waiting.values()):
            self._drop(waiting)
        for task in list(self._tasks):
            task.cancel()
        self._runner._unreg_site(self)

    def _close_listeners(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            if sock.fileno() >= 0:
                loop.remove_reader(sock.fileno())
                sock.close()
        self._listeners = []

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(self._backlog):
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_FILES:
                    if self._out_of_files(exc):
                        continue  # room was made: keep accepting
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # the client gave up before we got to it
                self._note_accept_failure(exc)
                return
            self._admit(sock, client_address(peer))

    def _out_of_files(self, exc: OSError) -> bool:
        """At the descriptor limit: make room by closing the oldest connections that
        never sent a byte (True), or else pause accepting briefly (the kernel keeps new
        connections in the backlog meanwhile)."""
        self._note_accept_failure(exc)
        shed = list(self._waiting.values())[:SHED_AT_LIMIT]
        for waiting in shed:
            self._drop(waiting)
        self.stats.shed_at_limit += len(shed)
        if shed:
            return True
        if self._paused:
            return False
        self._paused = True
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
        loop.call_later(ACCEPT_PAUSE, self._resume_accepting)
        return False

    def _resume_accepting(self) -> None:
        self._paused = False
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            if sock.fileno() >= 0:
                loop.add_reader(sock.fileno(), self._accept, sock)

    def _note_accept_failure(self, exc: OSError) -> None:
        self.stats.accept_failures += 1
        allowed, suppressed = self._accept_log.allow()
        if allowed:
            log.warning(
                "event=accept-failed error=%s also_failed=%d shed=%d hint='raise ulimit -n or MAX_CLIENTS'",
                errno.errorcode.get(exc.errno or 0, exc.strerror),
                suppressed,
                self.stats.shed_at_limit,
            )

    # --- one connection -----------------------------------------------------------------

    def _admit(self, sock: socket.socket, address: str) -> None:
        cap = self.limits.max_per_address
        if cap:
            held = self._by_address.setdefault(address, set())
            if len(held) >= cap:
                held -= {s for s in held if s.fileno() < 0}  # closed since
            if len(held) >= cap:
                sock.close()
                self._note_refusal(address)
                return
            held.add(sock)
            self._accepts_since_sweep += 1
            if self._accepts_since_sweep >= 1024:
                self._sweep()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(sock, address)
        waiting.timer = loop.call_later(self.limits.handshake_timeout, self._timed_out, waiting)
        self._waiting[id(waiting)] = waiting
        loop.add_reader(sock.fileno(), self._first_byte, waiting)

    def _sweep(self) -> None:
        self._accepts_since_sweep = 0
        for address in list(self._by_address):
            held = {s for s in self._by_address[address] if s.fileno() >= 0}
            if held:
                self._by_address[address] = held
            else:
                del self._by_address[address]

    def _note_refusal(self, address: str) -> None:
        self.stats.refused_per_address += 1
        allowed, suppressed = self._refusal_log.allow()
        if allowed:
            log.warning(
                "event=refused reason=connections-per-address addr=%s limit=%d also_refused=%d",
                address,
                self.limits.max_per_address,
                suppressed,
            )

    def _timed_out(self, waiting: _Waiting) -> None:
        self.stats.timeouts += 1
        self._drop(waiting)

    def _drop(self, waiting: _Waiting) -> None:
        self._forget(waiting)
        waiting.sock.close()

    def _forget(self, waiting: _Waiting) -> None:
        self._waiting.pop(id(waiting), None)
        if waiting.timer is not None:
            waiting.timer.cancel()
        if waiting.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(waiting.sock.fileno())

    def _first_byte(self, waiting: _Waiting) -> None:
        try:
            first = waiting.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(waiting)
            return
        if not first:
            self._drop(waiting)
            return
        deadline = waiting.timer.when() if waiting.timer else asyncio.get_running_loop().time()
        self._forget(waiting)
        if first[0] == TLS_HANDSHAKE:
            self._spawn(self._start_tls(waiting.sock, deadline))
        else:
            self.stats.plain_http += 1
            self._spawn(self._redirect(waiting.sock, deadline))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_tls(self, sock: socket.socket, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None and self._ssl_context is not None
        try:
            await loop.connect_accepted_socket(
                server,
                sock,
                ssl=self._ssl_context,
                ssl_handshake_timeout=max(0.5, deadline - loop.time()),
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            # A scanner, a browser that does not trust the CA yet, or a stalled handshake.
            log.debug("event=tls-failed error=%s", exc)
            sock.close()

    async def _redirect(self, sock: socket.socket, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: PlainHttpRedirect(self._https_url, deadline), sock)
        except OSError:
            sock.close()

    def _https_url(self, host: str | None, path: str) -> str:
        port = self.port
        if host is None or not host_allowed(host, self.names, port):
            host = self.fallback_host
        parsed = split_host(host)
        if parsed is not None and parsed[1] is None:
            host = f"{host}:{port}"
        if not path.startswith("/") or path.startswith("//") or len(path) > 2048:
            path = "/"
        if any(not 0x21 <= ord(c) <= 0x7E for c in path):
            path = "/"
        return f"https://{host}{path}"
