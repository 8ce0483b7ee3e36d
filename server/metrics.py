"""`/metrics`: the server's state in the Prometheus text format (prometheus-client).

Who may read it: requests from the machine itself (loopback) always; from elsewhere
only with `Authorization: Bearer <METRICS_TOKEN>` when that setting is set, else 403.
The figures say who is connected and how much traffic flows, never who (no ids, names or
addresses), but a LAN stranger has no business counting the users either. Spaces are
counted and their sizes bucketed, never labelled by code: a code is what lets people in
(docs/protocol.md §11), and one label per code would grow without bound.

Everything is read from the hub (and the Redis bus) at scrape time: the hot path only
bumps plain integers.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import wsconn
from .appkeys import HUB, SETTINGS, STARTED
from .hub import Hub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SPACE_SIZE_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)  # people in one space


def space_sizes(spaces: Counter[str]) -> GaugeHistogramMetricFamily:
    """How many spaces hold at most N people, for each bucket N (a gauge histogram: what
    is true at this scrape, not a count since start)."""
    buckets = [(str(float(le)), sum(1 for n in spaces.values() if n <= le)) for le in SPACE_SIZE_BUCKETS]
    buckets.append(("+Inf", len(spaces)))
    return GaugeHistogramMetricFamily(
        "lan_call_space_people",
        "People listed per space, one observation per space with anyone in it (every instance)",
        buckets=buckets,
        gsum_value=sum(spaces.values()),
    )


def own_figures(hub: Hub, started: float, name: str) -> dict[str, Any]:
    """What only this process knows (its sockets and its counters): with REDIS_URL every
    instance publishes these each second (cluster.py), so any instance's scrape reports
    all of them, one `server` label each (issue 19: under WORKERS=2 a scrape answered for
    whichever worker the kernel picked, and the counters jumped between them)."""
    return {
        "server": name,
        "connections": hub.connections,
        "held_bytes": hub.pending_bytes,
        "relays": hub.relayed,
        "errors": dict(hub.errors),
        "slow_readers": wsconn.slow_readers_total,
        "uptime": time.monotonic() - started,
    }


class HubCollector(Collector):
    def __init__(
        self,
        hub: Hub,
        started: float,
        redis_seconds: float | None,
        servers: list[dict[str, Any]] | None = None,
    ) -> None:
        """`servers`: every instance's own figures (this one's first) with REDIS_URL; None
        for a single instance, whose series carry no `server` label."""
        self.hub, self.started, self.redis_seconds = hub, started, redis_seconds
        self.servers = servers

    def per_server(
        self, name: str, help_text: str, kind: type[GaugeMetricFamily | CounterMetricFamily], key: str
    ) -> Metric:
        if self.servers is None:
            return kind(name, help_text, own_figures(self.hub, self.started, "")[key])
        family = kind(name, help_text, labels=["server"])
        for figures in self.servers:
            family.add_metric([str(figures.get("server", "?"))], float(figures.get(key, 0)))
        return family

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        listed = hub.listed()
        yield self.per_server(
            "lan_call_connections",
            "Open signalling sockets on this instance",
            GaugeMetricFamily,
            "connections",
        )
        yield GaugeMetricFamily("lan_call_listed_peers", "People listed (every instance)", len(listed))
        spaces = Counter(p.space for p in listed if p.space is not None)
        yield GaugeMetricFamily(
            "lan_call_spaces", "Spaces (codes) with anyone listed in them (every instance)", len(spaces)
        )
        yield space_sizes(spaces)
        yield GaugeMetricFamily(
            "lan_call_open_network_peers",
            "People listed in the open network, the space without a code (every instance; bots excluded)",
            sum(1 for p in listed if p.space is None and p.kind != "bot"),
        )
        yield GaugeMetricFamily(
            "lan_call_open_space_enabled",
            "1 when the open network exists (OPEN_SPACE), 0 when everyone needs a space code",
            int(hub.limits.open_space),
        )
        yield self.per_server(
            "lan_call_held_bytes",
            "Bytes held for peers in their grace period",
            GaugeMetricFamily,
            "held_bytes",
        )
        yield self.per_server("lan_call_relays", "Relay messages accepted", CounterMetricFamily, "relays")
        if self.servers is None:
            errors = CounterMetricFamily(
                "lan_call_errors", "Messages refused, by error code", labels=["code"]
            )
            for code, count in sorted(hub.errors.items()):
                errors.add_metric([code], count)
        else:
            errors = CounterMetricFamily(
                "lan_call_errors", "Messages refused, by error code", labels=["server", "code"]
            )
            for figures in self.servers:
                counts = figures.get("errors")
                for code, count in sorted(counts.items() if isinstance(counts, dict) else []):
                    errors.add_metric([str(figures.get("server", "?")), str(code)], float(count))
        yield errors
        sizes = Counter(len(room.members) for room in hub.calls)
        calls = GaugeMetricFamily(
            "lan_call_calls", "Calls in progress, by number of members", labels=["size"]
        )
        for size in range(2, hub.limits.max_call_size + 1):
            calls.add_metric([str(size)], sizes.get(size, 0))
        yield calls
        yield self.per_server(
            "lan_call_slow_readers",
            "Sockets closed for not reading what they were sent",
            CounterMetricFamily,
            "slow_readers",
        )
        yield self.per_server("lan_call_uptime_seconds", "Seconds since start", GaugeMetricFamily, "uptime")
        if self.redis_seconds is not None:
            yield GaugeMetricFamily(
                "lan_call_redis_latency_seconds",
                "Round trip of a Redis PING at this scrape",
                self.redis_seconds,
            )


def server_name(worker: int | None, instance: str) -> str:
    """The `server` label: `worker-N` under WORKERS, else the instance's id."""
    return f"worker-{worker}" if worker is not None else instance


def allowed(request: web.Request, token: str | None) -> bool:
    remote = request.remote or ""
    try:
        if ipaddress.ip_address(remote).is_loopback:
            return True
    except ValueError:
        pass
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if not allowed(request, app[SETTINGS].metrics_token):
        raise web.HTTPForbidden(text="metrics are for this machine, or need METRICS_TOKEN\n")
    redis_seconds = None
    servers: list[dict[str, Any]] | None = None
    if app[SETTINGS].redis_url:
        from .cluster import CLUSTER  # only with REDIS_URL: one instance never imports redis

        if CLUSTER in app:
            cluster = app[CLUSTER]
            servers = [own_figures(app[HUB], app[STARTED], server_name(app[SETTINGS].worker, cluster.me))]
            start = time.perf_counter()
            try:
                others = await cluster.others_stats()
                redis_seconds = time.perf_counter() - start
                servers += [others[k] for k in sorted(others)]
            except Exception:  # Redis down: the scrape says so by the gauge's absence
                redis_seconds = None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(app[HUB], app[STARTED], redis_seconds, servers))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})
